// The real daemon: `freshet kafka` hosts the cluster in its own process, `freshet
// learn` is SIGKILLed after training work it has not checkpointed yet, restarted, and
// must end with every unique sample counted exactly once (replays and duplicates
// skipped by dedup), then stop on SIGTERM with exit 0 within 10 s.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <thread>

#include "common/clock.h"
#include "common/http_client.h"
#include "ingest/kafka_client.h"
#include "ops/config.h"
#include "tests/learner/online_test_util.h"
#include "tests/util/subprocess.h"

namespace freshet::learner {
namespace {

using freshet::testing::Subprocess;
using testutil::MakeSample;

int64_t Field(const std::string& json, const std::string& key) {
  std::smatch m;
  if (std::regex_search(json, m, std::regex("\"" + key + "\":(-?[0-9]+)"))) return std::stoll(m[1]);
  return -1;
}

std::string Status(int port) {
  auto r = HttpGet("127.0.0.1", port, "/status", 2000);
  return r.ok() ? r->body : "";
}

bool WaitStatus(int port, const std::function<bool(const std::string&)>& done, int timeout_ms) {
  const int64_t until = Clock::Real()->NowMs() + timeout_ms;
  while (Clock::Real()->NowMs() < until) {
    if (done(Status(port))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int AdminPort(Subprocess* learner) {
  auto line = learner->WaitForLinePrefix("freshet learn: admin http://", 20000);
  if (!line) return -1;
  std::smatch m;
  return std::regex_search(*line, m, std::regex(":([0-9]+)")) ? std::stoi(m[1]) : -1;
}

// The restart once hung here: the learner committed its checkpoint's offsets
// synchronously before its group join had completed, and the commit waited on the
// join while the join waited on the same thread's next poll. Commits are now async
// and cover assigned partitions only.
TEST(LearnProcessTest, SigkillRestartCountsEverySampleExactlyOnce) {
  const std::string bin = FRESHET_BINARY_PATH;
  Subprocess kafka({bin, "kafka", "--brokers", "1", "--partitions", "2"});
  auto line = kafka.WaitForLinePrefix("bootstrap=", 20000);
  ASSERT_TRUE(line) << kafka.transcript();
  const std::string bootstrap = line->substr(strlen("bootstrap="));

  testutil::TempDir dir("learn_process");
  std::filesystem::create_directories(dir.path);
  FreshetConfig config;
  *config.mutable_learner() = testutil::TinyLearner(16, /*deadline_ms=*/50);
  config.mutable_learner()->set_checkpoint_interval_ms(1500);
  for (const TaskConfig& t : testutil::TwoTasks()) *config.add_tasks() = t;
  const std::string config_path = (dir.path / "learn.pbtxt").string();
  std::ofstream(config_path) << ops::ConfigToText(config);
  const std::vector<std::string> learn_cmd = {bin, "learn", "--config", config_path, "--kafka", bootstrap,
                                              "--data-dir", (dir.path / "data").string(), "--admin-port", "0"};
  // The restart joins the same group: the killed member's session times out (6 s) and
  // the group rebalances to the new process, which must then seek to the offsets
  // stored with its checkpoint, not to the group's committed ones.
  const std::vector<std::string>& restart_cmd = learn_cmd;

  ingest::KafkaProducer::Options po;
  po.bootstrap_servers = bootstrap;
  auto producer = ingest::KafkaProducer::Create(po);
  ASSERT_TRUE(producer.ok());
  auto produce = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const Sample s = MakeSample(i);
      ASSERT_TRUE((*producer)->Produce("samples", std::to_string(s.user_id()), s.SerializeAsString()).ok());
    }
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  };

  // Phase A1: 1000 samples, trained and checkpointed.
  produce(0, 1000);
  auto learner = std::make_unique<Subprocess>(learn_cmd);
  int port = AdminPort(learner.get());
  ASSERT_GT(port, 0) << learner->transcript();
  ASSERT_TRUE(WaitStatus(port, [](const std::string& s) {
    return Field(s, "samples_trained") == 1000 && Field(s, "step") == Field(s, "steps");
  }, 30000)) << Status(port);
  auto ready = HttpGet("127.0.0.1", port, "/readyz", 2000);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  // Phase A2: 1000 new samples and 100 replays of A1; SIGKILL as soon as they are
  // trained, before the next checkpoint (1.5 s interval) can cover them.
  produce(1000, 2000);
  produce(0, 100);
  ASSERT_TRUE(WaitStatus(port, [](const std::string& s) { return Field(s, "records_consumed") >= 2100; }, 20000))
      << Status(port);
  const std::string at_kill = Status(port);
  learner->Signal(SIGKILL);
  ASSERT_EQ(learner->Wait(5000), 128 + SIGKILL);
  const bool lost_work = Field(at_kill, "step") < Field(at_kill, "steps");
  std::printf("at SIGKILL: steps=%lld, last checkpoint at step %lld (%s)\n",
              static_cast<long long>(Field(at_kill, "steps")), static_cast<long long>(Field(at_kill, "step")),
              lost_work ? "work since then is lost and must be retrained" : "checkpoint had caught up");
  // Phase B, while it is down: 500 new samples and 200 replays of A2.
  produce(2000, 2500);
  produce(1000, 1200);

  learner = std::make_unique<Subprocess>(restart_cmd);
  port = AdminPort(learner.get());
  ASSERT_GT(port, 0) << learner->transcript();
  ASSERT_TRUE(WaitStatus(port, [](const std::string& s) { return Field(s, "records_consumed") >= 0 &&
                                                             Field(s, "samples_trained") == 2500 &&
                                                             Field(s, "pending_samples") == 0; }, 40000))
      << Status(port);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // nothing more may arrive
  const std::string final_status = Status(port);
  EXPECT_EQ(Field(final_status, "samples_trained"), 2500) << final_status;
  EXPECT_EQ(Field(final_status, "duplicates_skipped"), 300) << final_status;  // 100 A1 + 200 A2 replays
  auto metrics = HttpGet("127.0.0.1", port, "/metrics", 2000);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("freshet_learner_auc{task=\"click\"}"), std::string::npos);
  EXPECT_NE(metrics->body.find("freshet_learner_samples_total 2500"), std::string::npos);

  const int64_t t0 = Clock::Real()->NowMs();
  learner->Signal(SIGTERM);
  auto summary = learner->WaitForLinePrefix("summary ", 10000);
  EXPECT_EQ(learner->Wait(10000), 0);
  EXPECT_LT(Clock::Real()->NowMs() - t0, 10000);
  ASSERT_TRUE(summary) << learner->transcript();
  EXPECT_NE(summary->find("samples=2500 duplicates=300"), std::string::npos) << *summary;
  kafka.Signal(SIGTERM);
  kafka.Wait(10000);
}

}  // namespace
}  // namespace freshet::learner
