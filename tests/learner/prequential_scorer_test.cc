// PrequentialScorer: each impression is scored once, with its first prediction,
// against its eventual label, whatever the label policy sent.
#include "learner/prequential_scorer.h"

#include <gtest/gtest.h>

#include <random>

namespace freshet::learner {
namespace {

using cpu::Mat;
using Row = PrequentialScorer::Row;

TaskConfig Task(const std::string& name, int64_t window_ms) {
  TaskConfig t;
  t.set_name(name);
  t.set_window_ms(window_ms);
  return t;
}

class ScorerTest : public ::testing::Test {
 protected:
  // Tasks: click (10 s window), like (30 s, in click's space).
  PrequentialEvaluator evaluator_{{{"click", false}, {"like", false}}, 1000};
  PrequentialScorer scorer_{&evaluator_, {.tasks = {Task("click", 10000), Task("like", 30000)}, .grace_ms = 1000}};

  // One sample batch: prediction p for both tasks, labels/masks per task.
  void Feed(const std::string& request, SampleOrigin origin, int64_t t, float p, std::vector<float> labels,
            std::vector<float> masks) {
    Mat<float> pred(1, 2), lab(1, 2), mask(1, 2), w(1, 2);
    for (int k = 0; k < 2; ++k) {
      pred(0, k) = p;
      lab(0, k) = labels[k];
      mask(0, k) = masks[k];
      w(0, k) = 1;
    }
    scorer_.Score({Row{PrequentialScorer::RequestKey(request), 7, t, origin}}, pred, lab, mask, w);
  }
  TaskMetrics Metrics(int task) { return evaluator_.Snapshot()[task]; }
};

TEST_F(ScorerTest, ImmediateImpressionScoredOnceWithFirstPredictionAndEventualLabel) {
  Feed("a", ORIGIN_IMMEDIATE_NEGATIVE, 0, 0.9f, {0, 0}, {1, 0});
  Feed("b", ORIGIN_IMMEDIATE_NEGATIVE, 0, 0.2f, {0, 0}, {1, 0});
  // a's click arrives; its duplicate carries a later (post-update) prediction that
  // must not be used, and opens like's space with a negative.
  Feed("a", ORIGIN_IMMEDIATE_POSITIVE, 0, 0.1f, {1, 0}, {1, 1});
  EXPECT_EQ(evaluator_.total_added(), 0) << "nothing is scored before a window closes";
  scorer_.Advance(10999);  // click's window: 0 + 10 s + 1 s grace
  EXPECT_EQ(evaluator_.total_added(), 0);
  scorer_.Advance(11000);
  TaskMetrics click = Metrics(0);
  EXPECT_EQ(click.count, 2) << "click is scored when its own window closes";
  EXPECT_DOUBLE_EQ(click.positives, 1);
  EXPECT_DOUBLE_EQ(click.auc, 1.0) << "a (0.9, clicked) outranks b (0.2, not clicked)";
  EXPECT_FLOAT_EQ(click.mean_prediction, (0.9f + 0.2f) / 2);
  EXPECT_EQ(Metrics(1).count, 0) << "like's window (30 s) is still open";
  // b's click arrives after click was scored: the scored label stands; like's space
  // opens for b too.
  Feed("b", ORIGIN_IMMEDIATE_POSITIVE, 0, 0.5f, {1, 0}, {1, 1});
  scorer_.Advance(31000);
  EXPECT_DOUBLE_EQ(Metrics(0).positives, 1);
  EXPECT_EQ(Metrics(1).count, 2) << "like is observed for a and b, whose clicks opened its space";
  EXPECT_EQ(scorer_.pending(), 0u);
}

TEST_F(ScorerTest, WindowClosedScoredAtOnceAndCorrectionsNotAtAll) {
  Feed("a", ORIGIN_WINDOW_CLOSED, 0, 0.7f, {0, 0}, {1, 0});
  EXPECT_EQ(Metrics(0).count, 1);
  Feed("a", ORIGIN_LATE_CORRECTION, 0, 0.7f, {1, 0}, {1, 0});
  EXPECT_EQ(Metrics(0).count, 1) << "a correction is the same impression again";
  EXPECT_EQ(scorer_.corrections_skipped(), 1);
}

TEST_F(ScorerTest, PositiveWithoutItsImpressionIsCountedNotScored) {
  Feed("gone", ORIGIN_IMMEDIATE_POSITIVE, 0, 0.5f, {1, 0}, {1, 0});
  scorer_.Advance(1'000'000);
  EXPECT_EQ(evaluator_.total_added(), 0);
  EXPECT_EQ(scorer_.unmatched_positives(), 1);
}

TEST(PrequentialScorerTest, OverflowScoresAtOnceInsteadOfDropping) {
  PrequentialEvaluator evaluator({{"click", false}}, 100);
  PrequentialScorer scorer(&evaluator, {.tasks = {Task("click", 1000)}, .grace_ms = 0, .max_pending = 2});
  Mat<float> p = Mat<float>::Constant(1, 1, 0.5f), zero = Mat<float>::Zero(1, 1), one = Mat<float>::Ones(1, 1);
  for (int i = 0; i < 3; ++i)
    scorer.Score({Row{PrequentialScorer::RequestKey("r" + std::to_string(i)), 1, 0, ORIGIN_IMMEDIATE_NEGATIVE}}, p,
                 zero, one, one);
  EXPECT_EQ(scorer.pending(), 2u);
  EXPECT_EQ(scorer.overflow(), 1);
  EXPECT_EQ(evaluator.total_added(), 1);
  scorer.Advance(1000);
  EXPECT_EQ(evaluator.total_added(), 3);
}

// The bias this fixes, measured: a stream where the model's prediction carries real
// signal. Scored per sample (the old way), the positive duplicates arrive as extra
// positives whose prediction is the same signal, and every clicked impression also
// sits among the negatives; scored per impression the AUC is the true one.
TEST(PrequentialScorerTest, ImmediateAucEqualsWaitAucOnTheSameImpressions) {
  PrequentialEvaluator wait_eval({{"click", false}}, 100000), imm_eval({{"click", false}}, 100000);
  PrequentialScorer wait(&wait_eval, {.tasks = {Task("click", 1000)}, .grace_ms = 0});
  PrequentialScorer immediate(&imm_eval, {.tasks = {Task("click", 1000)}, .grace_ms = 0});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  Mat<float> one = Mat<float>::Ones(1, 1), zero = Mat<float>::Zero(1, 1);
  for (int i = 0; i < 5000; ++i) {
    const float p = u(rng);
    const bool clicked = u(rng) < p;
    const uint64_t key = PrequentialScorer::RequestKey("r" + std::to_string(i));
    Mat<float> pred = Mat<float>::Constant(1, 1, p);
    wait.Score({Row{key, 1, i, ORIGIN_WINDOW_CLOSED}}, pred, clicked ? one : zero, one, one);
    immediate.Score({Row{key, 1, i, ORIGIN_IMMEDIATE_NEGATIVE}}, pred, zero, one, one);
    if (clicked) immediate.Score({Row{key, 1, i, ORIGIN_IMMEDIATE_POSITIVE}}, Mat<float>::Constant(1, 1, u(rng)), one, one, one);
  }
  immediate.Advance(1'000'000);
  const TaskMetrics w = wait_eval.Snapshot()[0], m = imm_eval.Snapshot()[0];
  EXPECT_EQ(m.count, w.count);
  EXPECT_DOUBLE_EQ(m.positives, w.positives);
  EXPECT_DOUBLE_EQ(m.auc, w.auc);
  EXPECT_GT(w.auc, 0.7);
}

}  // namespace
}  // namespace freshet::learner
