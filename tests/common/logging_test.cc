#include "common/logging.h"

#include <gtest/gtest.h>

#include <vector>

namespace freshet {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSinkForTest([this](const std::string& line) { lines_.push_back(line); });
  }
  void TearDown() override {
    SetLogSinkForTest(nullptr);
    SetMinLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, KeyValueLineWithQuoting) {
  LOG_INFO("started").Kv("port", 9402).Kv("path", "/tmp/a b").Kv("ok", true);
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& l = lines_[0];
  EXPECT_NE(l.find("level=info event=started port=9402 path=\"/tmp/a b\" ok=true"), std::string::npos) << l;
  EXPECT_EQ(l.rfind("ts=", 0), 0u) << l;
}

TEST_F(LoggingTest, LevelFilter) {
  SetMinLogLevel(LogLevel::kWarning);
  LOG_INFO("hidden");
  LOG_WARNING("shown");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find("event=shown"), std::string::npos);
  LogLevel level;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
}

TEST(RateLimiterTest, AllowsOncePerIntervalAndCountsSuppressed) {
  RateLimiter limiter(1000);
  int64_t suppressed = -1;
  EXPECT_TRUE(limiter.Allow(10'000, &suppressed));
  EXPECT_EQ(suppressed, 0);
  EXPECT_FALSE(limiter.Allow(10'100, &suppressed));
  EXPECT_FALSE(limiter.Allow(10'900, &suppressed));
  EXPECT_TRUE(limiter.Allow(11'000, &suppressed));
  EXPECT_EQ(suppressed, 2);
}

}  // namespace
}  // namespace freshet
