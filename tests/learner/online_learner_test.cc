// OnlineLearner's threads with an in-memory source (no Kafka): consume → queue →
// train, stop with a final checkpoint, restart from the checkpointed offsets with
// replays skipped, backpressure on a tiny queue, /status and readiness.
#include "learner/online_learner.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/learner/online_test_util.h"

namespace freshet::learner {
namespace {

using testutil::MakeSample;
using testutil::MemorySource;
using testutil::OpenStore;
using testutil::TempDir;
using testutil::TinyLearner;
using testutil::TwoTasks;
using testutil::WaitFor;

FreshetConfig Config(int batch, int64_t deadline_ms, int queue_capacity) {
  FreshetConfig c;
  *c.mutable_learner() = TinyLearner(batch, deadline_ms);
  c.mutable_learner()->set_queue_capacity(queue_capacity);
  for (const TaskConfig& t : TwoTasks()) *c.add_tasks() = t;
  return c;
}

std::unique_ptr<OnlineLearner> NewLearner(const FreshetConfig& config, MemorySource::Log* log, store::KvStore* db,
                                          MetricsRegistry* metrics) {
  OnlineLearner::Options o;
  o.config = config;
  o.source = std::make_unique<MemorySource>(log);
  o.store = db;
  o.metrics = metrics;
  auto l = OnlineLearner::Create(std::move(o));
  EXPECT_TRUE(l.ok()) << l.status();
  return l.ok() ? std::move(l).value() : nullptr;
}

TEST(OnlineLearnerTest, TrainsStopsWithCheckpointAndResumesFromItsOffsets) {
  TempDir dir("online");
  auto db = OpenStore(dir.path);
  ASSERT_NE(db, nullptr);
  MemorySource::Log log;
  log.partitions.resize(2);
  for (int i = 0; i < 100; ++i) log.partitions[i % 2].push_back(MakeSample(i).SerializeAsString());
  const FreshetConfig config = Config(8, /*deadline_ms=*/30, 64);
  {
    MetricsRegistry metrics;
    auto learner = NewLearner(config, &log, db.get(), &metrics);
    EXPECT_EQ(learner->Ready().code(), StatusCode::kFailedPrecondition);  // not started
    ASSERT_TRUE(learner->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return learner->Progress().samples_trained == 100; }))
        << learner->StatusJson();
    EXPECT_TRUE(learner->Ready().ok());
    const std::string status = learner->StatusJson();
    for (const char* key : {"\"samples_trained\":100", "\"samples_per_s\"", "\"task\":\"click\"", "\"gauc\"",
                            "\"log_loss\"", "\"calibration\"", "\"last_checkpoint\"", "\"queue_capacity\":64"})
      EXPECT_NE(status.find(key), std::string::npos) << key << " missing in " << status;
    ASSERT_TRUE(learner->Stop().ok());
    const LearnerProgress p = learner->Progress();
    EXPECT_GE(p.checkpoint_version, 1u);
    EXPECT_EQ(p.trained_offsets.at(0), 50);
    EXPECT_EQ(p.trained_offsets.at(1), 50);
    std::lock_guard<std::mutex> lock(log.mu);
    ASSERT_EQ(log.last_commit.size(), 2u);  // offsets also committed to the source
    EXPECT_EQ(log.last_commit[0].offset + log.last_commit[1].offset, 100);
  }
  // 20 new samples and 10 replays of trained ones arrive while the learner is down.
  {
    std::lock_guard<std::mutex> lock(log.mu);
    for (int i = 100; i < 120; ++i) log.partitions[i % 2].push_back(MakeSample(i).SerializeAsString());
    for (int i = 0; i < 10; ++i) log.partitions[i % 2].push_back(MakeSample(i).SerializeAsString());
  }
  MetricsRegistry metrics;
  auto learner = NewLearner(config, &log, db.get(), &metrics);
  ASSERT_TRUE(learner->Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    const LearnerProgress p = learner->Progress();
    return p.samples_trained == 120 && p.duplicates_skipped == 10;
  })) << learner->StatusJson();
  ASSERT_TRUE(learner->Stop().ok());
  EXPECT_EQ(learner->Progress().samples_trained, 120);  // nothing before the offsets was read again
  EXPECT_EQ(metrics.GetCounter("freshet_learner_samples_total", "")->Value(), 120);
  EXPECT_EQ(log.starts, 2);
}

TEST(OnlineLearnerTest, SmallQueueAppliesBackpressureAndLosesNothing) {
  MemorySource::Log log;
  log.partitions.resize(1);
  for (int i = 0; i < 3000; ++i) log.partitions[0].push_back(MakeSample(i).SerializeAsString());
  MetricsRegistry metrics;
  auto learner = NewLearner(Config(16, 20, /*queue_capacity=*/4), &log, nullptr, &metrics);
  ASSERT_TRUE(learner->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return learner->Progress().samples_trained == 3000; })) << learner->StatusJson();
  ASSERT_TRUE(learner->Stop().ok());
  metrics.Render();  // runs the queue collector
  EXPECT_GT(metrics.GetGauge("freshet_learner_queue_full_waits", "")->Value(), 0);
  EXPECT_EQ(learner->Progress().duplicates_skipped, 0);
}

}  // namespace
}  // namespace freshet::learner
