// ops/prometheus/: the scrape config and alert rules pass promtool's checks, and the
// alert unit tests (alerts_test.yml) pass `promtool test rules`. Skips with a message
// when promtool is absent.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/util/subprocess.h"

namespace freshet {
namespace {

using testing::RunShell;

const std::string kDir = std::string(FRESHET_SOURCE_DIR) + "/ops/prometheus";

class PrometheusFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunShell("command -v promtool >/dev/null").exit_code != 0)
      GTEST_SKIP() << "promtool is not installed (Debian package prometheus; ops/install-deps.sh); skipping";
  }
};

TEST_F(PrometheusFilesTest, ScrapeConfigIsValidAndLoadsTheRules) {
  auto r = RunShell("cd " + kDir + " && promtool check config prometheus.yml 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 rule files found"), std::string::npos) << r.output;
}

TEST_F(PrometheusFilesTest, AlertRulesAreValid) {
  auto r = RunShell("promtool check rules " + kDir + "/alerts.yml 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SUCCESS: 7 rules found"), std::string::npos) << r.output;
}

TEST_F(PrometheusFilesTest, AlertUnitTestsPass) {
  auto r = RunShell("cd " + kDir + " && promtool test rules alerts_test.yml 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SUCCESS"), std::string::npos) << r.output;
}

TEST_F(PrometheusFilesTest, ScrapesEveryDaemonAtItsDefaultPort) {
  std::ifstream in(kDir + "/prometheus.yml");
  std::stringstream text;
  text << in.rdbuf();
  for (const char* target : {"127.0.0.1:9401", "127.0.0.1:9402", "127.0.0.1:9410", "127.0.0.1:9411"})
    EXPECT_NE(text.str().find(target), std::string::npos) << target;
}

}  // namespace
}  // namespace freshet
