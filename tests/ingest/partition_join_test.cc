// PartitionJoin unit tests with a fake clock and in-memory events: window close,
// masks and sample spaces, per-task windows, late labels, the three policies,
// orphans (TTL, bound), duplicates, out-of-order events. State save and restore:
// partition_join_store_test.cc.
#include "ingest/partition_join.h"

#include <gtest/gtest.h>

#include <numeric>

#include "tests/ingest/join_test_fixture.h"

namespace freshet::ingest {
namespace {

using namespace jointest;

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

// The per-event metrics are counted in the join and reach the registry when flushed:
// by FlushMetrics, every few thousand events, or when the join is destroyed.
TEST_F(JoinTest, MetricsReachTheRegistryWhenFlushed) {
  Make(POLICY_WAIT);
  Counter* samples = metrics_.GetCounter("freshet_ingest_samples_total", "", {{"policy", "wait"}});
  Counter* clicks = metrics_.GetCounter("freshet_ingest_joined_labels_total", "", {{"kind", "click"}});
  Histogram* delay = metrics_.GetHistogram("freshet_ingest_label_delay_seconds", "", ExponentialBuckets(0.25, 2, 14),
                                           {{"kind", "click"}});
  Histogram* freshness = FreshnessHistogram(&metrics_, "joined");
  join_->AddImpression(Imp("r1", T), &out_);
  join_->AddLabel(Lab("r1", LABEL_CLICK, T + 2500), &out_);
  Tick(T + 31000);  // closes r1's window
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(samples->Value(), 0);  // counted, not yet added
  EXPECT_EQ(clicks->Value(), 0);
  join_->FlushMetrics();
  EXPECT_EQ(samples->Value(), 1);
  EXPECT_EQ(clicks->Value(), 1);
  EXPECT_EQ(delay->Count(), 1u);
  EXPECT_DOUBLE_EQ(delay->Sum(), 2.5);
  EXPECT_EQ(freshness->Count(), 1u);
  join_->FlushMetrics();  // nothing new: nothing added twice
  EXPECT_EQ(samples->Value(), 1);

  // Thousands of events flush by themselves.
  for (int i = 0; i < 5000; ++i) join_->AddImpression(Imp("a" + std::to_string(i), T + 40000), &out_);
  for (int i = 0; i < 5000; ++i) join_->AddLabel(Lab("a" + std::to_string(i), LABEL_CLICK, T + 40100), &out_);
  EXPECT_GE(clicks->Value(), 4096);
  // The rest when the join goes away (a revoked partition).
  join_.reset();
  EXPECT_EQ(clicks->Value(), 5001);
}

}  // namespace
}  // namespace freshet::ingest
