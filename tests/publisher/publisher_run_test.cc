// `freshet run` with its two serving replicas (child processes): the learner's
// publisher pushes versions that both replicas serve, the progress line shows the
// served version and freshness, `freshet ops versions` lists them through run's
// admin port, and SIGINT stops the replicas too (their admin ports go quiet).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>

#include "common/http_client.h"
#include "tests/learner/online_test_util.h"
#include "tests/util/subprocess.h"

namespace freshet {
namespace {

using testing::RunShell;
using testing::Subprocess;

std::string Capture(const std::string& text, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(pattern)) ? std::string(m[1]) : "";
}

TEST(PublisherRunTest, RunPublishesToBothReplicasAndReportsWhatTheyServe) {
  learner::testutil::TempDir dir("pub_run");
  std::filesystem::create_directories(dir.path);
  const std::string config = (dir.path / "run.pbtxt").string();
  std::ofstream(config) << "ingest { policy: POLICY_IMMEDIATE }\n"
                           "publisher { publish_interval_ms: 500 }\n"
                           "store { data_dir: \"" << (dir.path / "data").string() << "\" }\n";
  Subprocess run({FRESHET_BINARY_PATH, "run", "--config", config, "--duration", "60", "--admin-port", "0", "--rate",
                  "400", "--seed", "5"});
  std::vector<int> replica_ports;
  for (int i = 0; i < 2; ++i) {
    auto line = run.WaitForLinePrefix("freshet: serving replica " + std::to_string(i), 30000);
    ASSERT_TRUE(line.has_value()) << run.transcript();
    replica_ports.push_back(std::stoi(Capture(*line, "admin http://127\\.0\\.0\\.1:(\\d+)")));
  }
  auto admin_line = run.WaitForLinePrefix("freshet: admin ", 30000);
  ASSERT_TRUE(admin_line.has_value()) << run.transcript();
  const std::string learner_port = Capture(*admin_line, "http://127\\.0\\.0\\.1:(\\d+)");

  // Progress lines until both replicas serve the same trained version.
  std::string served;
  for (int i = 0; i < 8 && served.empty(); ++i) {
    auto line = run.WaitForLinePrefix("progress   served=", 15000);
    ASSERT_TRUE(line.has_value()) << run.transcript();
    const std::string a = Capture(*line, "served=v(\\d+),v\\d+"), b = Capture(*line, "served=v\\d+,v(\\d+)");
    // Served versions carry a freshness once they contain trained samples (the first
    // versions of a run, cut before the learner's group join completes, do not).
    if (!a.empty() && a == b && std::stoi(a) >= 2 && !Capture(*line, "freshness=([0-9.]+s),").empty()) served = *line;
  }
  ASSERT_FALSE(served.empty()) << run.transcript();

  auto versions = RunShell(std::string(FRESHET_BINARY_PATH) + " ops versions --learner 127.0.0.1:" + learner_port);
  EXPECT_EQ(versions.exit_code, 0) << versions.output;
  EXPECT_NE(versions.output.find("\n1        full"), std::string::npos) << versions.output;
  EXPECT_NE(versions.output.find("delta"), std::string::npos) << versions.output;
  auto status = HttpGet("127.0.0.1", replica_ports[0], "/status");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->body.find("\"serving\":true"), std::string::npos) << status->body;

  run.Signal(SIGINT);
  auto summary = run.WaitForLinePrefix("summary served=v", 20000);
  EXPECT_TRUE(summary.has_value()) << run.transcript();
  auto code = run.Wait(10000);
  ASSERT_TRUE(code.has_value()) << run.transcript();
  EXPECT_EQ(*code, 0) << run.transcript();
  for (int port : replica_ports) EXPECT_FALSE(HttpGet("127.0.0.1", port, "/healthz", 1000).ok()) << port;
}

}  // namespace
}  // namespace freshet
