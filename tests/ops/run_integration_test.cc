// `freshet run` and `freshet kafka` as real processes: the bootstrap line comes
// first, an external Kafka client (kcat) produces into and consumes from the embedded
// cluster while the pipeline runs, /metrics passes promtool, /readyz is green, and
// SIGTERM stops everything cleanly within 10 s with a summary.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/http_client.h"
#include "tests/util/subprocess.h"

namespace freshet {
namespace {

using testing::RunShell;
using testing::Subprocess;

std::string Capture(const std::string& line, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex(pattern))) return m[1];
  return "";
}

void RequireTool(const char* tool) {
  if (RunShell(std::string("command -v ") + tool).exit_code != 0) {
    GTEST_FAIL() << tool << " is not installed: run ops/install-deps.sh";
  }
}

TEST(RunIntegrationTest, KcatTalksToTheEmbeddedClusterWhileRunRuns) {
  RequireTool("kcat");
  RequireTool("promtool");
  Subprocess run({FRESHET_BINARY_PATH, "run", "--duration", "60", "--admin-port", "0", "--rate", "500", "--seed", "11"});
  ASSERT_TRUE(run.started());
  auto first = run.ReadLine(30000);
  ASSERT_TRUE(first.has_value()) << run.transcript();
  const std::string bootstrap = Capture(*first, "^freshet: kafka bootstrap=(\\S+)");
  ASSERT_FALSE(bootstrap.empty()) << "the bootstrap line must come first: " << *first;
  auto admin_line = run.WaitForLinePrefix("freshet: admin ", 10000);
  ASSERT_TRUE(admin_line.has_value()) << run.transcript();
  const int port = std::stoi(Capture(*admin_line, "http://127\\.0\\.0\\.1:(\\d+)"));

  // Metadata: the four topics exist.
  auto meta = RunShell("kcat -b " + bootstrap + " -L -m 10");
  ASSERT_EQ(meta.exit_code, 0) << meta.output;
  for (const char* t : {"impressions", "labels", "samples", "deadletter"}) {
    EXPECT_NE(meta.output.find(std::string("topic \"") + t + "\""), std::string::npos) << meta.output;
  }

  // kcat produces into the cluster and reads its own messages back.
  auto produce = RunShell("printf 'alpha\\nbeta\\ngamma\\n' | kcat -b " + bootstrap + " -P -t kcat_probe -m 10");
  ASSERT_EQ(produce.exit_code, 0) << produce.output;
  auto consume = RunShell("kcat -b " + bootstrap + " -C -t kcat_probe -o beginning -c 3 -e -q -m 20");
  ASSERT_EQ(consume.exit_code, 0) << consume.output;
  for (const char* v : {"alpha", "beta", "gamma"}) EXPECT_NE(consume.output.find(v), std::string::npos) << consume.output;

  // kcat reads what the simulator wrote: keys are the simulator's request ids.
  // No -e: wait (up to 30 s) until the simulator has written 20 impressions.
  auto imps = RunShell("timeout 30 kcat -b " + bootstrap + " -C -t impressions -o beginning -c 20 -q -f '%k\\n'");
  ASSERT_EQ(imps.exit_code, 0) << imps.output;
  EXPECT_NE(imps.output.find("s11-"), std::string::npos) << imps.output;

  // Admin endpoints of the running pipeline.
  auto ready = HttpGet("127.0.0.1", port, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto metrics = HttpGet("127.0.0.1", port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("freshet_simulator_events_total{topic=\"impressions\"}"), std::string::npos);
  std::string path = ::testing::TempDir() + "/run_metrics.txt";
  std::ofstream(path) << metrics->body;
  auto check = RunShell("promtool check metrics < " + path);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  auto status = HttpGet("127.0.0.1", port, "/status");
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->body.find("\"bootstrap\":\"" + bootstrap + "\""), std::string::npos) << status->body;

  // SIGTERM: clean stop within 10 s, summary printed, exit 0.
  auto t0 = std::chrono::steady_clock::now();
  run.Signal(SIGTERM);
  auto summary = run.WaitForLinePrefix("summary ", 10000);
  auto code = run.Wait(10000);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(summary.has_value()) << run.transcript();
  EXPECT_NE(summary->find("reason=\"SIGTERM\""), std::string::npos) << *summary;
  EXPECT_NE(summary->find("failed=0"), std::string::npos) << *summary;
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(elapsed, 10000);
}

TEST(RunIntegrationTest, DurationStopsWithSummaryAndProgress) {
  Subprocess run({FRESHET_BINARY_PATH, "run", "--duration", "6", "--admin-port", "0", "--rate", "300"});
  auto progress = run.WaitForLinePrefix("progress ", 20000);
  ASSERT_TRUE(progress.has_value()) << run.transcript();
  EXPECT_NE(progress->find("impressions/s="), std::string::npos);
  auto summary = run.WaitForLinePrefix("summary ", 20000);
  ASSERT_TRUE(summary.has_value()) << run.transcript();
  EXPECT_NE(summary->find("reason=\"duration reached\""), std::string::npos);
  const int impressions = std::stoi(Capture(*summary, "impressions=(\\d+)"));
  EXPECT_NEAR(impressions, 6 * 300, 300) << *summary;
  EXPECT_EQ(run.Wait(10000).value_or(-1), 0);
}

TEST(RunIntegrationTest, BadConfigExitsTwoNamingTheField) {
  std::string path = ::testing::TempDir() + "/bad_run.pbtxt";
  std::ofstream(path) << "kafka { partitions: 0 }\n";
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " run --config " + path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("kafka.partitions = 0"), std::string::npos) << r.output;
  auto flag = RunShell(std::string(FRESHET_BINARY_PATH) + " run --durration 5");
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_NE(flag.output.find("unknown flag --durration"), std::string::npos) << flag.output;
}

TEST(RunIntegrationTest, UnreachableExternalKafkaFailsWithAHint) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " run --admin-port 0 --kafka 127.0.0.1:1 --duration 1");
  auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(elapsed, 10) << "an unreachable cluster should fail fast";
  EXPECT_NE(r.output.find("127.0.0.1:1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--kafka"), std::string::npos) << r.output;
}

// The external-cluster path: `freshet run --kafka` against a cluster hosted by another
// process (topics already exist, created by `freshet kafka`), with the joiner writing
// samples that an outside client can read.
TEST(RunIntegrationTest, RunsAgainstAnExternalClusterAndJoinsSamples) {
  RequireTool("kcat");
  Subprocess kafka({FRESHET_BINARY_PATH, "kafka"});
  auto first = kafka.ReadLine(20000);
  ASSERT_TRUE(first.has_value());
  const std::string bootstrap = Capture(*first, "^bootstrap=(\\S+)");
  ASSERT_FALSE(bootstrap.empty()) << *first;
  const std::string dir = ::testing::TempDir() + "/run_external";
  std::filesystem::remove_all(dir);
  const std::string config = ::testing::TempDir() + "/immediate.pbtxt";
  std::ofstream(config) << "ingest { policy: POLICY_IMMEDIATE }\n";
  auto r = RunShell(std::string(FRESHET_BINARY_PATH) + " run --kafka " + bootstrap + " --config " + config +
                    " --duration 8 --rate 200 --admin-port 0 --data-dir " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(external)"), std::string::npos) << r.output;
  const std::string summary = Capture(r.output, "(summary reason=[^\\n]*)");
  ASSERT_FALSE(summary.empty()) << r.output;
  const int samples = std::stoi(Capture(summary, "samples=(\\d+)"));
  const int impressions = std::stoi(Capture(summary, "impressions=(\\d+)"));
  EXPECT_GE(samples, impressions) << summary;  // one per impression, plus positive copies
  // Against a real cluster the join state persists for the next run.
  EXPECT_TRUE(std::filesystem::exists(dir + "/ingest")) << dir;
  auto read = RunShell("kcat -b " + bootstrap + " -C -t samples -o beginning -e -q -f '%k\\n' | wc -l");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_EQ(std::stoi(read.output), samples) << read.output;
  kafka.Signal(SIGTERM);
  EXPECT_EQ(kafka.Wait(10000).value_or(-1), 0);
}

TEST(KafkaCommandTest, HostsTheClusterForOtherProcesses) {
  RequireTool("kcat");
  Subprocess kafka({FRESHET_BINARY_PATH, "kafka", "--partitions", "2"});
  auto first = kafka.ReadLine(20000);
  ASSERT_TRUE(first.has_value());
  const std::string bootstrap = Capture(*first, "^bootstrap=(\\S+)");
  ASSERT_FALSE(bootstrap.empty()) << *first;
  auto meta = RunShell("kcat -b " + bootstrap + " -L -t labels -m 10");
  ASSERT_EQ(meta.exit_code, 0) << meta.output;
  EXPECT_NE(meta.output.find("with 2 partitions"), std::string::npos) << meta.output;
  kafka.Signal(SIGTERM);
  EXPECT_EQ(kafka.Wait(10000).value_or(-1), 0);
}

}  // namespace
}  // namespace freshet
