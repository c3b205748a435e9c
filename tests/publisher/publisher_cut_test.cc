// Publisher on a real TrainingLoop (FakeClock, in-memory records) and a temp-dir
// RocksDB, without replicas: FULL then DELTA cuts whose materialization equals the
// model, the delta bound escalating to FULL, the validation gate (NaN, AUC floor),
// pinning, and a restarted publisher continuing version numbers and offsets.
#include "publisher/publisher.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "publisher/model_update.h"
#include "store/kv_store.h"
#include "tests/learner/online_test_util.h"
#include "tests/publisher/publisher_test_util.h"

namespace freshet::publisher {
namespace {

using learner::testutil::MakeSample;
using learner::testutil::Record;
using learner::testutil::TempDir;
using learner::testutil::TinyLearner;
using learner::testutil::TwoTasks;
using testutil::Dense;
using testutil::OpenPublisherStore;
using testutil::Rows;

struct Rig {
  Rig(store::KvStore* db, PublisherConfig config = {}) {
    learner::TrainingLoop::Options lo;
    lo.learner = TinyLearner(4, /*deadline_ms=*/0);
    lo.learner.mutable_embedding()->set_ttl_ms(200);  // evictions within a few batches
    lo.learner.set_eviction_interval_ms(50);
    lo.tasks = TwoTasks();
    lo.store = db;
    lo.metrics = &metrics;
    lo.clock = &clock;
    auto l = learner::TrainingLoop::Create(lo);
    EXPECT_TRUE(l.ok()) << l.status();
    loop = std::move(l).value();
    Publisher::Options po;
    po.config = config;
    po.store = db;
    po.metrics = &metrics;
    po.clock = &clock;
    auto p = Publisher::Create(po);
    EXPECT_TRUE(p.ok()) << p.status();
    publisher = std::move(p).value();
    EXPECT_TRUE(publisher->Attach(loop.get()).ok());
  }
  void Train(int from, int count) {
    for (int i = from; i < from + count; ++i) ASSERT_TRUE(loop->Add(Record(MakeSample(i), i)).ok());
  }
  Publisher::Cut Cut(bool full = false) {
    auto c = publisher->CutNow(full);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Publisher::Cut{};
  }
  double Count(const std::string& name, const Labels& labels = {}) {
    return metrics.GetCounter(name, "", labels)->Value();
  }
  MetricsRegistry metrics;
  FakeClock clock;
  std::unique_ptr<learner::TrainingLoop> loop;
  std::unique_ptr<Publisher> publisher;
};

TEST(PublisherCutTest, FullThenDeltasAndEveryVersionMaterializesToTheModelAtThatVersion) {
  TempDir dir("pub_cut");
  auto db = OpenPublisherStore(dir.path);
  Rig rig(db.get());
  std::vector<ModelUpdate> model_at;  // MakeFullUpdate of the model right after each cut
  for (int round = 0; round < 4; ++round) {
    rig.Train(round * 40, 40);
    rig.clock.AdvanceMs(100);  // stream time moves too (event times), so rows expire
    Publisher::Cut c = rig.Cut();
    ASSERT_EQ(c.version, static_cast<uint64_t>(round + 1));
    EXPECT_EQ(c.kind, round == 0 ? UPDATE_FULL : UPDATE_DELTA);
    model_at.push_back(MakeFullUpdate(rig.loop->trainer().model(), ModelManifest()));
  }
  auto list = rig.publisher->Versions();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[2].base_version(), 2u);
  EXPECT_EQ((*list)[3].train_step(), 40u);  // 160 samples / batch 4
  EXPECT_EQ((*list)[3].input_offsets(0).offset(), 160);
  EXPECT_GT((*list)[3].metrics().at("samples_trained"), 0);
  uint64_t deleted = 0;
  for (const ModelManifest& m : *list) deleted += m.sparse_rows_deleted();
  EXPECT_GT(deleted, 0u);  // TTL evictions travel in the deltas
  for (uint64_t v = 1; v <= 4; ++v) {
    auto full = rig.publisher->snapshots().Materialize(v);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_EQ(Dense(*full), Dense(model_at[v - 1])) << "v" << v;
    EXPECT_EQ(Rows(*full), Rows(model_at[v - 1])) << "v" << v;
    // And it applies onto an empty serving model (fingerprint and dense CRC verified).
    auto serving = BuildServingModel(TinyLearner(4, 0), TwoTasks());
    ASSERT_TRUE(serving.ok());
    EXPECT_TRUE(ApplyUpdate(*full, serving->get()).ok()) << "v" << v;
  }
  EXPECT_EQ(rig.Count("freshet_publisher_versions_total", {{"kind", "delta"}}), 3);
  EXPECT_EQ(rig.metrics.GetGauge("freshet_publisher_version", "")->Value(), 4);
}

TEST(PublisherCutTest, TickCutsOnTheIntervalAndAFullEveryNVersions) {
  TempDir dir("pub_tick");
  auto db = OpenPublisherStore(dir.path);
  PublisherConfig config;
  config.set_publish_interval_ms(1000);
  config.set_full_every_versions(3);
  Rig rig(db.get(), config);
  std::vector<UpdateKind> kinds;
  for (int i = 0; i < 7; ++i) {
    rig.Train(i * 8, 8);
    ASSERT_TRUE(rig.loop->Tick().ok());  // before the interval: nothing
    EXPECT_EQ(rig.publisher->published_version(), static_cast<uint64_t>(i));
    rig.clock.AdvanceMs(1000);
    ASSERT_TRUE(rig.loop->Tick().ok());
    ASSERT_EQ(rig.publisher->published_version(), static_cast<uint64_t>(i + 1));
  }
  auto list = rig.publisher->Versions();
  ASSERT_TRUE(list.ok());
  for (const ModelManifest& m : *list) kinds.push_back(m.kind());
  EXPECT_EQ(kinds, (std::vector<UpdateKind>{UPDATE_FULL, UPDATE_DELTA, UPDATE_DELTA, UPDATE_FULL, UPDATE_DELTA,
                                            UPDATE_DELTA, UPDATE_FULL}));
}

TEST(PublisherCutTest, AnIdleLearnerCutsNoEmptyVersions) {
  TempDir dir("pub_idle");
  auto db = OpenPublisherStore(dir.path);
  PublisherConfig config;
  config.set_publish_interval_ms(1000);
  Rig rig(db.get(), config);
  rig.Train(0, 8);
  EXPECT_EQ(rig.Cut().version, 1u);
  for (int i = 0; i < 3; ++i) {  // intervals pass with nothing trained
    rig.clock.AdvanceMs(1000);
    ASSERT_TRUE(rig.loop->Tick().ok());
  }
  EXPECT_EQ(rig.Cut().version, 0u) << "nothing changed since v1";
  EXPECT_EQ(rig.publisher->published_version(), 1u);
  rig.Train(8, 8);
  EXPECT_EQ(rig.Cut().version, 2u);
  EXPECT_EQ(rig.Cut(/*full=*/true).version, 3u) << "a requested FULL is cut even when nothing changed";
}

TEST(PublisherCutTest, PastTheDeltaBoundTheVersionIsCutFullAndCounted) {
  TempDir dir("pub_bound");
  auto db = OpenPublisherStore(dir.path);
  PublisherConfig config;
  config.set_max_delta_rows(10);
  Rig rig(db.get(), config);
  rig.Train(0, 4);
  ASSERT_EQ(rig.Cut().kind, UPDATE_FULL);
  rig.Train(4, 4);  // 4 users + 4 items: within the bound
  ASSERT_EQ(rig.Cut().kind, UPDATE_DELTA);
  rig.Train(8, 40);  // 40 users + 25 items touched
  Publisher::Cut c = rig.Cut();
  EXPECT_EQ(c.kind, UPDATE_FULL);
  EXPECT_EQ(rig.Count("freshet_publisher_delta_overflow_total"), 1);
  auto full = rig.publisher->snapshots().Materialize(c.version);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(Rows(*full), Rows(MakeFullUpdate(rig.loop->trainer().model(), ModelManifest())));
}

TEST(PublisherCutTest, TheGateHoldsBackANonFiniteVersionAndTheNextDeltaCoversTheGap) {
  TempDir dir("pub_nan");
  auto db = OpenPublisherStore(dir.path);
  Rig rig(db.get());
  rig.Train(0, 40);
  ASSERT_EQ(rig.Cut().version, 1u);
  rig.Train(40, 40);
  float& w = rig.loop->trainer().model().params()[0]->value(0, 0);
  const float saved = w;
  w = std::numeric_limits<float>::quiet_NaN();
  Publisher::Cut blocked = rig.Cut();
  EXPECT_EQ(blocked.version, 0u);
  EXPECT_EQ(blocked.blocked, "non_finite");
  EXPECT_EQ(rig.Count("freshet_publisher_blocked_total", {{"reason", "non_finite"}}), 1);
  EXPECT_EQ(rig.metrics.GetGauge("freshet_publisher_gate_alert", "")->Value(), 1);
  EXPECT_EQ(rig.publisher->published_version(), 1u);
  EXPECT_EQ(rig.publisher->snapshots().newest_version(), 1u);  // nothing stored either
  w = saved;
  Publisher::Cut next = rig.Cut();
  ASSERT_EQ(next.version, 2u);
  EXPECT_EQ(next.kind, UPDATE_DELTA);
  EXPECT_EQ(rig.metrics.GetGauge("freshet_publisher_gate_alert", "")->Value(), 0);
  // The delta onto v1 carries the rows trained while the gate held versions back.
  auto full = rig.publisher->snapshots().Materialize(2);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(Rows(*full), Rows(MakeFullUpdate(rig.loop->trainer().model(), ModelManifest())));
}

TEST(PublisherCutTest, TheGateHoldsBackAVersionWhoseAucIsBelowItsFloor) {
  TempDir dir("pub_auc");
  auto db = OpenPublisherStore(dir.path);
  PublisherConfig config;
  PublisherGateFloor* floor = config.add_gate_floors();
  floor->set_task("click");
  floor->set_min_auc(0.999);
  floor->set_min_count(10);
  Rig rig(db.get(), config);
  rig.Train(0, 200);
  rig.clock.AdvanceMs(5000);
  ASSERT_TRUE(rig.loop->Tick().ok());  // refreshes the prequential metrics (and cuts)
  const auto tasks = rig.loop->Progress().tasks;
  ASSERT_GE(tasks[0].count, 10);
  ASSERT_LT(tasks[0].auc, 0.999);
  EXPECT_EQ(rig.publisher->published_version(), 0u);
  EXPECT_EQ(rig.Count("freshet_publisher_blocked_total", {{"reason", "auc_floor"}}), 1);
  EXPECT_EQ(rig.Cut().blocked, "auc_floor");
}

TEST(PublisherCutTest, APinnedPublisherCutsNothingAndARestartContinuesNumbersAndOffsets) {
  TempDir dir("pub_restart");
  auto db = OpenPublisherStore(dir.path);
  int64_t offset_before = 0;
  {
    Rig rig(db.get());
    rig.Train(0, 40);
    ASSERT_EQ(rig.Cut().version, 1u);
    rig.Train(40, 40);
    ASSERT_EQ(rig.Cut().version, 2u);
    ASSERT_TRUE(rig.loop->Checkpoint().ok());
    auto pinned = rig.publisher->Pin();
    ASSERT_TRUE(pinned.ok());
    EXPECT_EQ(*pinned, 2u);
    rig.Train(80, 40);
    EXPECT_EQ(rig.Cut().version, 0u);
    offset_before = rig.loop->trained_offsets().at(0);
  }
  Rig rig(db.get());
  ASSERT_TRUE(rig.loop->Restore().ok());
  EXPECT_EQ(rig.publisher->pinned(), std::optional<uint64_t>(2));
  EXPECT_EQ(rig.publisher->published_version(), 2u);  // serving is told the pinned version
  EXPECT_EQ(rig.Cut().version, 0u);
  auto cut = rig.publisher->Unpin(0);  // no training thread runs here: the request waits for a tick
  EXPECT_EQ(cut.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(rig.loop->Tick().ok());  // ... which unpins and cuts FULL
  EXPECT_FALSE(rig.publisher->pinned());
  auto list = rig.publisher->Versions();
  ASSERT_TRUE(list.ok());
  const ModelManifest& m = list->back();
  EXPECT_EQ(m.version(), 3u);
  EXPECT_EQ(m.kind(), UPDATE_FULL);
  // The restored learner resumes from its checkpoint (offset 80), and the manifest says so.
  EXPECT_EQ(m.input_offsets(0).offset(), 80);
  EXPECT_LE(m.input_offsets(0).offset(), offset_before);
  rig.Train(80, 40);
  EXPECT_EQ(rig.Cut().version, 4u);
  EXPECT_EQ(rig.publisher->Versions()->back().input_offsets(0).offset(), 120);
}

}  // namespace
}  // namespace freshet::publisher
