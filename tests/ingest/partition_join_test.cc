// PartitionJoin unit tests with a fake clock and in-memory events: window close,
// masks and sample spaces, per-task windows, late labels, the three policies,
// orphans (TTL, bound), duplicates, out-of-order events, state save/restore
// (changelog segments, snapshots, the older per-record layout, corruption).
#include "ingest/partition_join.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <numeric>
#include <optional>

#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

constexpr int64_t T = 1'700'000'000'000;  // impression time used by most tests

TaskConfig Task(const std::string& name, LabelKind kind, int64_t window, const std::string& requires_positive = "") {
  TaskConfig t;
  t.set_name(name);
  t.add_label_kinds(kind);
  t.set_window_ms(window);
  t.set_requires_positive(requires_positive);
  t.set_value_threshold(0.5f);
  t.set_value_scale(1.0f);
  return t;
}

// Tasks: 0 click (10 s), 1 like (30 s, among clicks), 2 play (regression, ms/1000,
// 10 s), 3 long_view (play time >= 5000 ms, 10 s). Longest window 30 s.
FreshetConfig TestConfig(LabelPolicy policy) {
  FreshetConfig c;
  *c.add_tasks() = Task("click", LABEL_CLICK, 10000);
  *c.add_tasks() = Task("like", LABEL_LIKE, 30000, "click");
  TaskConfig play = Task("play", LABEL_PLAY_TIME, 10000);
  play.set_type(TASK_REGRESSION);
  play.set_value_scale(0.001f);
  *c.add_tasks() = play;
  TaskConfig lv = Task("long_view", LABEL_PLAY_TIME, 10000);
  lv.set_value_threshold(5000);
  *c.add_tasks() = lv;
  IngestConfig* in = c.mutable_ingest();
  in->set_policy(policy);
  in->set_allowed_lateness_ms(1000);
  in->set_orphan_ttl_ms(60000);
  in->set_max_orphans_per_partition(1000);
  in->set_max_open_impressions_per_partition(1000);
  in->set_correction_horizon_ms(120000);
  return c;
}

Impression Imp(const std::string& rid, int64_t t) {
  Impression i;
  i.set_request_id(rid);
  i.set_user_id(7);
  i.set_item_id(9);
  i.set_event_time_ms(t);
  SparseFeature* s = i.add_sparse();
  s->set_slot(1);
  s->add_ids(9);
  DenseFeature* d = i.add_dense();
  d->set_slot(0);
  d->add_values(0.5f);
  return i;
}

Label Lab(const std::string& rid, LabelKind kind, int64_t t, float value = 1) {
  Label l;
  l.set_request_id(rid);
  l.set_user_id(7);
  l.set_item_id(9);
  l.set_kind(kind);
  l.set_event_time_ms(t);
  l.set_value(value);
  return l;
}

std::vector<bool> Masks(const Sample& s) { return {s.mask().begin(), s.mask().end()}; }
std::vector<float> LabelValues(const Sample& s) { return {s.label().begin(), s.label().end()}; }

// What the joins emitted. They append JoinedSamples (the vector base); the tests read
// each as the complete Sample a consumer parses, features included, through [].
class Emitted : public std::vector<JoinedSample> {
 public:
  Sample operator[](size_t i) const {
    StatusOr<Sample> s = at(i).ToProto();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : Sample();
  }
};

class JoinTest : public ::testing::Test {
 protected:
  void Make(LabelPolicy policy, std::function<void(FreshetConfig*)> edit = nullptr) {
    config_ = TestConfig(policy);
    if (edit) edit(&config_);
    auto r = TaskRules::Create(config_);
    ASSERT_TRUE(r.ok()) << r.status();
    rules_ = std::make_unique<TaskRules>(std::move(r).value());
    probe_ = std::make_unique<IngestProbe>(&metrics_, policy);
    join_ = std::make_unique<PartitionJoin>(0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  }
  // Moves the watermark: a label of a kind no task uses and an impression, both at
  // `t` (the watermark follows the slower input). Samples of tick impressions are
  // not kept.
  void Tick(int64_t t) {
    Emitted all;
    join_->AddLabel(Lab("tick", LABEL_COLLECT, t), &all);
    join_->AddImpression(Imp("tick" + std::to_string(t), t), &all);
    for (JoinedSample& s : all) {
      StatusOr<Sample> whole = s.ToProto();
      ASSERT_TRUE(whole.ok()) << whole.status();
      if (whole->request_id().rfind("tick", 0) != 0) out_.push_back(std::move(s));
    }
  }
  double CounterValue(const std::string& name, const Labels& labels = {}) {
    return metrics_.GetCounter(name, "", labels)->Value();
  }
  std::optional<Sample> Find(const std::string& id) const {
    for (size_t i = 0; i < out_.size(); ++i) {
      if (Sample s = out_[i]; s.sample_id() == id) return s;
    }
    return std::nullopt;
  }

  FakeClock clock_{T + 5000};
  MetricsRegistry metrics_;
  FreshetConfig config_;
  std::unique_ptr<TaskRules> rules_;
  std::unique_ptr<IngestProbe> probe_;
  std::unique_ptr<PartitionJoin> join_;
  Emitted out_;
};

TEST_F(JoinTest, WaitEmitsOnceWhenWatermarkPassesLongestWindow) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 2000), &out_);
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 3000, 8000), &out_);
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 5000), &out_);
  Tick(T + 30999);  // watermark T + 29999: still open
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(join_->open_records(), 2u);  // r1 and the tick impression
  Tick(T + 31000);  // watermark reaches T + 30000
  ASSERT_EQ(out_.size(), 1u);
  const Sample& s = out_[0];
  EXPECT_EQ(s.sample_id(), "r1");
  EXPECT_EQ(s.origin(), ORIGIN_WINDOW_CLOSED);
  EXPECT_FALSE(s.correction());
  EXPECT_EQ(s.task_layout(), TaskLayoutFingerprint(config_));
  EXPECT_EQ(s.user_id(), 7u);
  EXPECT_EQ(s.sparse_size(), 1);
  EXPECT_EQ(s.dense_size(), 1);
  EXPECT_EQ(s.emit_time_ms(), clock_.NowMs());
  ASSERT_EQ(s.label_size(), 4);
  EXPECT_EQ(LabelValues(s), (std::vector<float>{1, 1, 8, 1}));
  EXPECT_EQ(Masks(s), (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(std::vector<float>(s.weight().begin(), s.weight().end()), (std::vector<float>{1, 1, 1, 1}));
  EXPECT_EQ(CounterValue("freshet_ingest_samples_total", {{"policy", "wait"}}), 1);
  EXPECT_EQ(CounterValue("freshet_ingest_joined_labels_total", {{"kind", "click"}}), 1);
  Tick(T + 60000);
  EXPECT_EQ(out_.size(), 1u);  // emitted exactly once
}

TEST_F(JoinTest, NegativeImpressionMasksFollowSampleSpaces) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 1000, 1200), &out_);  // a quick swipe
  Tick(T + 40000);
  ASSERT_EQ(out_.size(), 1u);
  const Sample& s = out_[0];
  // click observed negative; like outside its space (no click); play observed 1.2;
  // long_view observed negative (1200 < 5000).
  EXPECT_EQ(Masks(s), (std::vector<bool>{true, false, true, true}));
  EXPECT_FLOAT_EQ(s.label(2), 1.2f);
  EXPECT_EQ(s.label(0), 0);
  EXPECT_EQ(s.label(3), 0);

  out_.clear();
  join_->AddImpression(Imp("r2", T + 40000), &out_);  // no labels at all
  Tick(T + 80000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(Masks(out_[0]),
            (std::vector<bool>{true, false, false, true}));  // regression unobserved
}

TEST_F(JoinTest, LabelOutsideItsTaskWindowIsLateNotPositive) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 12000), &out_);  // click window is 10 s
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 20000), &out_);   // like window 30 s, but no click
  Tick(T + 31000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 0);
  EXPECT_FALSE(out_[0].mask(1));
  EXPECT_EQ(CounterValue("freshet_ingest_late_labels_total", {{"kind", "click"}}), 1);
  // After the sample is out, a label is late under `wait` and changes nothing.
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 5000, 9000), &out_);
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_late_labels_total", {{"kind", "play_time"}}), 1);
}

TEST_F(JoinTest, WaitCorrectEmitsOneCorrectionPerLatePositiveTask) {
  Make(POLICY_WAIT_CORRECT);
  join_->AddImpression(Imp("r1", T), &out_);
  Tick(T + 31000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 0);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 32000), &out_);  // late positive
  ASSERT_EQ(out_.size(), 2u);
  const Sample& c = out_[1];
  EXPECT_EQ(c.sample_id(), "r1#c:click");
  EXPECT_TRUE(c.correction());
  EXPECT_EQ(c.origin(), ORIGIN_LATE_CORRECTION);
  EXPECT_EQ(c.sparse_size(), 1);  // features kept for corrections
  EXPECT_EQ(Masks(c), (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(c.label(0), 1);
  EXPECT_EQ(c.label(1), 0);  // like enters its space as a fake negative
  EXPECT_EQ(CounterValue("freshet_ingest_late_labels_total", {{"kind", "click"}}), 1);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 32000), &out_);  // duplicate
  EXPECT_EQ(out_.size(), 2u);
  EXPECT_EQ(CounterValue("freshet_ingest_duplicate_labels_total"), 1);
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 33000), &out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[2].sample_id(), "r1#c:like");
  EXPECT_EQ(Masks(out_[2]),
            (std::vector<bool>{false, true, false, false}));
  // Past the correction horizon the impression is forgotten; the label waits as an
  // orphan and expires by TTL, counted.
  Tick(T + 30000 + 120000 + 1000);
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 160000, 3000), &out_);
  EXPECT_EQ(join_->orphan_labels(), 1u);
  Tick(T + 160000 + 60000 + 1000);
  EXPECT_EQ(join_->orphan_labels(), 0u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "play_time"}}), 1);
  EXPECT_EQ(out_.size(), 3u);
}

TEST_F(JoinTest, PositiveInsideWindowNeedsNoCorrection) {
  Make(POLICY_WAIT_CORRECT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 1000), &out_);
  Tick(T + 31000);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 1000), &out_);  // replayed label after close
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 1);
}

// Strips the emit time so two runs can be compared byte for byte.
std::map<std::string, std::string> Canonical(const Emitted& samples) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < samples.size(); ++i) {
    Sample s = samples[i];
    s.clear_emit_time_ms();
    out[s.sample_id()] = s.SerializeAsString();
  }
  return out;
}

TEST_F(JoinTest, ImmediateEmitsNegativeThenOneDuplicatePerPositiveTask) {
  Make(POLICY_IMMEDIATE);
  join_->AddImpression(Imp("r1", T), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sample_id(), "r1");
  EXPECT_EQ(out_[0].origin(), ORIGIN_IMMEDIATE_NEGATIVE);
  EXPECT_EQ(Masks(out_[0]),
            (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(LabelValues(out_[0]), (std::vector<float>{0, 0, 0, 0}));
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 3000), &out_);  // like before click: waits for its space
  EXPECT_EQ(out_.size(), 1u);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 4000), &out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[1].sample_id(), "r1#p:click");
  EXPECT_EQ(out_[1].origin(), ORIGIN_IMMEDIATE_POSITIVE);
  EXPECT_EQ(Masks(out_[1]),
            (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(out_[1].label(1), 0);  // fake negative for like, undone by r1#p:like
  EXPECT_EQ(out_[2].sample_id(), "r1#p:like");
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 6000, 7000), &out_);
  ASSERT_EQ(out_.size(), 5u);  // play observed + long_view positive
  EXPECT_FLOAT_EQ(Find("r1#p:play")->label(2), 7.0f);
  EXPECT_TRUE(Find("r1#p:long_view")->mask(3));
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 4000), &out_);  // duplicate: nothing new
  EXPECT_EQ(out_.size(), 5u);
  EXPECT_EQ(CounterValue("freshet_ingest_samples_total", {{"policy", "immediate"}}), 5);
  Tick(T + 31000);
  EXPECT_EQ(out_.size(), 5u);  // window close emits nothing under immediate

  // Same events, labels in another order (and before the impression): same ids, same bytes.
  auto first = Canonical(out_);
  out_.clear();
  Make(POLICY_IMMEDIATE);
  join_->AddLabel(Lab("r1", LABEL_PLAY_TIME, T + 6000, 7000), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 4000), &out_);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 3000), &out_);
  EXPECT_EQ(Canonical(out_), first);
}

TEST_F(JoinTest, ImmediateLabelAfterTaskWindowIsLate) {
  Make(POLICY_IMMEDIATE);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 11000), &out_);
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_late_labels_total", {{"kind", "click"}}), 1);
}

TEST_F(JoinTest, OrphanLabelsJoinWhenTheImpressionComes) {
  Make(POLICY_WAIT);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 1000), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 1000), &out_);  // duplicate while orphaned
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_duplicate_labels_total"), 1);
  join_->AddImpression(Imp("r1", T), &out_);
  EXPECT_EQ(join_->orphan_labels(), 0u);
  Tick(T + 31000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 1);
}

TEST_F(JoinTest, OrphanTtlAndBound) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_max_orphans_per_partition(3); });
  for (int i = 0; i < 3; ++i) join_->AddLabel(Lab("o" + std::to_string(i), LABEL_CLICK, T + i), &out_);
  EXPECT_TRUE(join_->OverOrphanBound());
  join_->ForceCloseOldest(1, &out_);  // escalation: the oldest orphan goes, counted
  EXPECT_EQ(join_->orphan_labels(), 2u);
  EXPECT_FALSE(join_->OverOrphanBound());
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "click"}}), 1);
  Tick(T + 1 + 60000 + 1000);  // watermark passes o1's time + TTL (o2 is 1 ms younger)
  EXPECT_EQ(join_->orphan_labels(), 1u);
  Tick(T + 2 + 60000 + 1000);
  EXPECT_EQ(join_->orphan_labels(), 0u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "click"}}), 3);
  join_->AddImpression(Imp("o1", T + 62000), &out_);  // too late to find its label
  Tick(T + 100000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 0);
}

// An orphan's expiry entry is left behind (stale) when its impression takes the
// labels. Labels for the same request that orphan again later get their own TTL: the
// stale entry neither expires them early nor uses up the escalation's turn.
TEST_F(JoinTest, OrphanTakenByItsImpressionLeavesNoEarlyExpiry) {
  Make(POLICY_WAIT, [](FreshetConfig* c) {
    c->mutable_ingest()->set_correction_horizon_ms(0);  // forgotten at close
    c->mutable_ingest()->set_max_orphans_per_partition(2);
  });
  join_->AddLabel(Lab("r", LABEL_CLICK, T - 1000), &out_);  // expiry T + 59 s, soon stale
  join_->AddImpression(Imp("r", T), &out_);
  EXPECT_EQ(join_->orphan_labels(), 0u);
  Tick(T + 31000);  // r closes and is forgotten
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].label(0), 1);
  join_->AddLabel(Lab("r", LABEL_LIKE, T + 40000), &out_);  // orphans again: expiry T + 100 s
  Tick(T + 70000);  // the watermark passes the stale expiry: r's like stays
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "like"}}), 0);

  join_->AddLabel(Lab("q", LABEL_CLICK, T + 35000), &out_);  // expiry T + 95 s: the earliest
  join_->AddImpression(Imp("q", T + 36000), &out_);          // takes it: the entry goes stale
  join_->AddLabel(Lab("s", LABEL_CLICK, T + 69500), &out_);
  EXPECT_TRUE(join_->OverOrphanBound());
  join_->ForceCloseOldest(1, &out_);  // skips q's stale entry; the oldest live orphan goes
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "like"}}), 1);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "click"}}), 0);
  Tick(T + 129500 + 1000);  // s's own expiry
  EXPECT_EQ(join_->orphan_labels(), 0u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "click"}}), 1);
}

// Labels that arrive before their impression, every time: each leaves a stale
// expiry entry behind. The heap is rebuilt from the live orphans when stale entries
// dominate, so it does not grow with the stream while orphans stay expirable.
TEST_F(JoinTest, StaleOrphanExpiriesDoNotAccumulate) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_max_orphans_per_partition(100000); });
  join_->AddLabel(Lab("waiting", LABEL_CLICK, T), &out_);  // stays an orphan throughout
  size_t most = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string rid = "r" + std::to_string(i);
    join_->AddLabel(Lab(rid, LABEL_CLICK, T + 1 + i), &out_);
    join_->AddImpression(Imp(rid, T + i), &out_);
    most = std::max(most, join_->orphan_expiry_entries());
  }
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_LE(most, 2 * 1 + 4096 + 1u);
  EXPECT_GE(most, 4096u);  // the slack was used: stale entries are not removed one by one
  Tick(T + 60000 + 1000);  // the survivor's expiry is still in the heap
  EXPECT_EQ(join_->orphan_labels(), 0u);
  EXPECT_EQ(CounterValue("freshet_ingest_orphans_expired_total", {{"kind", "click"}}), 1);
}

TEST_F(JoinTest, RecordBoundForcesEarlyCloseCounted) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_max_open_impressions_per_partition(2); });
  join_->AddImpression(Imp("a", T), &out_);
  join_->AddImpression(Imp("b", T + 10), &out_);
  EXPECT_TRUE(join_->OverRecordBound());
  join_->ForceCloseOldest(1, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sample_id(), "a");
  EXPECT_EQ(CounterValue("freshet_ingest_forced_closes_total"), 1);
  // Remembered closed impressions count toward the bound and are forgotten first.
  join_->ForceCloseOldest(1, &out_);
  EXPECT_EQ(CounterValue("freshet_ingest_retention_evictions_total"), 1);
  EXPECT_EQ(out_.size(), 1u);
}

TEST_F(JoinTest, DuplicateImpressionIsIgnored) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddImpression(Imp("r1", T), &out_);
  Tick(T + 31000);
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(CounterValue("freshet_ingest_duplicate_impressions_total"), 1);
}

TEST_F(JoinTest, WatermarkIsMaxEventTimeMinusLatenessAndToleratesDisorder) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("late", T + 50000), &out_);
  EXPECT_EQ(join_->watermark(), PartitionJoin::kNoTime);  // labels not seen yet: hold
  join_->AddLabel(Lab("x", LABEL_COLLECT, T + 60000), &out_);
  EXPECT_EQ(join_->watermark(), T + 49000);
  join_->AddImpression(Imp("early", T + 15000), &out_);  // out of order: its window already closed
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sample_id(), "early");
  join_->AddImpression(Imp("older", T), &out_);  // older event times never move the watermark back
  EXPECT_EQ(join_->watermark(), T + 49000);
}

TEST_F(JoinTest, WatermarkFollowsTheSlowerInputUntilItIsIdle) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 1000), &out_);
  // The impressions topic races ahead (a replayed backlog): the labels topic holds
  // the watermark back, so r1's window stays open for its labels.
  join_->AddImpression(Imp("far", T + 100000), &out_);
  EXPECT_EQ(join_->watermark(), T + 1000 - 1000);
  EXPECT_TRUE(out_.empty());
  join_->AddLabel(Lab("r1", LABEL_LIKE, T + 2000), &out_);  // still in time
  // The labels input goes quiet for longer than idle_input_ms: it stops counting.
  clock_.AdvanceMs(config_.ingest().idle_input_ms() + 1);
  join_->AddImpression(Imp("far2", T + 100001), &out_);
  EXPECT_EQ(join_->watermark(), T + 100001 - 1000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sample_id(), "r1");
  EXPECT_EQ(out_[0].label(1), 1);  // the like read while the window was held open
  // It never moves back when the slow input resumes.
  join_->AddLabel(Lab("r9", LABEL_CLICK, T + 3000), &out_);
  EXPECT_EQ(join_->watermark(), T + 100001 - 1000);
}

// The prefetching loop visits every event once, in order, whatever the count (around
// its look-ahead distances) and whether events have keys; hints change no state.
TEST_F(JoinTest, ForEachPrefetchedVisitsEveryEventInOrder) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("r1", T), &out_);
  for (size_t n : {0, 1, 2, 3, 4, 5, 9}) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < n; ++i) keys.push_back(i % 3 == 1 ? "" : "r" + std::to_string(i));
    std::vector<size_t> seen;
    size_t hinted = 0;
    ForEachPrefetched(
        n, [&](size_t i) -> std::string_view { return keys[i]; },
        [&](size_t) {
          ++hinted;
          return join_.get();
        },
        [&](size_t i) { seen.push_back(i); });
    std::vector<size_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << n << " events";
    EXPECT_LE(hinted, 2 * n);
  }
  EXPECT_EQ(join_->open_records(), 1u);
  EXPECT_TRUE(out_.empty());
}

TEST_F(JoinTest, WatermarksArePerPartition) {
  Make(POLICY_WAIT);
  PartitionJoin other(1, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  join_->AddImpression(Imp("p0", T), &out_);
  other.AddImpression(Imp("p1", T), &out_);
  other.AddLabel(Lab("x", LABEL_COLLECT, T + 100000), &out_);
  other.AddImpression(Imp("p1b", T + 100000), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sample_id(), "p1");
  EXPECT_EQ(join_->open_records(), 1u);
}

class JoinStoreTest : public JoinTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("freshet_join_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    store::KvStore::Options o;
    o.path = dir_.string();
    o.families = {PartitionJoin::kRecordFamily, PartitionJoin::kMetaFamily};
    store_ = std::move(store::KvStore::Open(o)).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Save() {
    store::WriteBatch b;
    join_->CollectChanges("imp", "lab", &b);
    ASSERT_TRUE(store_->Write(b).ok());
  }
  // Partition 0 as loaded from the store now.
  std::unique_ptr<PartitionJoin> Reload() {
    auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? std::move(loaded).value() : nullptr;
  }
  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> store_;
};

TEST_F(JoinStoreTest, RestoredStateContinuesExactlyLikeAnUninterruptedRun) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    // Reference: one run, no restart.
    Make(policy);
    auto feed_a = [&](PartitionJoin* j) {
      j->AddImpression(Imp("a", T), &out_);
      j->AddLabel(Lab("b", LABEL_CLICK, T + 1500), &out_);  // orphan at the checkpoint
      j->AddLabel(Lab("a", LABEL_CLICK, T + 1000), &out_);
      j->SetConsumed(true, 11);
      j->SetConsumed(false, 22);
    };
    auto feed_b = [&](PartitionJoin* j) {
      j->AddImpression(Imp("b", T + 500), &out_);
      j->AddLabel(Lab("a", LABEL_LIKE, T + 40000), &out_);  // late like for a
      j->AddLabel(Lab("x", LABEL_COLLECT, T + 45000), &out_);
      j->AddImpression(Imp("y", T + 45000), &out_);
    };
    feed_a(join_.get());
    feed_b(join_.get());
    auto reference = Canonical(out_);
    ASSERT_GE(reference.size(), 2u);

    // Interrupted: checkpoint after feed_a, drop the object, load, continue.
    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy);
    feed_a(join_.get());
    Save();
    auto before = out_;
    auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->next_offset(true), 11);
    EXPECT_EQ((*loaded)->next_offset(false), 22);
    EXPECT_EQ((*loaded)->orphan_labels(), 1u);
    EXPECT_EQ((*loaded)->watermark(), join_->watermark());
    join_ = std::move(loaded).value();
    feed_b(join_.get());
    EXPECT_EQ(Canonical(out_), reference);
    out_.clear();
  }
}

TEST_F(JoinStoreTest, LoadRefusesStateOfAnotherTaskLayout) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_tasks(2)->set_name("play_ms"); });
  auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find(dir_.string()), std::string::npos);
  // Another partition has no state: loads empty.
  auto empty = PartitionJoin::Load(*store_, 3, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->open_records(), 0u);
  EXPECT_EQ((*empty)->next_offset(true), -1);
}

TEST_F(JoinStoreTest, ForgottenRecordsAreGoneAfterReload) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_correction_horizon_ms(0); });
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  EXPECT_EQ(Reload()->open_records(), 1u);
  Tick(T + 31000);  // closes and forgets "a" (the tick impression stays open)
  Save();
  auto loaded = Reload();
  EXPECT_EQ(loaded->open_records(), 1u);
  EXPECT_EQ(loaded->closed_records(), 0u);
}

TEST_F(JoinStoreTest, RecordForgottenAndSeenAgainBetweenCheckpointsIsStoredLive) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_correction_horizon_ms(0); });
  join_->AddImpression(Imp("a", T), &out_);
  join_->AddImpression(Imp("b", T + 20000), &out_);
  join_->AddImpression(Imp("c", T + 21000), &out_);
  Tick(T + 31000);  // closes and forgets "a" while "b" and "c" are unsaved changes
  ASSERT_TRUE(Find("a").has_value());
  join_->AddImpression(Imp("a", T + 32000), &out_);  // the same id again: a new record
  Save();
  out_.clear();
  join_ = Reload();
  ASSERT_NE(join_, nullptr);
  EXPECT_EQ(join_->open_records(), 4u);  // a (the second), b, c and the tick impression
  Tick(T + 100000);
  ASSERT_TRUE(Find("a").has_value());
  EXPECT_EQ(Find("a")->event_time_ms(), T + 32000);
  EXPECT_TRUE(Find("b").has_value());
  EXPECT_TRUE(Find("c").has_value());
}

// Between two checkpoints one orphan is taken by its impression, one gains a label,
// and one expires and orphans again with another label: the second checkpoint's
// changelog holds each as it stands (deletions before the live entries).
TEST_F(JoinStoreTest, OrphansChangedBetweenCheckpointsReloadAsTheyStand) {
  Make(POLICY_WAIT);
  join_->AddLabel(Lab("taken", LABEL_CLICK, T + 1000), &out_);
  join_->AddLabel(Lab("grown", LABEL_CLICK, T + 30000), &out_);
  join_->AddLabel(Lab("again", LABEL_LIKE, T + 1000), &out_);
  Save();
  join_->AddImpression(Imp("taken", T + 500), &out_);
  join_->AddLabel(Lab("grown", LABEL_LIKE, T + 31000), &out_);
  Tick(T + 1000 + 60000 + 1000);  // "again" expires (TTL 60 s); "taken" closes with its click
  ASSERT_EQ(join_->orphan_labels(), 2u);
  join_->AddLabel(Lab("again", LABEL_CLICK, T + 62500), &out_);
  Save();
  ASSERT_TRUE(Find("taken").has_value());
  EXPECT_EQ(Find("taken")->label(0), 1);
  out_.clear();

  join_ = Reload();
  ASSERT_NE(join_, nullptr);
  EXPECT_EQ(join_->orphan_labels(), 3u);  // grown's two and again's new one; not taken's
  join_->AddImpression(Imp("grown", T + 29000), &out_);
  join_->AddImpression(Imp("again", T + 62000), &out_);
  Tick(T + 200000);
  ASSERT_TRUE(Find("grown").has_value());
  EXPECT_EQ(LabelValues(*Find("grown")), (std::vector<float>{1, 1, 0, 0}));
  ASSERT_TRUE(Find("again").has_value());
  // The click only: the expired like is gone (it would put like in the click's space).
  EXPECT_EQ(LabelValues(*Find("again")), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(Masks(*Find("again")), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(join_->orphan_labels(), 0u);
}

TEST_F(JoinStoreTest, ChangedRecordIsWrittenWithoutItsFeaturesAndReloadsWithThem) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy);
    Impression big = Imp("a", T);
    for (int i = 0; i < 200; ++i) big.mutable_sparse(0)->add_ids(1000 + i);  // features dominate the record
    join_->AddImpression(big, &out_);
    store::WriteBatch first;
    join_->CollectChanges("imp", "lab", &first);
    ASSERT_TRUE(store_->Write(first).ok());
    join_->AddLabel(Lab("a", LABEL_CLICK, T + 1000), &out_);  // changes the stored record
    store::WriteBatch second;
    join_->CollectChanges("imp", "lab", &second);
    ASSERT_TRUE(store_->Write(second).ok());
    EXPECT_LT(second.bytes() * 4, first.bytes()) << "the update carried the features again";

    out_.clear();
    join_ = Reload();
    ASSERT_NE(join_, nullptr);
    // After the reload, the next sample of "a" carries the features of the first,
    // full entry and the click of the update: under immediate the like's duplicate
    // (like is in its space because click is positive), otherwise the window's sample.
    if (policy == POLICY_IMMEDIATE) join_->AddLabel(Lab("a", LABEL_LIKE, T + 2000), &out_);
    Tick(T + 200000);
    std::optional<Sample> s = Find(policy == POLICY_IMMEDIATE ? "a#p:like" : "a");
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->sparse_size(), 1);
    EXPECT_EQ(s->sparse(0).ids_size(), 201);
    if (policy == POLICY_IMMEDIATE) {
      EXPECT_TRUE(s->mask(1));
      EXPECT_EQ(s->label(1), 1.0f);
    } else {
      EXPECT_TRUE(s->mask(0));
      EXPECT_EQ(s->label(0), 1.0f);
    }
  }
}

// Count of changelog segments stored for partition 0.
size_t SegmentCount(const store::KvStore& store) {
  size_t n = 0;
  const std::string prefix = JoinPartitionPrefix(0);
  Status s = store.ScanPrefix(PartitionJoin::kRecordFamily, prefix, [&](std::string_view key, std::string_view) {
    n += JoinLogSegmentSeq(prefix, key) >= 0;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return n;
}

TEST_F(JoinStoreTest, SnapshotsBoundTheChangelogAndKeepTheState) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    // 60 rounds of an impression, its click and an orphan, one checkpoint each; the
    // watermark closes and forgets older records as it goes.
    auto feed = [&](PartitionJoin* j, int from, int to) {
      for (int i = from; i < to; ++i) {
        const int64_t t = T + i * 2000;
        j->AddImpression(Imp("r" + std::to_string(i), t), &out_);
        j->AddLabel(Lab("r" + std::to_string(i), LABEL_CLICK, t + 500), &out_);
        j->AddLabel(Lab("o" + std::to_string(i), LABEL_LIKE, t + 700), &out_);
      }
    };
    auto short_memory = [](FreshetConfig* c) {  // so records and orphans are forgotten within the run
      c->mutable_ingest()->set_correction_horizon_ms(4000);
      c->mutable_ingest()->set_orphan_ttl_ms(6000);
    };
    Make(policy, short_memory);
    feed(join_.get(), 0, 60);
    const auto reference = Canonical(out_);
    const size_t open = join_->open_records(), closed = join_->closed_records(), orphans = join_->orphan_labels();

    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy, short_memory);
    join_->SetSnapshotMinEntries(8);
    size_t most_segments = 0;
    for (int round = 0; round < 60; ++round) {
      feed(join_.get(), round, round + 1);
      Save();
      most_segments = std::max(most_segments, SegmentCount(*store_));
      if (round % 20 == 19) {  // restart from the store now and then
        join_ = Reload();
        join_->SetSnapshotMinEntries(8);
      }
    }
    EXPECT_EQ(Canonical(out_), reference);
    auto loaded = Reload();
    EXPECT_EQ(loaded->open_records(), open);
    EXPECT_EQ(loaded->closed_records(), closed);
    EXPECT_EQ(loaded->orphan_labels(), orphans);
    // Without snapshots there would be one segment per checkpoint (60).
    EXPECT_LT(most_segments, 20u);
    out_.clear();
  }
}

TEST_F(JoinStoreTest, LoadsPerRecordKeysAndFeaturesOfTheOlderLayoutAndReplacesThem) {
  Make(POLICY_WAIT);
  const std::string prefix = JoinPartitionPrefix(0);
  JoinRecord rec;
  *rec.mutable_impression() = Imp("a", T);
  OrphanLabels orphans;
  *orphans.add_labels() = Lab("b", LABEL_CLICK, T + 100);
  PartitionMeta meta;
  meta.set_task_layout(rules_->layout());
  meta.set_policy(POLICY_WAIT);
  meta.set_impressions_offset(5);
  meta.set_labels_offset(6);
  store::WriteBatch b;
  b.Put(PartitionJoin::kRecordFamily, prefix + "ra", rec.SerializeAsString());
  b.Put(PartitionJoin::kRecordFamily, prefix + "ob", orphans.SerializeAsString());
  b.Put(PartitionJoin::kMetaFamily, PartitionMetaKey(0), meta.SerializeAsString());
  ASSERT_TRUE(store_->Write(b).ok());

  join_ = Reload();
  EXPECT_EQ(join_->open_records(), 1u);
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_EQ(join_->next_offset(true), 5);
  Save();  // rewritten as a snapshot; the old keys are gone
  EXPECT_FALSE(store_->Get(PartitionJoin::kRecordFamily, prefix + "ra")->has_value());
  EXPECT_FALSE(store_->Get(PartitionJoin::kRecordFamily, prefix + "ob")->has_value());
  EXPECT_EQ(SegmentCount(*store_), 1u);
  join_ = Reload();
  EXPECT_EQ(join_->open_records(), 1u);
  join_->AddImpression(Imp("b", T + 50), &out_);  // joins the orphan click
  Tick(T + 40000);
  const std::optional<Sample> s = Find("b");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->label(0), 1.0f);
  // "a" was stored the way records were before JoinRecord.features: its features
  // inside the impression. They moved over on load and reach its sample.
  const std::optional<Sample> a = Find("a");
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->sparse_size(), 1);
  EXPECT_EQ(a->sparse(0).ids(0), 9u);
  ASSERT_EQ(a->dense_size(), 1);
  EXPECT_EQ(a->dense(0).values(0), 0.5f);
}

TEST_F(JoinStoreTest, CorruptSegmentIsDataLossNamingTheStore) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  store::WriteBatch b;
  b.Put(PartitionJoin::kRecordFamily, JoinLogSegmentKey(0, 0), std::string("r\x05" "ab", 4));  // id length 5, 2 bytes left
  ASSERT_TRUE(store_->Write(b).ok());
  auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(dir_.string()), std::string::npos);
  EXPECT_NE(loaded.status().message().find("segment 0 of partition 0"), std::string::npos) << loaded.status();
}

TEST(JoinLogTest, EntriesRoundTripInOrder) {
  std::string seg;
  Label l = Lab("x", LABEL_LIKE, T);
  OrphanLabels o;
  *o.add_labels() = l;
  const std::string long_id(300, 'q');  // a two-byte varint length
  AppendJoinLogEntry(JoinLogEntry::kOrphans, "x", &o, &seg);
  AppendJoinLogEntry(JoinLogEntry::kRecordDeleted, long_id, nullptr, &seg);
  std::vector<std::pair<JoinLogEntry, std::string>> seen;
  ASSERT_TRUE(ForEachJoinLogEntry(seg, "test", [&](JoinLogEntry t, std::string_view id, std::string_view payload) {
                seen.emplace_back(t, std::string(id));
                if (t == JoinLogEntry::kOrphans) {
                  OrphanLabels back;
                  EXPECT_TRUE(back.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
                  EXPECT_EQ(back.labels(0).kind(), LABEL_LIKE);
                } else {
                  EXPECT_TRUE(payload.empty());
                }
                return true;
              }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(JoinLogEntry::kOrphans, std::string("x")));
  EXPECT_EQ(seen[1], std::make_pair(JoinLogEntry::kRecordDeleted, long_id));
  EXPECT_EQ(ForEachJoinLogEntry(std::string_view(seg).substr(0, seg.size() - 3), "test",
                                [](JoinLogEntry, std::string_view, std::string_view) { return true; }).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(JoinLogSegmentSeq(JoinPartitionPrefix(3), JoinLogSegmentKey(3, 258)), 258);
  EXPECT_EQ(JoinLogSegmentSeq(JoinPartitionPrefix(3), JoinLogSegmentKey(4, 258)), -1);
}

}  // namespace
}  // namespace freshet::ingest
