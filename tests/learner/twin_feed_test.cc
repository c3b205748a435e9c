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
  // Only projections GSU would serve at the checkpoint came back; none stamped by the
  // discarded run's weights (those would look stale: from a later version).
  store::ProjectionCache* cache = second.loop->trainer().model().projection_cache();
  std::vector<uint64_t> items(25);
  for (uint64_t i = 0; i < items.size(); ++i) items[i] = i;
  std::vector<float> rows(items.size() * cache->width());
  std::vector<store::ProjectionCache::Result> result;
  cache->GetMany(items, second.loop->trainer().steps(), rows.data(), &result);
  for (size_t i = 0; i < items.size(); ++i)
    EXPECT_NE(result[i], store::ProjectionCache::Result::kStale) << "item " << i;
  for (int i = half; i < n; ++i) ASSERT_TRUE(second.loop->Add(Record(MakeSample(i), i)).ok());
  EXPECT_EQ(second.loop->Progress().samples_trained, n);
  ExpectCacheHolds(second.loop->twin_feed()->cache(), n);  // folded, not duplicated
  EXPECT_GT(second.loop->trainer().model().projection_cache()->size(), 0);
}

// Few users, so a user engages twice within one batch and histories outgrow max_len:
// the cache contents then depend on exactly which appends happened before each step.
Sample CrowdedSample(int64_t i) {
  Sample s = MakeSample(i, "c");
  const uint64_t user = i % 5;
  s.set_user_id(user);
  s.mutable_sparse(0)->set_ids(0, user);
  return s;
}

// A learner checkpointed, trained on past the checkpoint, killed and restored must
// continue exactly as one that never stopped: same predictions every step, same
// weights, same histories. Covers the state beside the weights: the projection cache
// (entries GSU still serves at the checkpoint) and the behaviour cache (appends made
// after the checkpoint must not be visible to the replay).
TEST(TwinFeedTest, RestoreContinuesBitIdenticallyToAStraightRun) {
  LearnerConfig config = TwinLearner(8, 0);
  config.mutable_model()->mutable_twin()->set_max_len(6);  // trimmed: 12 of 24 samples engage
  config.mutable_model()->mutable_twin()->set_refresh_after_versions(4);
  const int kN = 24 * 8, kCheckpoint = 13 * 8, kCrash = 19 * 8;
  // Per step: the histories the batch was given and the whole learner state before
  // the step (weights, optimizer, embeddings, servable projections), so the first
  // divergence is caught at the step that caused it.
  struct Step {
    std::vector<Behaviour> histories;
    std::vector<int32_t> offsets;
    std::string state;
  };
  auto train = [](Loop& f, int from, int to, std::vector<Step>* steps) {
    f.loop->SetBatchHookForTest([&f, steps](Batch* b) {
      steps->push_back({b->behaviours, b->behaviour_offsets, f.loop->trainer().SaveState()});
    });
    for (int i = from; i < to; ++i) ASSERT_TRUE(f.loop->Add(Record(CrowdedSample(i), i)).ok());
  };
  TempDir straight_dir("twin_straight"), dir("twin_restored");
  auto straight_db = OpenStore(straight_dir.path, config.model());
  auto db = OpenStore(dir.path, config.model());
  ASSERT_NE(straight_db, nullptr);
  ASSERT_NE(db, nullptr);
  Loop straight(config, straight_db.get());
  std::vector<Step> expected, got, discarded;
  train(straight, 0, kN, &expected);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kN / 8));
  {
    Loop first(config, db.get());
    train(first, 0, kCheckpoint, &got);
    ASSERT_TRUE(first.loop->Checkpoint().ok());
    train(first, kCheckpoint, kCrash, &discarded);  // then killed: no checkpoint
  }
  Loop second(config, db.get());
  auto restored = second.loop->Restore();
  ASSERT_TRUE(restored.ok() && *restored) << restored.status();
  train(second, kCheckpoint, kN, &got);
  ASSERT_EQ(got.size(), expected.size());
  int64_t searched = 0;
  for (size_t step = 0; step < got.size(); ++step) {
    ASSERT_TRUE(got[step].histories == expected[step].histories) << "histories differ first at step " << step;
    ASSERT_EQ(got[step].offsets, expected[step].offsets) << "step " << step;
    ASSERT_TRUE(got[step].state == expected[step].state) << "learner state differs first before step " << step;
    for (size_t b = 1; b < got[step].offsets.size(); ++b)
      searched += got[step].offsets[b] - got[step].offsets[b - 1] > 2;  // > top_k: GSU searched
  }
  EXPECT_GT(searched, 0);
  EXPECT_TRUE(second.loop->trainer().SaveState() == straight.loop->trainer().SaveState())
      << "restored training diverged from straight training";
  for (uint64_t user = 0; user < 5; ++user) {
    auto a = straight.loop->twin_feed()->cache().Read(user);
    auto b = second.loop->twin_feed()->cache().Read(user);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->size(), 6u);
    EXPECT_EQ(*a, *b) << "user " << user;
  }
  // GSU searched (histories longer than top_k) and served cached projections.
  EXPECT_GT(second.metrics.GetCounter("freshet_store_projection_lookups_total", "", {{"result", "hit"}})->Value(), 0);
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
