// `freshet replay kuairand` end to end, every part a real process: `freshet kafka`
// hosts the cluster, `freshet ingest` joins, the replay writes the head of the real
// KuaiRand-Pure log. At the end of the log the replay moves the watermark past every
// window, so ingest emits exactly one sample per logged impression, with the log's
// click positives, without waiting for newer events.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include "common/clock.h"
#include "ingest/kafka_client.h"
#include "ops/config.h"
#include "schemas/sample.pb.h"
#include "tests/ops/kuairand_head.h"
#include "tests/util/subprocess.h"

namespace freshet::ops {
namespace {

constexpr int kRows = 3000;
const std::string kData = freshet::testing::KuaiRandDir();

TEST(ReplayProcessTest, EndOfLogClosesEveryWindow) {
  SKIP_WITHOUT_DATA(kData);
  const std::string bin = FRESHET_BINARY_PATH;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("freshet_replay_test_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const FreshetConfig config = DefaultConfig();
  int click_task = -1;
  for (int t = 0; t < config.tasks_size(); ++t)
    if (config.tasks(t).name() == "click") click_task = t;
  ASSERT_GE(click_task, 0);
  const int clicks = freshet::testing::WriteKuaiRandHead(dir / "log", kRows, config.tasks(click_task).window_ms());
  ASSERT_GT(clicks, 0);

  freshet::testing::Subprocess kafka({bin, "kafka", "--brokers", "1", "--partitions", "4"});
  auto line = kafka.WaitForLinePrefix("bootstrap=", 20000);
  ASSERT_TRUE(line.has_value()) << kafka.transcript();
  const std::string bootstrap = line->substr(std::strlen("bootstrap="));
  freshet::testing::Subprocess ingest(
      {bin, "ingest", "--kafka", bootstrap, "--data-dir", (dir / "ingest").string(), "--admin-port", "0"},
      /*merge_stderr=*/false);
  ASSERT_TRUE(ingest.WaitForLinePrefix("freshet ingest: admin", 20000).has_value()) << ingest.transcript();

  auto replay = freshet::testing::RunShell("'" + bin + "' replay kuairand --log '" + (dir / "log" / freshet::testing::kKuaiRandLogName).string() +
                                           "' --kafka " + bootstrap + " 2>&1");
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  ASSERT_NE(replay.output.find("impressions=" + std::to_string(kRows) + " "), std::string::npos) << replay.output;
  ASSERT_NE(replay.output.find("watermark=\"flushed to "), std::string::npos) << replay.output;

  ingest::KafkaConsumer::Options o;
  o.bootstrap_servers = bootstrap;
  o.group_id = "replay-test-reader";
  auto consumer = ingest::KafkaConsumer::Create(o);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Subscribe({config.kafka().samples_topic()}).ok());
  std::set<std::string> ids;
  int click_positives = 0;
  const int64_t deadline = Clock::Real()->NowMs() + 60000;
  while (static_cast<int>(ids.size()) < kRows && Clock::Real()->NowMs() < deadline) {
    auto m = (*consumer)->Poll(200);
    if (!m.ok() || !m->has_value()) continue;
    Sample s;
    ASSERT_TRUE(s.ParseFromString((*m)->value));
    if (s.request_id().rfind("flush-", 0) == 0) continue;
    if (ids.insert(s.sample_id()).second && s.label(click_task) > 0.5f) ++click_positives;
  }
  EXPECT_EQ(static_cast<int>(ids.size()), kRows) << "samples missing: the last windows did not close";
  EXPECT_EQ(click_positives, clicks);

  ingest.Signal(SIGTERM);
  EXPECT_EQ(ingest.Wait(10000), 0);
  kafka.Signal(SIGTERM);
  kafka.Wait(10000);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace freshet::ops
