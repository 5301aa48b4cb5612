#pragma once

// A small, fully specified random number generator (xoshiro256**, seeded by
// SplitMix64) and the distributions datagen and the trainer need, written out here because
// the standard library's distributions differ between implementations: the
// same seed must give byte-identical files on every machine.
// Not thread-safe; make one per stream.

#include <cmath>
#include <cstdint>
#include <vector>

namespace hmrec {

inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Mixes several integers into one seed.
inline uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t s = a ^ 0x6a09e667f3bcc909ull;
  uint64_t x = SplitMix64(&s) ^ b;
  s = x;
  x = SplitMix64(&s) ^ c;
  s = x;
  return SplitMix64(&s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& v : s_) v = SplitMix64(&s);
  }
  // An independent stream for (seed, stream, substream).
  Rng(uint64_t seed, uint64_t stream, uint64_t substream = 0) : Rng(MixSeed(seed, stream, substream)) {}

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n).
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64); }
  int64_t Between(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo + 1)));
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  double Normal() {
    // Box-Muller; one value per call keeps streams simple to reason about.
    double u1 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double Normal(double mean, double sd) { return mean + sd * Normal(); }
  double LogNormal(double mu, double sigma) { return std::exp(mu + sigma * Normal()); }
  double Exponential(double mean) { return -mean * std::log(1.0 - Uniform()); }
  // Poisson by inversion for small means, normal approximation for large.
  int64_t Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean > 30) {
      const double v = std::round(Normal(mean, std::sqrt(mean)));
      return v < 0 ? 0 : static_cast<int64_t>(v);
    }
    double p = std::exp(-mean), cdf = p, u = Uniform();
    int64_t k = 0;
    while (u > cdf && k < 1000) {
      ++k;
      p *= mean / static_cast<double>(k);
      cdf += p;
    }
    return k;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Draws an index with probability proportional to non-negative weights,
// through a cumulative table and binary search.
class Categorical {
 public:
  Categorical() = default;
  explicit Categorical(const std::vector<double>& weights) { Reset(weights); }
  void Reset(const std::vector<double>& weights) {
    cdf_.resize(weights.size());
    double sum = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      sum += weights[i] > 0 ? weights[i] : 0;
      cdf_[i] = sum;
    }
  }
  double total() const { return cdf_.empty() ? 0.0 : cdf_.back(); }
  bool empty() const { return total() <= 0; }
  size_t Sample(Rng& rng) const {
    const double u = rng.Uniform() * total();
    size_t lo = 0, hi = cdf_.size() - 1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (cdf_[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    return lo;
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace hmrec
