// The learner with TWIN on (learner/twin_feed.h): histories are read into each batch,
// engagements appended after each step (exactly the positives trained, in time
// order), the checkpoint manifest records the cache's sequence number, a replay after
// a restore folds into the cache instead of duplicating it, and a real restart (store
// closed and reopened) keeps the histories while training continues.
#include "learner/twin_feed.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "learner/online_learner.h"
#include "tests/learner/online_test_util.h"

namespace freshet::learner {
namespace {

using store::Behaviour;
using testutil::MakeSample;
using testutil::MemorySource;
using testutil::OpenStore;
using testutil::Record;
using testutil::TempDir;
using testutil::TwinLearner;
using testutil::TwoTasks;
using testutil::WaitFor;

// What the cache must hold after samples [0, n) are trained: each user's engaged
// samples (a task positive), oldest first, action bit t = task t positive.
std::map<uint64_t, std::vector<Behaviour>> ExpectedHistories(int n) {
  std::map<uint64_t, std::vector<Behaviour>> out;
  for (int i = 0; i < n; ++i) {
    const Sample s = MakeSample(i);
    uint32_t actions = 0;
    for (int t = 0; t < s.label_size(); ++t)
      if (s.label(t) > 0.5f) actions |= 1u << t;
    if (actions != 0) out[s.user_id()].push_back({s.item_id(), s.event_time_ms(), actions, 0});
  }
  return out;
}

void ExpectCacheHolds(const store::BehaviourCache& cache, int n) {
  const auto expected = ExpectedHistories(n);
  ASSERT_FALSE(expected.empty());
  for (uint64_t user = 0; user < 40; ++user) {
    auto h = cache.Read(user);
    ASSERT_TRUE(h.ok()) << h.status();
    auto it = expected.find(user);
    EXPECT_EQ(*h, it == expected.end() ? std::vector<Behaviour>{} : it->second) << "user " << user;
  }
}

using Loop = testutil::LoopFixture;

TEST(TwinFeedTest, LoopAttachesHistoriesAppendsEngagementsAndRecordsTheSequence) {
  const LearnerConfig config = TwinLearner(8, 0);
  TempDir dir("twin_loop");
  auto db = OpenStore(dir.path, config.model());
  ASSERT_NE(db, nullptr);
  Loop f(config, db.get());
  ASSERT_NE(f.loop, nullptr);
  ASSERT_NE(f.loop->twin_feed(), nullptr);
  int64_t attached = 0;
  f.loop->SetBatchHookForTest([&](Batch* b) {
    ASSERT_EQ(b->behaviour_offsets.size(), static_cast<size_t>(b->size) + 1);
    attached += static_cast<int64_t>(b->behaviours.size());
  });
  const int n = 320;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), i)).ok());
  ASSERT_EQ(f.loop->Progress().steps, n / 8);
  EXPECT_GT(attached, 0) << "later batches must see the earlier batches' engagements";
  EXPECT_GT(f.loop->trainer().model().projection_cache()->size(), 0) << "GSU never searched a history";
  ExpectCacheHolds(f.loop->twin_feed()->cache(), n);
  int64_t engaged = 0;
  for (const auto& [u, h] : ExpectedHistories(n)) engaged += static_cast<int64_t>(h.size());
  EXPECT_EQ(f.loop->twin_feed()->appended(), engaged);
  EXPECT_EQ(f.metrics.GetCounter("freshet_learner_twin_engagements_total", "")->Value(), engaged);
  const double consistency = f.metrics.GetGauge("freshet_learner_twin_consistency", "")->Value();
  EXPECT_GE(consistency, 0.0);
  EXPECT_LE(consistency, 1.0);

  const uint64_t sequence = f.loop->twin_feed()->sequence();
  ASSERT_GT(sequence, 0u);
  ASSERT_TRUE(f.loop->Checkpoint().ok());
  CheckpointStore checkpoints(db.get(), 3);
  auto newest = checkpoints.ReadNewest();
  ASSERT_TRUE(newest.ok() && newest->has_value()) << newest.status();
  EXPECT_EQ((*newest)->manifest.behaviour_cache_sequence(), sequence);
}

TEST(TwinFeedTest, ReplayAfterRestoreFoldsIntoTheCacheAndReprojects) {
  const LearnerConfig config = TwinLearner(8, 0);
  TempDir dir("twin_replay");
  auto db = OpenStore(dir.path, config.model());
  ASSERT_NE(db, nullptr);
  const int half = 160, n = 320;
  {
    Loop first(config, db.get());
    for (int i = 0; i < half; ++i) ASSERT_TRUE(first.loop->Add(Record(MakeSample(i), i)).ok());
    ASSERT_TRUE(first.loop->Checkpoint().ok());
    // Trained past the checkpoint, then "crashed": the cache is ahead of it.
    for (int i = half; i < n; ++i) ASSERT_TRUE(first.loop->Add(Record(MakeSample(i), i)).ok());
    ExpectCacheHolds(first.loop->twin_feed()->cache(), n);
  }
  Loop second(config, db.get());
  auto restored = second.loop->Restore();
  ASSERT_TRUE(restored.ok() && *restored) << restored.status();
  ASSERT_EQ(second.loop->trained_offsets().at(0), half);
  // Projections of the discarded weights are gone: re-projected, never misread.
  EXPECT_EQ(second.loop->trainer().model().projection_cache()->size(), 0);
  for (int i = half; i < n; ++i) ASSERT_TRUE(second.loop->Add(Record(MakeSample(i), i)).ok());
  EXPECT_EQ(second.loop->Progress().samples_trained, n);
  ExpectCacheHolds(second.loop->twin_feed()->cache(), n);  // folded, not duplicated
  EXPECT_GT(second.loop->trainer().model().projection_cache()->size(), 0);
}

TEST(TwinFeedTest, RefusesTwinWithoutAStoreOrWithABadPlayTimeTask) {
  MetricsRegistry metrics;
  TrainingLoop::Options o;
  o.learner = TwinLearner(8, 0);
  o.tasks = TwoTasks();
  o.metrics = &metrics;
  auto no_store = TrainingLoop::Create(o);
  EXPECT_EQ(no_store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_store.status().message().find("learner.model.twin.enabled"), std::string::npos);
  TempDir dir("twin_bad");
  LearnerConfig config = TwinLearner(8, 0);
  auto db = OpenStore(dir.path, config.model());
  config.mutable_model()->mutable_twin()->set_play_time_task("click");
  auto binary = TwinFeed::Create(config.model(), TwoTasks(), db.get(), nullptr);
  EXPECT_EQ(binary.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(binary.status().message().find("learner.model.twin.play_time_task"), std::string::npos);
  config.mutable_model()->mutable_twin()->set_play_time_task("watch");
  EXPECT_EQ(TwinFeed::Create(config.model(), TwoTasks(), db.get(), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  config.mutable_model()->mutable_twin()->clear_play_time_task();
  auto plain = OpenStore(dir.path / "plain");  // no behaviour family
  auto unconfigured = TwinFeed::Create(config.model(), TwoTasks(), plain.get(), nullptr);
  EXPECT_EQ(unconfigured.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unconfigured.status().message().find("ConfigureStore"), std::string::npos);
  config.mutable_model()->mutable_twin()->set_enabled(false);
  auto off = TwinFeed::Create(config.model(), TwoTasks(), db.get(), nullptr);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
}

TEST(TwinFeedTest, OnlineLearnerRestartKeepsTheCacheAndTrainsOn) {
  FreshetConfig config;
  *config.mutable_learner() = TwinLearner(8, /*deadline_ms=*/30);
  for (const TaskConfig& t : TwoTasks()) *config.add_tasks() = t;
  TempDir dir("twin_online");
  store::KvStore::Options so;
  so.path = dir.path.string();
  OnlineLearner::ConfigureStore(config, &so);
  MemorySource::Log log;
  log.partitions.resize(1);
  for (int i = 0; i < 100; ++i) log.partitions[0].push_back(MakeSample(i).SerializeAsString());
  auto run = [&](int64_t expect_trained, int64_t expect_duplicates) {
    auto db = store::KvStore::Open(so);
    ASSERT_TRUE(db.ok()) << db.status();
    MetricsRegistry metrics;
    OnlineLearner::Options o;
    o.config = config;
    o.source = std::make_unique<MemorySource>(&log);
    o.store = db->get();
    o.metrics = &metrics;
    auto learner = OnlineLearner::Create(std::move(o));
    ASSERT_TRUE(learner.ok()) << learner.status();
    ASSERT_TRUE((*learner)->Start().ok());
    ASSERT_TRUE(WaitFor([&] {
      const LearnerProgress p = (*learner)->Progress();
      return p.samples_trained == expect_trained && p.duplicates_skipped == expect_duplicates;
    })) << (*learner)->StatusJson();
    ASSERT_TRUE((*learner)->Stop().ok());
    EXPECT_GT(metrics.GetCounter("freshet_learner_twin_engagements_total", "")->Value(), 0);
    CheckpointStore checkpoints(db->get(), 3);
    auto newest = checkpoints.ReadNewest();
    ASSERT_TRUE(newest.ok() && newest->has_value());
    EXPECT_GT((*newest)->manifest.behaviour_cache_sequence(), 0u);
  };
  run(100, 0);
  {  // The store was closed: the histories are on disk.
    auto db = store::KvStore::Open(so);
    ASSERT_TRUE(db.ok());
    ExpectCacheHolds(store::BehaviourCache(db->get(), 64), 100);
  }
  {
    std::lock_guard<std::mutex> lock(log.mu);
    for (int i = 100; i < 140; ++i) log.partitions[0].push_back(MakeSample(i).SerializeAsString());
    for (int i = 0; i < 10; ++i) log.partitions[0].push_back(MakeSample(i).SerializeAsString());
  }
  run(140, 10);
  auto db = store::KvStore::Open(so);
  ASSERT_TRUE(db.ok());
  ExpectCacheHolds(store::BehaviourCache(db->get(), 64), 140);
}

}  // namespace
}  // namespace freshet::learner
