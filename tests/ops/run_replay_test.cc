// `freshet run --replay kuairand` as a real process: the pipeline is fed by the head
// of the real KuaiRand-Pure log (found through FRESHET_DATA_DIR) instead of the
// simulator, the model takes the log's feature layout, every logged impression is
// joined (the end of the log closes the last windows), trained and published to the
// serving replicas. And the errors: the data set missing (where it looked, what to
// set), a bad replay.log_path, an unknown data set by flag and by config field.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/http_client.h"
#include "tests/ops/kuairand_head.h"
#include "tests/util/subprocess.h"

namespace freshet {
namespace {

using testing::RunShell;
using testing::Subprocess;

constexpr int kRows = 2000;

std::string Capture(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(pattern))) return m[1];
  return "";
}

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("freshet_" + name + "_" + std::to_string(getpid()));
}

// `freshet run --config FILE`, FILE holding `text` (removed afterwards).
testing::CommandResult RunWithConfig(const std::string& name, const std::string& text) {
  const std::string config = TempPath(name).string();
  std::ofstream(config) << text;
  auto r = RunShell(std::string("'") + FRESHET_BINARY_PATH + "' run --config " + config + " --admin-port 0 2>&1");
  std::filesystem::remove(config);
  return r;
}

TEST(RunReplayTest, ReplaysTheLogThroughJoinTrainPublishAndServe) {
  SKIP_WITHOUT_DATA(testing::KuaiRandDir());
  const std::filesystem::path dir = TempPath("run_replay");
  std::filesystem::remove_all(dir);
  ASSERT_GT(testing::WriteKuaiRandHead(dir / "data" / "kuairand-pure", kRows, 15000), 0);
  // Unpaced, so the head goes through in seconds.
  const std::string config = (dir / "replay.pbtxt").string();
  std::ofstream(config) << "replay { impressions_per_second: 0 }\n";

  Subprocess run({"/usr/bin/env", "FRESHET_DATA_DIR=" + (dir / "data").string(), FRESHET_BINARY_PATH, "run",
                  "--replay", "kuairand", "--config", config, "--duration", "90", "--admin-port", "0", "--data-dir",
                  (dir / "state").string()});
  auto banner = run.WaitForLinePrefix("freshet: replay kuairand ", 30000);
  ASSERT_TRUE(banner.has_value()) << run.transcript();
  EXPECT_NE(banner->find((dir / "data" / "kuairand-pure").string()), std::string::npos) << *banner;
  EXPECT_EQ(run.transcript().find("freshet: simulator"), std::string::npos) << "the simulator must not run";
  auto finished = run.WaitForLinePrefix("freshet: replay finished: ", 60000);
  ASSERT_TRUE(finished.has_value()) << run.transcript();
  EXPECT_NE(finished->find("impressions=" + std::to_string(kRows) + " "), std::string::npos) << *finished;
  EXPECT_NE(finished->find("watermark flushed to "), std::string::npos) << *finished;

  // The learner trains on the log's 34 sparse slots (slot 33: tags).
  const std::string admin = Capture(run.transcript(), "freshet: admin http://(127\\.0\\.0\\.1:\\d+)");
  ASSERT_FALSE(admin.empty()) << run.transcript();
  const std::string host = admin.substr(0, admin.find(':'));
  const int port = std::stoi(admin.substr(admin.find(':') + 1));
  auto cfg = HttpGet(host, port, "/config");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_NE(cfg->body.find("slot: 33"), std::string::npos) << cfg->body;
  EXPECT_NE(cfg->body.find("dataset: \"kuairand\""), std::string::npos) << cfg->body;

  // Every logged impression is joined (the flush closed the last windows), trained
  // and published; both replicas serve a version.
  bool done = false;
  std::string last;
  for (int i = 0; i < 20 && !done; ++i) {
    auto line = run.WaitForLinePrefix("progress   served=", 10000);
    if (!line) break;
    const std::string t = run.transcript();
    const std::string samples = Capture(t.substr(t.rfind("progress t=")), " samples=(\\d+)");
    const std::string trained = Capture(t.substr(t.rfind("progress   trained/s=")), " trained=(\\d+)");
    last = *line;
    done = !samples.empty() && std::stoi(samples) >= kRows && !trained.empty() && std::stoi(trained) >= kRows &&
           std::regex_search(*line, std::regex("served=v[1-9]\\d*,v[1-9]\\d*"));
  }
  EXPECT_TRUE(done) << "not every replayed impression was joined, trained and served; last: " << last << "\n"
                    << run.transcript();
  run.Signal(SIGTERM);
  auto summary = run.WaitForLinePrefix("summary reason=", 20000);
  ASSERT_TRUE(summary.has_value()) << run.transcript();
  EXPECT_NE(summary->find(" impressions=" + std::to_string(kRows) + " "), std::string::npos) << *summary;
  EXPECT_EQ(run.Wait(20000), 0) << run.transcript();
  std::filesystem::remove_all(dir);
}

TEST(RunReplayTest, MissingDataSetSaysWhereItLookedAndWhatToSet) {
  const std::filesystem::path nowhere = TempPath("no_data");
  std::filesystem::remove_all(nowhere);
  auto r = RunShell("FRESHET_DATA_DIR='" + nowhere.string() + "' '" + FRESHET_BINARY_PATH +
                    "' run --replay kuairand --admin-port 0 --duration 5 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not at " + nowhere.string() + "/kuairand-pure/" + testing::kKuaiRandLogName),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("set FRESHET_DATA_DIR"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("kafka bootstrap="), std::string::npos) << "nothing starts without the data: " << r.output;

  r = RunWithConfig("bad_log.pbtxt", "replay { dataset: \"kuairand\" log_path: \"/nonexistent/log.csv.gz\" }\n");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("replay.log_path = /nonexistent/log.csv.gz: no such file"), std::string::npos) << r.output;
}

TEST(RunReplayTest, UnknownDataSetIsAUsageError) {
  auto r = RunShell(std::string("'") + FRESHET_BINARY_PATH + "' run --replay movielens --admin-port 0 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--replay movielens: unknown data set"), std::string::npos) << r.output;

  r = RunWithConfig("bad_dataset.pbtxt", "replay { dataset: \"movielens\" }\n");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("replay.dataset = \"movielens\""), std::string::npos) << r.output;
}

}  // namespace
}  // namespace freshet
