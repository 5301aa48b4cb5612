#include "server/bundle_holder.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

// Readers keep recommending from whatever bundle is current while the
// current link flips between two bundles and the holder swaps and frees the
// old ones: every call succeeds on a whole bundle, and both versions serve.
// Run under ThreadSanitizer by scripts/sanitize.sh (tsan stage).
TEST(BundleHolder, SwapsUnderConcurrentReaders) {
  TempDir dir;
  auto tiny = hmrec::testing::MakeTinyBundles(dir, {"v1", "v2"}, {"v1", "v2"});
  ASSERT_TRUE(MakeCurrent(dir.File("bundles/v1")).ok());
  constexpr int kReaders = 3;
  RecommenderOptions options;
  auto holder = BundleHolder::Open(dir.File("bundles/current"), options);
  ASSERT_TRUE(holder.ok()) << holder.status();
  std::vector<std::string> ids_storage;
  for (uint32_t c = 0; c < 40; ++c) ids_storage.emplace_back(tiny.ds->customer_id(c));
  const std::vector<absl::string_view> ids(ids_storage.begin(), ids_storage.end());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, calls{0};
  std::vector<std::set<std::string>> seen(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::vector<Recommendation> out;
      RecommendScratch scratch;
      while (!stop.load()) {
        const std::shared_ptr<const ServingBundle> b = (*holder)->Current();
        if (!b->recommender->Recommend(ids, 12, &out, nullptr, 0, &scratch).ok() || out.size() != ids.size() ||
            out[0].article_ids.size() != 12) {
          ++failures;
        }
        seen[r].insert(b->version);
        ++calls;
      }
    });
  }
  std::string expected = "v1";
  for (int flip = 0; flip < 6; ++flip) {
    expected = expected == "v1" ? "v2" : "v1";
    ASSERT_TRUE(MakeCurrent(dir.File("bundles/" + expected)).ok());
    auto swapped = (*holder)->Reload(false);
    ASSERT_TRUE(swapped.ok()) << swapped.status();
    EXPECT_EQ(*swapped, BundleHolder::Reloaded::kSwapped);
    EXPECT_EQ((*holder)->Current()->version, expected);
    const int before = calls.load();
    while (calls.load() < before + 2 * kReaders) std::this_thread::yield();
    (*holder)->ReleaseRetired();
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  (*holder)->ReleaseRetired();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::string> all;
  for (const auto& s : seen) all.insert(s.begin(), s.end());
  EXPECT_EQ(all, (std::set<std::string>{"v1", "v2"}));
  // Unchanged link: nothing to do.
  auto again = (*holder)->Reload(false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, BundleHolder::Reloaded::kUnchanged);
}

}  // namespace
}  // namespace hmrec
