#include "ops/flags.h"

#include <gtest/gtest.h>

namespace freshet::ops {
namespace {

TEST(FlagsTest, ParsesBothFormsAndSwitches) {
  auto f = Flags::Parse({"--duration", "5", "--seed=9", "--print-defaults"}, {"duration", "seed"}, {"print-defaults"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f->GetInt("duration", 0, 0, 100), 5);
  EXPECT_EQ(*f->GetInt("seed", 0, 0, 100), 9);
  EXPECT_TRUE(f->Has("print-defaults"));
  EXPECT_EQ(*f->GetInt("missing", 3, 0, 100), 3);
}

TEST(FlagsTest, ErrorsNameTheFlag) {
  auto unknown = Flags::Parse({"--nope"}, {"duration"}, {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown flag --nope"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("--duration VALUE"), std::string::npos);
  EXPECT_FALSE(Flags::Parse({"--duration"}, {"duration"}, {}).ok());
  auto f = Flags::Parse({"--duration", "abc"}, {"duration"}, {});
  ASSERT_TRUE(f.ok());
  auto d = f->GetDouble("duration", 0, 0, 10);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("--duration = abc"), std::string::npos);
}

}  // namespace
}  // namespace freshet::ops
