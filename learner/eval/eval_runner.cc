// RunEval; see eval_runner.h.
#include "learner/eval/eval_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <random>

#include "learner/batch.h"
#include "learner/cpu/trainer.h"
#include "learner/prequential_scorer.h"
#include "learner/twin_feed.h"

namespace freshet::learner {
namespace {

std::vector<PrequentialEvaluator::TaskSpec> EvaluatorTasks(const std::vector<TaskConfig>& tasks) {
  std::vector<PrequentialEvaluator::TaskSpec> specs;
  for (const TaskConfig& t : tasks) specs.push_back({t.name(), t.type() == TASK_REGRESSION});
  return specs;
}

// Appends rows [begin, end) of `order` into a Batch; InvalidArgument names the sample.
StatusOr<Batch> MakeBatch(BatchBuilder* builder, const std::vector<Sample>& samples,
                          const std::vector<size_t>& order, size_t begin, size_t end,
                          std::vector<PrequentialScorer::Row>* rows) {
  rows->clear();
  for (size_t i = begin; i < end; ++i) {
    const Sample& s = samples[order[i]];
    RETURN_IF_ERROR(builder->Add(s));
    rows->push_back({PrequentialScorer::RequestKey(s.request_id()), s.user_id(), s.event_time_ms(), s.origin()});
  }
  return builder->Finish();
}


// Mean per-task loss over stretches of steps.
class CurveRecorder {
 public:
  CurveRecorder(int tasks, int64_t total_steps, int points)
      : every_(std::max<int64_t>(1, total_steps / std::max(1, points))), sum_(tasks, 0.0), count_(tasks, 0) {}
  void Add(int64_t step, const cpu::StepResult<float>& r, std::vector<LossPoint>* curve) {
    for (size_t t = 0; t < sum_.size(); ++t) {
      sum_[t] += static_cast<double>(r.task_loss[t]) * r.observed[t];
      count_[t] += r.observed[t];
    }
    if (step % every_ == 0) Flush(step, curve);
  }
  // Closes the current stretch (if it has any step) as a point at `step`.
  void Flush(int64_t step, std::vector<LossPoint>* curve) {
    if (step == last_) return;
    last_ = step;
    LossPoint p;
    p.step = step;
    for (size_t t = 0; t < sum_.size(); ++t) p.task_loss.push_back(count_[t] > 0 ? sum_[t] / count_[t] : -1.0);
    curve->push_back(std::move(p));
    std::fill(sum_.begin(), sum_.end(), 0.0);
    std::fill(count_.begin(), count_.end(), 0);
  }

 private:
  int64_t every_;
  int64_t last_ = 0;
  std::vector<double> sum_;
  std::vector<int64_t> count_;
};

// The TWIN behaviour cache of one run: a fresh store (removed with this object when
// it made the directory itself) and the feed over it; empty when TWIN is off.
class EvalTwin {
 public:
  Status Open(const LearnerConfig& learner, const std::vector<TaskConfig>& tasks, const std::string& dir) {
    if (!learner.model().twin().enabled()) return Status::Ok();
    static std::atomic<int> counter{0};
    path_ = dir.empty() ? (std::filesystem::temp_directory_path() /
                           ("freshet_eval_twin_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
                              .string()
                        : dir;
    owned_ = dir.empty();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);  // a fresh cache: histories start empty
    store::KvStore::Options o;
    o.path = path_;
    TwinFeed::ConfigureStore(learner.model(), &o);
    ASSIGN_OR_RETURN(store_, store::KvStore::Open(o));
    ASSIGN_OR_RETURN(feed_, TwinFeed::Create(learner.model(), tasks, store_.get(), nullptr));
    return Status::Ok();
  }
  ~EvalTwin() {
    feed_.reset();
    store_.reset();
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  TwinFeed* feed() { return feed_.get(); }

 private:
  std::string path_;
  bool owned_ = false;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<TwinFeed> feed_;
};

}  // namespace

StatusOr<EvalResult> RunEval(const LearnerConfig& learner, const std::vector<TaskConfig>& tasks,
                             const std::vector<Sample>& train, const std::vector<Sample>& test,
                             const EvalOptions& options) {
  if (options.passes < 1) return InvalidArgumentError("eval passes must be >= 1");
  if (learner.batch_size() < 1) return InvalidArgumentError("learner.batch_size must be >= 1");
  ASSIGN_OR_RETURN(std::unique_ptr<cpu::Trainer<float>> trainer, cpu::Trainer<float>::Create(learner, tasks));
  EvalTwin twin;
  RETURN_IF_ERROR(twin.Open(learner, tasks, options.twin_dir));
  const bool prequential = options.mode == EvalMode::kPrequential;
  const std::vector<Sample>& scored = prequential ? train : test;
  const int passes = prequential ? 1 : options.passes;
  const size_t bs = static_cast<size_t>(learner.batch_size());
  const size_t window = options.window > 0 ? options.window : std::max<size_t>(1, scored.size());
  PrequentialEvaluator evaluator(EvaluatorTasks(tasks), window);
  // The online learner's scoring rules (each impression once, against its eventual
  // label), so both compute the same metrics from the same stream.
  PrequentialScorer scorer(&evaluator, {.tasks = tasks});
  BatchBuilder builder(learner.model(), static_cast<int>(tasks.size()));
  // BatchNorm needs two rows in a training batch (as TrainingLoop's min_batch_).
  const size_t min_batch = trainer->model().state_buffers().empty() ? 1 : 2;

  EvalResult result;
  const int64_t total = static_cast<int64_t>(passes * train.size() + (prequential ? 0 : test.size()));
  const int64_t steps_total = static_cast<int64_t>(passes * ((train.size() + bs - 1) / bs));
  CurveRecorder curve(static_cast<int>(tasks.size()), steps_total, options.curve_points);
  int64_t done = 0, stream_time_ms = 0;
  std::vector<PrequentialScorer::Row> rows;
  std::vector<size_t> order(train.size());
  for (int pass = 0; pass < passes; ++pass) {
    std::iota(order.begin(), order.end(), 0);
    if (!prequential && options.shuffle_seed != 0)
      std::shuffle(order.begin(), order.end(), std::mt19937_64(options.shuffle_seed + static_cast<uint64_t>(pass)));
    for (size_t begin = 0; begin < order.size(); begin += bs) {
      const size_t end = std::min(order.size(), begin + bs);
      done += static_cast<int64_t>(end - begin);
      if (end - begin < min_batch) continue;
      ASSIGN_OR_RETURN(Batch batch, MakeBatch(&builder, train, order, begin, end, &rows));
      if (twin.feed()) RETURN_IF_ERROR(twin.feed()->Attach(&batch));
      const int64_t stamp = std::max(stream_time_ms, batch.max_event_time_ms);
      StatusOr<cpu::StepResult<float>> r = trainer->Train(batch, stamp);
      if (!r.ok()) {
        if (r.status().code() != StatusCode::kInternal) return r.status();
        ++result.skipped_batches;  // the numerical guard refused the step, as online
        continue;
      }
      if (twin.feed()) RETURN_IF_ERROR(twin.feed()->Record(batch));
      stream_time_ms = stamp;
      ++result.steps;
      result.samples_trained += batch.size;
      curve.Add(result.steps, *r, &result.curve);
      if (prequential) {
        scorer.Score(rows, r->predictions, batch.labels, batch.masks, batch.weights);
        scorer.Advance(stream_time_ms);
        result.samples_scored += batch.size;
      }
      if (options.progress) options.progress(done, total);
    }
  }
  curve.Flush(result.steps, &result.curve);
  if (!prequential) {
    std::vector<size_t> test_order(test.size());
    std::iota(test_order.begin(), test_order.end(), 0);
    for (size_t begin = 0; begin < test.size(); begin += bs) {
      const size_t end = std::min(test.size(), begin + bs);
      ASSIGN_OR_RETURN(Batch batch, MakeBatch(&builder, test, test_order, begin, end, &rows));
      if (twin.feed()) RETURN_IF_ERROR(twin.feed()->Attach(&batch));
      ASSIGN_OR_RETURN(cpu::Mat<float> pred, trainer->Predict(batch));
      scorer.Score(rows, pred, batch.labels, batch.masks, batch.weights);
      result.samples_scored += batch.size;
      done += static_cast<int64_t>(end - begin);
      if (options.progress) options.progress(done, total);
    }
  }
  scorer.Advance(INT64_MAX);  // a finished data set: every window has closed
  result.metrics = evaluator.Snapshot();
  if (!scored.empty()) {
    const size_t n = std::min<size_t>(scored.size(), std::max(2, options.diagnostics_rows));
    std::vector<size_t> tail(n);
    std::iota(tail.begin(), tail.end(), scored.size() - n);
    ASSIGN_OR_RETURN(Batch batch, MakeBatch(&builder, scored, tail, 0, n, &rows));
    if (twin.feed()) RETURN_IF_ERROR(twin.feed()->Attach(&batch));
    RETURN_IF_ERROR(trainer->Predict(batch).status());
    result.diagnostics = cpu::ComputeDiagnostics(trainer->model());
  }
  return result;
}

}  // namespace freshet::learner
