// RunEval (`freshet eval`'s core): its prequential mode computes exactly what the
// online learner's TrainingLoop computes on the same stream; offline mode trains the
// given passes and scores the held-out part; GAUC on a hand-computed example.
#include "learner/eval/eval_runner.h"

#include <gtest/gtest.h>

#include <tuple>

#include "learner/twin_feed.h"
#include "tests/learner/online_test_util.h"

namespace freshet::learner {
namespace {

using testutil::MakeSample;
using testutil::Record;
using testutil::TinyLearner;
using testutil::TwoTasks;

std::vector<Sample> Stream(int n, int first = 0) {
  std::vector<Sample> s;
  for (int i = first; i < first + n; ++i) s.push_back(MakeSample(i));
  return s;
}

TEST(EvalRunnerTest, PrequentialModeEqualsTheOnlineLearnersEvaluator) {
  LearnerConfig learner = TinyLearner(8, /*deadline_ms=*/0);
  learner.set_eval_window(100000);
  const std::vector<Sample> samples = Stream(400);

  // The online learner's path: serialized records through TrainingLoop.
  MetricsRegistry metrics;
  FakeClock clock;
  TrainingLoop::Options o;
  o.learner = learner;
  o.tasks = TwoTasks();
  o.metrics = &metrics;
  o.clock = &clock;
  auto loop = TrainingLoop::Create(o);
  ASSERT_TRUE(loop.ok()) << loop.status();
  for (size_t i = 0; i < samples.size(); ++i) ASSERT_TRUE((*loop)->Add(Record(samples[i], static_cast<int64_t>(i))).ok());
  clock.AdvanceMs(learner.metrics_interval_ms() + 1);
  ASSERT_TRUE((*loop)->Tick().ok());
  const LearnerProgress online = (*loop)->Progress();
  ASSERT_EQ(online.samples_trained, 400);

  EvalOptions options;
  options.mode = EvalMode::kPrequential;
  auto eval = RunEval(learner, TwoTasks(), samples, {}, options);
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->steps, 50);
  EXPECT_EQ(eval->samples_scored, 400);
  ASSERT_EQ(eval->metrics.size(), online.tasks.size());
  for (size_t t = 0; t < online.tasks.size(); ++t) {
    SCOPED_TRACE(online.tasks[t].task);
    const TaskMetrics& a = eval->metrics[t];
    const TaskMetrics& b = online.tasks[t];
    EXPECT_EQ(a.count, b.count);
    EXPECT_GT(a.auc, 0.0);  // defined: both classes present
    EXPECT_DOUBLE_EQ(a.auc, b.auc);
    EXPECT_DOUBLE_EQ(a.gauc, b.gauc);
    EXPECT_EQ(a.gauc_users, b.gauc_users);
    EXPECT_DOUBLE_EQ(a.log_loss, b.log_loss);
    EXPECT_DOUBLE_EQ(a.calibration, b.calibration);
  }
  // Diagnostics of the final model: PLE with 2 shared + 1 specific expert per task.
  EXPECT_EQ(eval->diagnostics.experts.size(), 4u);
}

TEST(EvalRunnerTest, OfflineModeTrainsThePassesThenScoresTheTestPart) {
  LearnerConfig learner = TinyLearner(16, 0);
  const std::vector<Sample> train = Stream(800), test = Stream(200, 800);
  EvalOptions options;
  options.mode = EvalMode::kOffline;
  options.passes = 10;
  options.shuffle_seed = 7;
  int64_t last_done = 0, last_total = 0;
  options.progress = [&](int64_t done, int64_t total) { last_done = done, last_total = total; };
  auto r = RunEval(learner, TwoTasks(), train, test, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 10 * 50);
  EXPECT_EQ(r->samples_trained, 8000);
  EXPECT_EQ(r->samples_scored, 200);
  EXPECT_EQ(r->metrics[0].count, 200);
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(last_total, 8000 + 200);
  // Users and items recur between the parts, and click is a rule of (user, item)
  // the embeddings can learn: held-out AUC well above chance.
  EXPECT_GT(r->metrics[0].auc, 0.7);
  ASSERT_FALSE(r->curve.empty());
  EXPECT_EQ(r->curve.back().step, 500);
  // The mean training loss of the last stretch is below the first one's.
  EXPECT_LT(r->curve.back().task_loss[0], r->curve.front().task_loss[0]);
}

TEST(EvalRunnerTest, RejectsSamplesThatDoNotFitTheModel) {
  LearnerConfig learner = TinyLearner(4, 0);
  std::vector<Sample> samples = Stream(8);
  samples[5].add_label(1);  // three labels for two tasks
  EvalOptions options;
  auto r = RunEval(learner, TwoTasks(), samples, {}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("labels"), std::string::npos) << r.status();
}

// GAUC = Σ_u n_u AUC_u / Σ_u n_u over users with both classes, n_u = impressions.
//   user 1: pos 0.9, neg 0.2, neg 0.5          → AUC 1            (3 impressions)
//   user 2: pos 0.4, neg 0.4 (tie), neg 0.7    → (0.5 + 0) / 2 = 0.25 (3 impressions)
//   user 3: pos 0.8 only                       → no AUC, left out
//   GAUC = (3·1 + 3·0.25) / 6 = 0.625
//   pooled AUC: positives {0.9, 0.4, 0.8} vs negatives {0.2, 0.5, 0.4, 0.7}:
//     0.9 beats 4; 0.8 beats 4; 0.4 beats 0.2, ties 0.4 → 1.5  ⇒ 9.5 / 12
TEST(EvalRunnerTest, GaucOnAHandComputedExample) {
  PrequentialEvaluator e({{"click", false}}, 100);
  for (auto [user, p, y] : std::vector<std::tuple<uint64_t, float, float>>{
           {1, 0.9f, 1}, {1, 0.2f, 0}, {1, 0.5f, 0}, {2, 0.4f, 1}, {2, 0.4f, 0}, {2, 0.7f, 0}, {3, 0.8f, 1}})
    e.Add(0, user, p, y);
  const TaskMetrics m = e.Snapshot()[0];
  EXPECT_DOUBLE_EQ(m.gauc, 0.625);
  EXPECT_EQ(m.gauc_users, 2);
  EXPECT_DOUBLE_EQ(m.auc, 9.5 / 12);
}

// TWIN in `freshet eval`: histories are built from the stream in order, so after a
// prequential pass the cache holds exactly every user's engagements (no more), and
// the module ran on them (its projections were used when a history passed top_k).
TEST(EvalRunnerTest, PrequentialWithTwinBuildsHistoriesFromThePastOnly) {
  std::vector<Sample> stream;
  for (int i = 0; i < 320; ++i) stream.push_back(MakeSample(i));
  testutil::TempDir dir("eval_twin");
  EvalOptions o;
  o.mode = EvalMode::kPrequential;
  o.twin_dir = dir.path.string();
  const LearnerConfig config = testutil::TwinLearner(8, 0);
  StatusOr<EvalResult> r = RunEval(config, TwoTasks(), stream, {}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->samples_scored, 320);
  store::KvStore::Options so;
  so.path = dir.path.string();
  TwinFeed::ConfigureStore(config.model(), &so);
  auto db = store::KvStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status();
  store::BehaviourCache cache(db->get(), config.model().twin().max_len());
  int64_t engaged = 0;
  for (const Sample& s : stream) {
    if (s.label(0) < 0.5f) continue;  // like implies click in MakeSample
    ++engaged;
  }
  int64_t stored = 0;
  for (uint64_t user = 0; user < 40; ++user) {
    auto h = cache.Read(user);
    ASSERT_TRUE(h.ok()) << h.status();
    for (size_t i = 1; i < h->size(); ++i) EXPECT_LT((*h)[i - 1].time_ms, (*h)[i].time_ms) << "user " << user;
    stored += static_cast<int64_t>(h->size());
  }
  EXPECT_EQ(stored, engaged);
}

}  // namespace
}  // namespace freshet::learner
