#include "server/restricted_sources.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace hmrec {
namespace {

// An entry whose search holds `rows` rows of a 4-wide embedding.
std::shared_ptr<const RestrictedSources> Entry(int rows) {
  std::vector<uint8_t> allowed(static_cast<size_t>(rows), 1);
  auto r = std::make_shared<RestrictedSources>(ArticleFilter(allowed, nullptr));
  std::vector<float> vectors(static_cast<size_t>(rows) * 4, 0.5f);
  r->search = ExactSearch::OverRows(vectors.data(), 4, r->filter.rows());
  return r;
}

TEST(RestrictedSourcesCache, BuildsEachKeyOnceAndEvictsTheLeastRecentlyUsedPastItsRows) {
  RestrictedSourcesCache cache(100);
  int built = 0;
  auto get = [&](const std::string& key, int rows) {
    return cache.Get(key, [&] {
      ++built;
      return Entry(rows);
    });
  };
  auto a = get("a", 40);
  EXPECT_EQ(get("a", 40), a) << "a second request for one key shares the entry";
  get("b", 40);
  EXPECT_EQ(built, 2);
  EXPECT_EQ(cache.rows(), 80u);
  get("a", 40);  // a is now the most recently used
  get("c", 40);  // 120 > 100: b goes
  EXPECT_EQ(cache.entries(), 2u);
  EXPECT_EQ(cache.rows(), 80u);
  get("a", 40);
  EXPECT_EQ(built, 3) << "a stayed";
  get("b", 40);
  EXPECT_EQ(built, 4) << "b was evicted, built again";
  EXPECT_EQ(cache.builds(), 4);
  // An entry larger than the whole budget is still kept while it is alone,
  // and the callers holding an evicted entry keep using it.
  auto big = get("big", 500);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(a->search->size(), 40);
  EXPECT_EQ(big->search->size(), 500);
}

TEST(RestrictedSourcesCache, ManyThreadsShareOneEntryPerKey) {
  RestrictedSourcesCache cache(1000);
  std::atomic<int> built{0};
  std::vector<std::thread> threads;
  std::vector<const RestrictedSources*> seen(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto e = cache.Get("same", [&] {
          ++built;
          return Entry(10);
        });
        seen[static_cast<size_t>(t)] = e.get();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const RestrictedSources* e : seen) EXPECT_EQ(e, seen[0]) << "every thread ends on the stored entry";
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_GE(built.load(), 1);
  EXPECT_LE(built.load(), 8) << "built again after it was stored";
}

}  // namespace
}  // namespace hmrec
