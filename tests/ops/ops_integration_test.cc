// The ops surface against a real `freshet run` process (one per suite, ~30 s in all):
// the dashboard drawn by headless Chromium (DOM checks + a screenshot kept under the
// build's test-artifacts/), its JSON feed, and `freshet ops status` against the
// running daemons and an unreachable one.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <map>
#include <regex>
#include <vector>

#include "common/http_client.h"
#include "tests/util/subprocess.h"

namespace freshet {
namespace {

using testing::RunShell;
using testing::Subprocess;

std::string Capture(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(pattern))) return m[1];
  return "";
}

bool HaveTool(const std::string& tool) { return RunShell("command -v " + tool + " >/dev/null").exit_code == 0; }

// Points per dataset of a chart card, from its data-series="label:n,..." attribute.
std::map<std::string, int> SeriesPoints(const std::string& html, const std::string& chart) {
  std::map<std::string, int> out;
  const std::string series = Capture(html, "id=\"" + chart + "\"[^>]*data-series=\"([^\"]*)\"");
  const std::regex item("([^,:]+):(\\d+)");
  for (auto it = std::sregex_iterator(series.begin(), series.end(), item); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stoi((*it)[2]);
  return out;
}

// The versions `freshet ops versions --json` lists, ascending.
std::vector<uint64_t> StoredVersions(const std::string& learner) {
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " ops versions --json --learner " + learner + " 2>/dev/null");
  std::vector<uint64_t> out;
  const std::regex version("\\{\"version\":(\\d+),\"base_version\"");
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), version); it != std::sregex_iterator(); ++it)
    out.push_back(std::stoull((*it)[1]));
  return out;
}

class OpsIntegrationTest : public ::testing::Test {
 protected:
  // One pipeline for the whole suite: the immediate policy emits samples at once, so
  // every stage the pipeline has shows data within seconds.
  static void SetUpTestSuite() {
    const std::string config = ::testing::TempDir() + "/ops_immediate.pbtxt";
    std::ofstream(config) << "ingest { policy: POLICY_IMMEDIATE }\n";
    const std::string data_dir = ::testing::TempDir() + "/ops_run_" + std::to_string(getpid());
    run_ = new Subprocess({FRESHET_BINARY_PATH, "run", "--duration", "90", "--admin-port", "0", "--rate", "300",
                           "--seed", "5", "--config", config, "--data-dir", data_dir});
    auto ingest = run_->WaitForLinePrefix("freshet: ingest admin ", 30000);
    auto dash = run_->WaitForLinePrefix("freshet: dashboard ", 30000);
    if (!ingest || !dash) return;
    ingest_ = Capture(*ingest, "http://(127\\.0\\.0\\.1:\\d+)");
    dashboard_url_ = Capture(*dash, "(http://\\S+/dashboard)");
    learner_ = Capture(dashboard_url_, "http://([^/]+)/");
    // Two progress rounds: samples joined and trained, diagnostics run, rates known.
    run_->WaitForLinePrefix("progress   freshness", 30000);
    ready_ = run_->WaitForLinePrefix("progress   freshness", 30000).has_value();
  }
  static void TearDownTestSuite() {
    run_->Signal(SIGTERM);
    run_->Wait(15000);
    delete run_;
    run_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << "freshet run did not come up: " << run_->transcript(); }

  static Subprocess* run_;
  static bool ready_;
  static std::string ingest_, learner_, dashboard_url_;
};
Subprocess* OpsIntegrationTest::run_ = nullptr;
bool OpsIntegrationTest::ready_ = false;
std::string OpsIntegrationTest::ingest_, OpsIntegrationTest::learner_, OpsIntegrationTest::dashboard_url_;

TEST_F(OpsIntegrationTest, DashboardRendersChartsWithDataInChromium) {
  if (!HaveTool("chromium")) GTEST_SKIP() << "chromium is not installed (ops/install-deps.sh installs it); skipping";
  // The version chart must show what each replica serves after a publish: wait until
  // the feed has a served version on both replicas.
  const std::string host = learner_.substr(0, learner_.find(':'));
  const int port = std::stoi(learner_.substr(learner_.find(':') + 1));
  bool served = false;
  for (int i = 0; i < 60 && !served; ++i) {
    auto data = HttpGet(host, port, "/dashboard/data");
    served = data.ok();
    for (const char* replica : {"serving-0", "serving-1"}) {
      const std::string values =
          data.ok() ? Capture(data->body, std::string("\"version\\.") + replica + "\":\\[([^\\]]*)\\]") : "";
      served = served && std::regex_search(values, std::regex("(^|,)[1-9]\\d*(\\.0)?(,|$)"));
    }
    if (!served) usleep(500 * 1000);
  }
  ASSERT_TRUE(served) << "no replica reported a served version within 30 s: " << run_->transcript();
  const std::string profile = ::testing::TempDir() + "/ops_chromium_profile";
  std::filesystem::remove_all(profile);
  // The flags keep Chromium off the (closed) network; virtual time lets the page load
  // Chart.js, poll /dashboard/data and draw before the DOM is dumped.
  const std::string chromium = "timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                               "--disable-background-networking --disable-component-update --disable-sync "
                               "--user-data-dir=" + profile + " --window-size=1400,1400 --virtual-time-budget=5000 ";
  auto dom = RunShell(chromium + "--dump-dom " + dashboard_url_ + " 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  const std::string& html = dom.output;
  EXPECT_NE(Capture(html, "<body[^>]*data-polls=\"(\\d+)\""), "0") << html;
  EXPECT_EQ(Capture(html, "<body[^>]*data-error=\"([^\"]*)\""), "") << "the page reported an error: " << html;
  // Charts the running pipeline feeds: each must have drawn points.
  for (const char* chart : {"chart-freshness", "chart-throughput", "chart-lag", "chart-zero-share", "chart-gates"}) {
    const std::string points = Capture(html, std::string("id=\"") + chart + "\" data-points=\"(\\d+)\"");
    ASSERT_FALSE(points.empty()) << chart << " missing from the DOM: " << html;
    EXPECT_GT(std::stoi(points), 0) << chart << " drew no points";
    EXPECT_NE(html.find(std::string("id=\"") + chart + "\" data-points=\"" + points + "\" data-state=\"ok\""),
              std::string::npos)
        << chart;
  }
  EXPECT_NE(html.find("id=\"freshness-note\">over the last 5 s"), std::string::npos) << html;
  // The version timeline: published and served-per-replica lines, each with points.
  const std::map<std::string, int> versions = SeriesPoints(html, "chart-versions");
  EXPECT_NE(Capture(html, "id=\"chart-versions\" data-points=\"\\d+\" data-state=\"(\\w+)\""), "empty") << html;
  for (const char* line : {"published", "serving-0", "serving-1"}) {
    ASSERT_TRUE(versions.count(line)) << "chart-versions has no " << line << " line: " << html;
    EXPECT_GT(versions.at(line), 0) << "chart-versions drew no " << line << " points";
  }

  const std::string dir = std::string(FRESHET_TEST_ARTIFACTS_DIR);
  std::filesystem::create_directories(dir);
  const std::string png = dir + "/dashboard.png";
  std::filesystem::remove(png);
  auto shot = RunShell(chromium + "--screenshot=" + png + " " + dashboard_url_ + " 2>&1");
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  ASSERT_TRUE(std::filesystem::exists(png)) << shot.output;
  EXPECT_GT(std::filesystem::file_size(png), 10000u) << "a blank page compresses to almost nothing";
  std::cout << "dashboard screenshot: " << png << std::endl;
  RecordProperty("screenshot", png);
}

TEST_F(OpsIntegrationTest, DataFeedHasFreshnessOfJoinedAndTrained) {
  const std::string host = learner_.substr(0, learner_.find(':'));
  const int port = std::stoi(learner_.substr(learner_.find(':') + 1));
  auto data = HttpGet(host, port, "/dashboard/data");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->status, 200);
  EXPECT_EQ(data->content_type.find("application/json"), 0u) << data->content_type;
  for (const char* series : {"freshness.joined.p99", "freshness.trained.p50", "rate.events", "rate.trained"}) {
    const std::string values = Capture(data->body, std::string("\"") + series + "\":\\[([^\\]]*)\\]");
    EXPECT_NE(std::regex_search(values, std::regex("\\d")), false) << series << " has no value: " << data->body;
  }
  EXPECT_NE(data->body.find("{\"name\":\"ingest\",\"address\":\"" + ingest_ + "\",\"ok\":true"), std::string::npos)
      << data->body;
  // The progress line carries the same freshness.
  EXPECT_NE(run_->transcript().find("progress   freshness p50/p99 over 5s: joined="), std::string::npos);
}

// `freshet ops diff` as its own process against the pipeline's learner: two published
// versions compared, and the errors for a version that is not stored, a bad call and
// an unreachable learner.
TEST_F(OpsIntegrationTest, OpsDiffComparesTwoPublishedVersions) {
  std::vector<uint64_t> versions = StoredVersions(learner_);
  for (int i = 0; i < 60 && versions.size() < 2; ++i) {
    usleep(500 * 1000);
    versions = StoredVersions(learner_);
  }
  ASSERT_GE(versions.size(), 2u) << run_->transcript();
  const std::string bin = FRESHET_BINARY_PATH;
  const std::string from = std::to_string(versions.front()), to = std::to_string(versions.back());
  auto r = RunShell(bin + " ops diff " + from + " v" + to + " --learner " + learner_ + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("diff v" + from + " -> v" + to + ": train_step "), std::string::npos) << r.output;
  // Training ran between the two, so dense weights moved and embedding rows changed.
  EXPECT_TRUE(std::regex_search(r.output, std::regex("dense tensors: [1-9]\\d* of \\d+ changed"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\\n  [a-z_.0-9]+ +\\d+(x\\d+)* +changed +[0-9.e+-]+ +[0-9.e+-]+\\n")))
      << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\\n  0 +16 +\\d+ +\\d+ +\\d+ +\\d+ +[0-9.e+-]+\\n"))) << r.output;
  EXPECT_NE(r.output.find("auc/click"), std::string::npos) << r.output;

  auto json = RunShell(bin + " ops diff " + from + " " + to + " --json --learner " + learner_ + " 2>&1");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"tables\":[{\"slot\":0,\"dim\":16,\"added\":"), std::string::npos) << json.output;
  EXPECT_TRUE(std::regex_search(json.output, std::regex("\"change\":\"changed\",\"l2_diff\":[0-9.e+-]+"))) << json.output;

  auto missing = RunShell(bin + " ops diff " + from + " 99999999 --learner " + learner_ + " 2>&1");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("v99999999 is not in the snapshot store"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("stored: v"), std::string::npos) << missing.output;

  auto usage = RunShell(bin + " ops diff " + from + " --learner " + learner_ + " 2>&1");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  EXPECT_NE(usage.output.find("diff needs two versions"), std::string::npos) << usage.output;

  auto down = RunShell(bin + " ops diff 1 2 --learner 127.0.0.1:1 2>&1");
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_NE(down.output.find("unreachable"), std::string::npos) << down.output;
}

TEST_F(OpsIntegrationTest, OpsStatusShowsEveryComponentInOneTable) {
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " ops status --ingest " + ingest_ + " --learner " + learner_ +
                    " --serving '' 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("COMPONENT"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("ingest +" + ingest_ + " +up +ready +- +\\d+ msgs +joined [0-9.]+/[0-9.]+s")))
      << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("learner +" + learner_ + " +up +ready +(v\\d+|ckpt \\d+|-) +- +trained [0-9.]+/[0-9.]+s")))
      << r.output;
  // TWIN is on in the default config: its consistency comes from the running learner.
  EXPECT_TRUE(std::regex_search(r.output, std::regex("learner TWIN: GSU/ESU top-k overlap ([01]\\.\\d\\d|not measured yet)")))
      << r.output;
}

TEST_F(OpsIntegrationTest, OpsStatusNamesAnUnreachableDaemonAndExitsOne) {
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " ops status --ingest " + ingest_ + " --learner " + learner_ +
                    " --serving 127.0.0.1:1 --window 0 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("serving-0 +127\\.0\\.0\\.1:1 +DOWN"))) << r.output;
  EXPECT_NE(r.output.find("freshet ops status: serving-0 at 127.0.0.1:1 unreachable:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is `freshet serve` replica 0 running?"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("ingest +" + ingest_ + " +up +ready"))) << r.output;
}

}  // namespace
}  // namespace freshet
