#include "search/exact_search.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <random>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>

#include "gtest/gtest.h"

namespace hmrec {
namespace {

std::vector<float> RandomUnit(int64_t n, int d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n * d);
  for (int64_t i = 0; i < n; ++i) {
    float norm = 0;
    for (int j = 0; j < d; ++j) norm += (v[i * d + j] = g(rng)) * v[i * d + j];
    for (int j = 0; j < d; ++j) v[i * d + j] /= std::sqrt(norm);
  }
  return v;
}

// faiss's answer and ExactSearch's agree for sizes that are not multiples of
// the blocks, more queries than one chunk, several k and thread counts.
TEST(ExactSearch, ReturnsWhatFaissFlatReturns) {
  const int d = 64;
  const int64_t n = 5003, m = 300;
  const std::vector<float> base = RandomUnit(n, d, 1), queries = RandomUnit(m, d, 2);
  faiss::IndexFlatIP flat(d);
  faiss::IndexIDMap index(&flat);
  std::vector<faiss::Index::idx_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = 108775000 + 7 * i;  // article-id-like labels
  index.add_with_ids(n, base.data(), ids.data());
  for (ExactSearch::Kernel kernel :
       {ExactSearch::Kernel::kAuto, ExactSearch::Kernel::kFp32, ExactSearch::Kernel::kSgemm}) {
    auto exact = ExactSearch::FromFaissIndex(index, kernel);
    ASSERT_TRUE(exact.ok()) << exact.status();
    EXPECT_EQ((*exact)->size(), n);
    SCOPED_TRACE((*exact)->kernel());
    for (int k : {1, 12, 100}) {
      std::vector<float> fd(m * k), ed(m * k);
      std::vector<faiss::Index::idx_t> fl(m * k);
      std::vector<int64_t> el(m * k);
      index.search(m, queries.data(), k, fd.data(), fl.data());
      for (int threads : {1, 2, 3}) {
        (*exact)->Search(queries.data(), m, k, el.data(), ed.data(), threads);
        int64_t mismatched = 0;
        for (int64_t i = 0; i < m * k; ++i) {
          EXPECT_NEAR(ed[i], fd[i], 1e-5) << "k " << k << " threads " << threads << " at " << i;
          mismatched += el[i] != fl[i];
        }
        EXPECT_EQ(mismatched, 0) << "k " << k << " threads " << threads;
        // Best first.
        for (int64_t q = 0; q < m; ++q)
          EXPECT_TRUE(std::is_sorted(ed.begin() + q * k, ed.begin() + (q + 1) * k, std::greater<float>()));
      }
    }
  }
}

TEST(ExactSearch, PadsWithMinusOneWhenFewerVectorsThanK) {
  const int d = 8;
  const std::vector<float> base = RandomUnit(5, d, 3), q = RandomUnit(2, d, 4);
  for (ExactSearch::Kernel kernel :
       {ExactSearch::Kernel::kAuto, ExactSearch::Kernel::kFp32, ExactSearch::Kernel::kSgemm}) {
    ExactSearch exact(base, {10, 11, 12, 13, 14}, d, kernel);
    std::vector<int64_t> labels(2 * 12);
    std::vector<float> scores(2 * 12);
    exact.Search(q.data(), 2, 12, labels.data(), scores.data(), 2);
    for (int64_t r = 0; r < 2; ++r) {
      std::vector<int64_t> got(labels.begin() + r * 12, labels.begin() + r * 12 + 5);
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, (std::vector<int64_t>{10, 11, 12, 13, 14})) << exact.kernel();
      for (int j = 5; j < 12; ++j) EXPECT_EQ(labels[r * 12 + j], -1);
    }
  }
}

// Articles closer to each other than one int8 step: the int8 scores cannot
// order them, so the answer is only right if the bound keeps every contender
// and the fp32 rescoring decides. Every kernel must still return faiss's ids.
TEST(ExactSearch, NearDuplicatesAreOrderedByExactScores) {
  const int d = 64;
  const int64_t groups = 40, copies = 30, m = 50;
  const std::vector<float> centres = RandomUnit(groups, d, 5), queries = RandomUnit(m, d, 6);
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 2e-4f);
  std::vector<float> base;
  for (int64_t c = 0; c < groups; ++c) {
    for (int64_t j = 0; j < copies; ++j) {
      for (int i = 0; i < d; ++i) base.push_back(centres[c * d + i] + g(rng));
    }
  }
  const int64_t n = groups * copies;
  faiss::IndexFlatIP index(d);
  index.add(n, base.data());
  const int k = 12;
  std::vector<float> fd(m * k), ed(m * k);
  std::vector<faiss::Index::idx_t> fl(m * k);
  std::vector<int64_t> el(m * k);
  index.search(m, queries.data(), k, fd.data(), fl.data());
  for (ExactSearch::Kernel kernel : {ExactSearch::Kernel::kAuto, ExactSearch::Kernel::kFp32}) {
    auto exact = ExactSearch::FromFaissIndex(index, kernel);
    ASSERT_TRUE(exact.ok());
    for (int threads : {1, 2}) {
      (*exact)->Search(queries.data(), m, k, el.data(), ed.data(), threads);
      for (int64_t i = 0; i < m * k; ++i) ASSERT_EQ(el[i], fl[i]) << (*exact)->kernel() << " at " << i;
    }
  }
}

// A query with a NaN matches nothing (fp32 comparisons with NaN are false)
// in every kernel; the other queries of the batch are unaffected.
TEST(ExactSearch, NonFiniteQueryMatchesNothingAndSparesTheRest) {
  const int d = 16;
  const std::vector<float> base = RandomUnit(300, d, 8);
  std::vector<float> q = RandomUnit(2, d, 9);
  q[3] = std::numeric_limits<float>::quiet_NaN();
  for (ExactSearch::Kernel kernel :
       {ExactSearch::Kernel::kAuto, ExactSearch::Kernel::kFp32, ExactSearch::Kernel::kSgemm}) {
    std::vector<int64_t> labels(300);
    for (int64_t i = 0; i < 300; ++i) labels[i] = i;
    ExactSearch exact(base, labels, d, kernel);
    std::vector<int64_t> got(2 * 12);
    std::vector<float> scores(2 * 12);
    exact.Search(q.data(), 2, 12, got.data(), scores.data(), 2);
    for (int j = 0; j < 12; ++j) EXPECT_EQ(got[j], -1) << exact.kernel();
    for (int j = 12; j < 24; ++j) EXPECT_GE(got[j], 0) << exact.kernel();
  }
}

TEST(ExactSearch, RefusesAnIndexThatIsNotExactInnerProduct) {
  faiss::IndexFlatL2 l2(8);
  EXPECT_FALSE(ExactSearch::FromFaissIndex(l2).ok());
  faiss::IndexFlatIP quantizer(8);
  faiss::IndexIVFFlat ivf(&quantizer, 8, 4, faiss::METRIC_INNER_PRODUCT);
  EXPECT_FALSE(ExactSearch::FromFaissIndex(ivf).ok());
}

}  // namespace
}  // namespace hmrec
