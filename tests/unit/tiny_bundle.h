#pragma once

// A trained tiny bundle for tests of what consumes bundles: tiny generated
// data, one epoch of the tiny trainer config, exported under the given
// versions with the tiny config's ranking stage, the `sealed` ones made
// servable with a flat index.

#include <memory>
#include <string>
#include <vector>

#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "datagen/generator.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "model/tower_runner.h"
#include "tests/unit/test_util.h"
#include "trainer/ranking_trainer.h"
#include "trainer/trainer.h"

namespace hmrec::testing {

struct TinyBundles {
  std::unique_ptr<Dataset> ds;
  std::unique_ptr<Trainer> trainer;
};

inline TinyBundles MakeTinyBundles(const TempDir& dir, const std::vector<std::string>& versions,
                                   const std::vector<std::string>& sealed) {
  TinyBundles out;
  ConfigureThreads(1);
  datagen::GenerateStats stats;
  EXPECT_TRUE(datagen::Generate(*datagen::ScalePreset("tiny"), dir.File("data"), false, &stats).ok());
  LoadOptions lo;
  lo.show_progress = false;
  out.ds = std::move(*LoadDataset(dir.File("data"), lo));
  config::TrainerConfig cfg;
  EXPECT_TRUE(ReadTextProto(std::string(HMREC_SOURCE_DIR) + "/tests/data/trainer_tiny.pbtxt", &cfg).ok());
  cfg.set_epochs(1);
  // One thread: the bundle is the same, and the ThreadSanitizer stage, which
  // cannot see OpenMP's barriers, checks the code under test, not the setup.
  cfg.set_threads(1);
  TrainerOptions to;
  to.work_dir = dir.File("work");
  to.show_progress = false;
  auto t = Trainer::Create(cfg, *out.ds, nullptr, to);
  EXPECT_TRUE(t.ok()) << t.status();
  out.trainer = std::move(*t);
  EXPECT_TRUE(out.trainer->Train().ok());
  for (const std::string& v : versions) {
    auto exported = out.trainer->Export(dir.File("bundles"), v);
    EXPECT_TRUE(exported.ok()) << v;
    if (exported.ok() && cfg.has_ranking()) {
      RankingOptions ro;
      ro.work_dir = dir.File("work/" + v);
      ro.show_progress = false;
      auto ranked = TrainRanking(cfg, *out.ds, nullptr, *exported, ro);
      EXPECT_TRUE(ranked.ok()) << v << ": " << ranked.status();
    }
  }
  config::IndexBuilderConfig ib;
  ib.set_index_type("flat");
  for (const std::string& v : sealed) {
    auto r = BuildServableBundle(dir.File("bundles/" + v), *out.ds, ib, false);
    EXPECT_TRUE(r.ok()) << r.status();
  }
  return out;
}

}  // namespace hmrec::testing
