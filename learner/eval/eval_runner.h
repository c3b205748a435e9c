// RunEval: trains one model on a data set and measures it, without Kafka — the core
// of `freshet eval`. It uses the daemons' pieces unchanged: Trainer (the same model
// code and config), BatchBuilder (the same Sample → Batch path) and
// PrequentialEvaluator (the same metrics code the online learner exports).
//
//   prequential  one pass over `train` in the given (event-time) order; each batch is
//                scored by the step that then trains on it (pre-update predictions),
//                exactly the online learner's test-then-train. `test` is ignored.
//   offline      `passes` passes over `train` (reshuffled each pass when
//                shuffle_seed != 0), then inference-mode predictions on `test`.
//
// TWIN (learner.model.twin.enabled): the behaviour cache lives in a fresh RocksDB
// under `twin_dir` (a temporary directory when empty, removed at the end) and is fed
// exactly as online (learner/twin_feed.h): each batch reads its users' histories,
// then its engagements are appended after the step. Histories are built in stream
// order and the module ignores behaviours at or after a sample's event time, so a
// sample only ever sees its user's past engagements. Offline test rows read the
// histories the training pass left (no appends).
//
// Metrics cover every scored sample unless `window` > 0 (then the newest `window` per
// task, like the online learner's eval_window). The expert/gate diagnostics come
// from an inference forward over (up to) the last diagnostics_rows scored samples.
// The loss curve holds the mean per-task training loss (masked, pre-update) over
// consecutive stretches of steps: on a stream of fresh rows it is held-out loss.
//
//   EvalOptions o;  o.mode = EvalMode::kPrequential;
//   StatusOr<EvalResult> r = RunEval(learner_config, tasks, data.train, {}, o);
//
// Thread-safety: a function; the progress callback runs on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "learner/cpu/diagnostics.h"
#include "learner/evaluator.h"
#include "schemas/config.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::learner {

enum class EvalMode { kOffline, kPrequential };

struct EvalOptions {
  EvalMode mode = EvalMode::kPrequential;
  int passes = 1;                 // offline only
  uint64_t shuffle_seed = 0;      // offline: 0 keeps the given order every pass
  size_t window = 0;              // 0: every scored sample
  int curve_points = 40;          // stretches in the loss curve
  int diagnostics_rows = 2048;
  std::string twin_dir;           // TWIN's behaviour cache; "" = a temporary directory
  // Called after each training step and each scoring batch: (done, total) samples.
  std::function<void(int64_t done, int64_t total)> progress;
};

struct LossPoint {
  int64_t step = 0;                // steps done at the end of the stretch
  std::vector<double> task_loss;   // per task, mean over the stretch's observed samples; -1: none
};

struct EvalResult {
  std::vector<TaskMetrics> metrics;
  cpu::ModelDiagnostics diagnostics;
  std::vector<LossPoint> curve;
  int64_t steps = 0;
  int64_t samples_trained = 0;
  int64_t samples_scored = 0;
  int64_t skipped_batches = 0;     // non-finite loss or gradient: not applied (as online)
};

// InvalidArgument when the config or the samples do not fit the model; the message
// names the sample.
StatusOr<EvalResult> RunEval(const LearnerConfig& learner, const std::vector<TaskConfig>& tasks,
                             const std::vector<Sample>& train, const std::vector<Sample>& test,
                             const EvalOptions& options);

}  // namespace freshet::learner
