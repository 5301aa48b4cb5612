#include "distributed/launch_env.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hmrec {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<LaunchEnv> Read(const std::map<std::string, std::string>& vars) {
  return ReadLaunchEnv([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, WithoutWorldSizeRunsAlone) {
  absl::StatusOr<LaunchEnv> e = Read({{"RANK", "3"}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->distributed());
  EXPECT_EQ(e->rank, 0);
  e = Read({{"WORLD_SIZE", "1"}});
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->distributed());
}

TEST(LaunchEnv, ReadsTheLauncherConventions) {
  absl::StatusOr<LaunchEnv> e = Read({{"WORLD_SIZE", "4"},
                                      {"RANK", "2"},
                                      {"MASTER_ADDR", "train-0.train"},
                                      {"MASTER_PORT", "23456"},
                                      {"GLOO_SOCKET_IFNAME", "eth0"}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->distributed());
  EXPECT_EQ(e->rank, 2);
  EXPECT_EQ(e->world_size, 4);
  EXPECT_EQ(e->master_addr, "train-0.train");
  EXPECT_EQ(e->master_port, 23456);
  EXPECT_EQ(e->socket_ifname, "eth0");
  EXPECT_EQ(e->Describe(), "rank 2/4 (rendezvous train-0.train:23456)");
  e = Read({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->master_port, 29500);  // torchrun's default
}

TEST(LaunchEnv, NamesWhatIsWrong) {
  auto error = [](const std::map<std::string, std::string>& vars) {
    absl::StatusOr<LaunchEnv> e = Read(vars);
    EXPECT_FALSE(e.ok());
    return e.ok() ? std::string() : std::string(e.status().message());
  };
  EXPECT_THAT(error({{"WORLD_SIZE", "two"}}), HasSubstr("WORLD_SIZE=\"two\""));
  EXPECT_THAT(error({{"WORLD_SIZE", "0"}}), HasSubstr("WORLD_SIZE"));
  EXPECT_THAT(error({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}), HasSubstr("RANK is not set"));
  EXPECT_THAT(error({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}}), HasSubstr("RANK=\"2\""));
  EXPECT_THAT(error({{"WORLD_SIZE", "2"}, {"RANK", "1"}}), HasSubstr("MASTER_ADDR is not set"));
  EXPECT_THAT(error({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}),
              HasSubstr("MASTER_PORT"));
}

}  // namespace
}  // namespace hmrec
