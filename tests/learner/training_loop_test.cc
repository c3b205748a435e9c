// TrainingLoop with fakes (FakeClock, in-memory records, temp-dir RocksDB): batching
// by size and by deadline, dedup, the numerical guard, prequential scoring, exact
// checkpoint/restore, and the origin-dependent loss weights.
#include "learner/training_loop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "learner/origin_weights.h"
#include "tests/learner/online_test_util.h"

namespace freshet::learner {
namespace {

using testutil::MakeSample;
using testutil::OpenStore;
using testutil::Record;
using testutil::TempDir;
using testutil::TinyLearner;
using testutil::TwoTasks;

using Fixture = testutil::LoopFixture;

TEST(TrainingLoopTest, CutsBatchesBySizeAndTracksOffsetsOfTrainedRecordsOnly) {
  Fixture f(TinyLearner(4, /*deadline_ms=*/0));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), 100 + i)).ok());
  LearnerProgress p = f.loop->Progress();
  EXPECT_EQ(p.steps, 2);
  EXPECT_EQ(p.samples_trained, 8);
  EXPECT_EQ(p.pending_samples, 2);
  // Records 100..107 are trained; 108 and 109 are pending, so the offset is 108.
  EXPECT_EQ(p.trained_offsets.at(0), 108);
  f.clock.AdvanceMs(1'000'000);
  ASSERT_TRUE(f.loop->Tick().ok());  // size-only: time never cuts a batch
  EXPECT_EQ(f.loop->Progress().steps, 2);
  ASSERT_TRUE(f.loop->Finish().ok());  // nor does stopping
  EXPECT_EQ(f.loop->Progress().steps, 2);
  EXPECT_EQ(f.Counter("freshet_learner_samples_total"), 8);
}

TEST(TrainingLoopTest, DeadlineCutsAPartialBatch) {
  Fixture f(TinyLearner(64, /*deadline_ms=*/100));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), i)).ok());
  ASSERT_TRUE(f.loop->Tick().ok());
  EXPECT_EQ(f.loop->Progress().steps, 0);
  EXPECT_EQ(f.loop->MsUntilNextTimer(), 100);
  f.clock.AdvanceMs(99);
  ASSERT_TRUE(f.loop->Tick().ok());
  EXPECT_EQ(f.loop->Progress().steps, 0);
  f.clock.AdvanceMs(1);
  ASSERT_TRUE(f.loop->Tick().ok());
  EXPECT_EQ(f.loop->Progress().steps, 1);
  EXPECT_EQ(f.loop->Progress().samples_trained, 3);
  EXPECT_EQ(f.loop->Progress().trained_offsets.at(0), 3);
  // The deadline counts from the first sample of the NEXT batch.
  f.clock.AdvanceMs(500);
  ASSERT_TRUE(f.loop->Add(Record(MakeSample(3), 3)).ok());
  ASSERT_TRUE(f.loop->Tick().ok());
  EXPECT_EQ(f.loop->Progress().steps, 1);
  f.clock.AdvanceMs(100);
  ASSERT_TRUE(f.loop->Tick().ok());
  EXPECT_EQ(f.loop->Progress().steps, 2);
}

TEST(TrainingLoopTest, DuplicatesAreSkippedWithinAndAcrossBatchesAndCounted) {
  Fixture f(TinyLearner(4, 0));
  int64_t offset = 0;
  ASSERT_TRUE(f.loop->Add(Record(MakeSample(0), offset++)).ok());
  ASSERT_TRUE(f.loop->Add(Record(MakeSample(0), offset++)).ok());  // same id in the pending batch
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), offset++)).ok());
  EXPECT_EQ(f.loop->Progress().steps, 1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), offset++)).ok());  // replay
  const LearnerProgress p = f.loop->Progress();
  EXPECT_EQ(p.samples_trained, 4);
  EXPECT_EQ(p.duplicates_skipped, 5);
  EXPECT_EQ(p.trained_offsets.at(0), offset);  // skipped records advance the offset when nothing is pending
  EXPECT_EQ(f.Counter("freshet_learner_skipped_samples_total", {{"reason", "duplicate"}}), 5);
  // A correction has its own id: trained, not a duplicate.
  Sample c = MakeSample(0);
  c.set_sample_id(c.sample_id() + "#c:click");
  c.set_origin(ORIGIN_LATE_CORRECTION);
  c.set_correction(true);
  ASSERT_TRUE(f.loop->Add(Record(c, offset++)).ok());
  EXPECT_EQ(f.loop->Progress().pending_samples, 1);
}

TEST(TrainingLoopTest, BadRecordsAreCountedNotFatal) {
  Fixture f(TinyLearner(4, 0));
  ASSERT_TRUE(f.loop->Add(SourceRecord{0, 0, "\xff\xff not a sample"}).ok());
  Sample wrong_layout = MakeSample(1);
  wrong_layout.set_task_layout(12345);
  ASSERT_TRUE(f.loop->Add(Record(wrong_layout, 1)).ok());
  Sample nan_feature = MakeSample(2);
  nan_feature.mutable_dense(0)->set_values(0, std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(f.loop->Add(Record(nan_feature, 2)).ok());
  const LearnerProgress p = f.loop->Progress();
  EXPECT_EQ(p.bad_samples, 3);
  EXPECT_EQ(p.samples_trained, 0);
  EXPECT_EQ(p.trained_offsets.at(0), 3);
  EXPECT_EQ(f.Counter("freshet_learner_skipped_samples_total", {{"reason", "unparseable"}}), 1);
  EXPECT_EQ(f.Counter("freshet_learner_skipped_samples_total", {{"reason", "invalid_sample"}}), 2);
}

TEST(TrainingLoopTest, PoisonedBatchLeavesStateBitIdenticalAndIsCounted) {
  Fixture f(TinyLearner(4, 0));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), i)).ok());
  ASSERT_EQ(f.loop->Progress().steps, 2);
  const std::string before = f.loop->trainer().SaveState();
  // A NaN feature that slipped past ingest (and past the per-sample check).
  f.loop->SetBatchHookForTest([](Batch* b) { b->dense(1, 0) = std::numeric_limits<float>::quiet_NaN(); });
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i + 40), 8 + i)).ok());
  f.loop->SetBatchHookForTest(nullptr);
  LearnerProgress p = f.loop->Progress();
  EXPECT_EQ(p.steps, 2);
  EXPECT_EQ(p.samples_trained, 8);
  EXPECT_EQ(p.skipped_batches, 1);
  EXPECT_TRUE(f.loop->trainer().SaveState() == before) << "a poisoned batch changed the learner state";
  EXPECT_EQ(f.Counter("freshet_learner_skipped_batches_total", {{"reason", "non_finite_input"}}), 1);
  EXPECT_EQ(f.Counter("freshet_learner_non_finite_total", {{"task", "click"}}), 1);
  EXPECT_EQ(f.Counter("freshet_learner_non_finite_total", {{"task", "like"}}), 1);
  EXPECT_EQ(p.trained_offsets.at(0), 12);  // handled, so not replayed
  // Training goes on.
  for (int i = 100; i < 104; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), 12 + i - 100)).ok());
  EXPECT_EQ(f.loop->Progress().steps, 3);
}

TEST(TrainingLoopTest, TrainerGuardRefusesNonFiniteLossWithoutUpdating) {
  auto trainer = cpu::Trainer<float>::Create(TinyLearner(4, 0), TwoTasks());
  ASSERT_TRUE(trainer.ok());
  BatchBuilder builder(TinyLearner(4, 0).model(), 2);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(builder.Add(MakeSample(i)).ok());
  Batch batch = builder.Finish();
  ASSERT_TRUE((*trainer)->Train(batch, 1).ok());
  std::vector<cpu::Param<float>> before;
  for (auto* p : (*trainer)->model().params()) before.push_back(*p);
  batch.labels(2, 1) = std::numeric_limits<float>::infinity();  // only task "like" is poisoned
  auto r = (*trainer)->Train(batch, 2);
  ASSERT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("[like]"), std::string::npos) << r.status();
  const auto& after = (*trainer)->model().params();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(before[i].value == after[i]->value) << "parameter " << after[i]->name << " changed";
  EXPECT_EQ((*trainer)->steps(), 1);
}

TEST(TrainingLoopTest, ScoresEachBatchBeforeTrainingOnIt) {
  auto config = TinyLearner(8, 0);
  config.set_eval_window(8);  // the window holds exactly the last batch
  Fixture f(config);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i), i)).ok());
  // Batch 2 has the same features (ids already admitted) under new sample_ids, so the
  // inference forward equals the training forward of its step.
  BatchBuilder builder(config.model(), 2);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(builder.Add(MakeSample(i, "again")).ok());
  const Batch batch2 = builder.Finish();
  auto before = f.loop->trainer().Predict(batch2);
  ASSERT_TRUE(before.ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(f.loop->Add(Record(MakeSample(i, "again"), 8 + i)).ok());
  ASSERT_EQ(f.loop->Progress().steps, 2);
  auto after = f.loop->trainer().Predict(batch2);
  f.clock.AdvanceMs(2000);
  ASSERT_TRUE(f.loop->Tick().ok());  // metrics refresh
  const LearnerProgress p = f.loop->Progress();
  ASSERT_EQ(p.tasks.size(), 2u);
  EXPECT_EQ(p.tasks[0].count, 8);
  const double pre = before->col(0).mean(), post = after->col(0).mean();
  EXPECT_NEAR(p.tasks[0].mean_prediction, pre, 1e-6);
  EXPECT_GT(std::abs(post - pre), 1e-5) << "the step did not move the predictions; the test cannot tell";
  EXPECT_EQ(f.metrics.GetGauge("freshet_learner_auc", "", {{"task", "click"}})->Value(), p.tasks[0].auc);
}

TEST(TrainingLoopTest, CheckpointRestoreContinuesBitIdentically) {
  const int kBatch = 8, kN = 6;
  auto config = TinyLearner(kBatch, 0);
  // Straight: 2N batches.
  Fixture straight(config);
  for (int i = 0; i < 2 * kN * kBatch; ++i) ASSERT_TRUE(straight.loop->Add(Record(MakeSample(i), i)).ok());
  ASSERT_EQ(straight.loop->Progress().steps, 2 * kN);
  // N batches (+3 pending samples), checkpoint, restore into a new loop, the rest.
  TempDir dir("loop_ckpt");
  auto db = OpenStore(dir.path);
  ASSERT_NE(db, nullptr);
  {
    Fixture first(config, db.get());
    for (int i = 0; i < kN * kBatch + 3; ++i) ASSERT_TRUE(first.loop->Add(Record(MakeSample(i), i)).ok());
    ASSERT_TRUE(first.loop->Finish().ok());
    EXPECT_EQ(first.loop->Progress().checkpoint_version, 1u);
  }
  Fixture second(config, db.get());
  auto restored = second.loop->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status();
  ASSERT_TRUE(*restored);
  const LearnerProgress r = second.loop->Progress();
  EXPECT_EQ(r.steps, kN);
  EXPECT_EQ(r.samples_trained, kN * kBatch);
  const int64_t resume = r.trained_offsets.at(0);
  EXPECT_EQ(resume, kN * kBatch);  // the 3 pending samples are replayed, not lost
  // Replay from the stored offset, with an extra duplicate thrown in: skipped.
  ASSERT_TRUE(second.loop->Add(Record(MakeSample(0), resume - 1)).ok());
  for (int i = static_cast<int>(resume); i < 2 * kN * kBatch; ++i)
    ASSERT_TRUE(second.loop->Add(Record(MakeSample(i), i)).ok());
  EXPECT_EQ(second.loop->Progress().steps, 2 * kN);
  EXPECT_EQ(second.loop->Progress().samples_trained, 2 * kN * kBatch);
  EXPECT_TRUE(second.loop->trainer().SaveState() == straight.loop->trainer().SaveState())
      << "restored training diverged from straight training";
  // A config for another model refuses the checkpoint, saying what to do.
  auto other = config;
  other.mutable_model()->set_expert_output_dim(5);
  Fixture wrong(other, db.get());
  auto refused = wrong.loop->Restore();
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("move the directory aside"), std::string::npos);
}

TEST(OriginWeightsTest, FakeNegativeAndCorrectionWeights) {
  std::vector<cpu::TaskSpec> tasks(2);
  tasks[0].name = "click";
  tasks[1].name = "play_time";
  tasks[1].kind = cpu::TaskKind::kRegression;
  const std::vector<SampleOrigin> origins = {ORIGIN_WINDOW_CLOSED, ORIGIN_IMMEDIATE_NEGATIVE, ORIGIN_IMMEDIATE_POSITIVE,
                                             ORIGIN_LATE_CORRECTION, ORIGIN_LATE_CORRECTION};
  cpu::Mat<double> pred(5, 2), labels(5, 2), masks = cpu::Mat<double>::Ones(5, 2), w = cpu::Mat<double>::Ones(5, 2);
  pred << 0.3, 5, 0.3, 5, 0.3, 5, 0.3, 5, 0.99, 5;
  labels << 1, 2, 0, 0, 1, 3, 1, 0, 1, 0;
  masks(1, 1) = 0;
  w(0, 0) = 2;
  ApplyOriginWeights<double>(tasks, origins, pred, labels, masks, 10.0, &w);
  EXPECT_DOUBLE_EQ(w(0, 0), 2);                 // window closed: ingest's weight as is
  EXPECT_DOUBLE_EQ(w(1, 0), (1 - 0.3) * 1.3);   // immediate negative
  EXPECT_DOUBLE_EQ(w(2, 0), 1.3);               // immediate positive
  EXPECT_DOUBLE_EQ(w(3, 0), 1 / (1 - 0.3));     // correction: gradient of +pos −neg
  EXPECT_DOUBLE_EQ(w(4, 0), 10);                // capped
  for (int b = 0; b < 5; ++b) EXPECT_DOUBLE_EQ(w(b, 1), 1) << "regression weights untouched";
  // A correction positive of weight 1/(1-p) has the logit gradient of "+pos -neg": -1.
  EXPECT_NEAR(w(3, 0) * (pred(3, 0) - 1), (pred(3, 0) - 1) - pred(3, 0), 1e-12);
  EXPECT_FALSE(NeedsOriginWeights({ORIGIN_WINDOW_CLOSED, SAMPLE_ORIGIN_UNSPECIFIED}));
  EXPECT_TRUE(NeedsOriginWeights({ORIGIN_WINDOW_CLOSED, ORIGIN_LATE_CORRECTION}));
}

}  // namespace
}  // namespace freshet::learner
