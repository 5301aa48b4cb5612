#pragma once

// Which vector instructions the hot loops use. Every x86-64 has SSE2, so
// that is the floor; a kernel with an AVX (or AVX2) form takes it where the CPU (and
// its operating system) have AVX. An AVX form computes the same bits as its
// SSE form: the same products, added in the same order, and no fused
// multiply-add (which rounds once where a multiply and an add round twice),
// so a model scores the same on any x86-64, trainer and server alike. An
// AVX kernel ends with its registers' upper halves clean
// (_mm256_zeroupper() before returning or calling SSE code; GCC does not
// always insert it): SSE code that runs after dirty upper halves is slower
// on some CPUs, and the server's other stages are SSE.

#include <atomic>

namespace hmrec {

inline std::atomic<bool>& AvxAllowed() {
  static std::atomic<bool> allowed{true};
  return allowed;
}

// True when the CPU has AVX (AVX2) and AllowAvx(false) has not been called.
inline bool UseAvx() {
  static const bool has_avx = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") != 0;
  }();
  return has_avx && AvxAllowed().load(std::memory_order_relaxed);
}
inline bool UseAvx2() {
  static const bool has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has_avx2 && AvxAllowed().load(std::memory_order_relaxed);
}

// For tests: false keeps every kernel on its SSE form (AVX and AVX2 alike).
inline void AllowAvx(bool allowed) { AvxAllowed().store(allowed, std::memory_order_relaxed); }

}  // namespace hmrec
