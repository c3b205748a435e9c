// PrequentialScorer: decides which trained samples the PrequentialEvaluator scores,
// and against which label, so that every impression is scored exactly once, with the
// prediction the learner made the first time it saw the impression, against the label
// the impression finally got inside its window. Without it the label policies would
// bias the metrics: `immediate` sends each impression as an all-negative sample and
// then one positive duplicate per label (scored naively, every clicked impression
// counts once as a negative and again as a positive), and `wait+correct` sends a late
// positive as a correction duplicate of an impression already scored.
//
//   origin                    what the evaluator gets
//   WINDOW_CLOSED/unspecified scored now, as is (its labels are final at window close)
//   LATE_CORRECTION           not scored: its impression was scored at window close
//   IMMEDIATE_NEGATIVE        deferred: predictions kept; each task is scored once
//                             stream time passes event time + that task's window +
//                             grace, with the label its positives brought
//   IMMEDIATE_POSITIVE        not scored: sets the deferred impression's label (and
//                             mask, when it opens a task's sample space) per task
//
//   PrequentialScorer scorer(&evaluator, {.tasks = tasks, .grace_ms = 5000});
//   scorer.Score(rows, step.predictions, batch.labels, batch.masks, batch.weights);
//   scorer.Advance(stream_time_ms);
//
// Deferred impressions are bounded by max_pending: past it an immediate negative is
// scored at once as is (the naive behaviour) and counted in overflow(), never
// dropped. They are not checkpointed: impressions still deferred when the process
// stops are not scored, and their positives arriving after a restart are counted in
// unmatched_positives(). Metrics only; training is unaffected.
//
// Thread-safety: none; the training thread owns it (the evaluator has its own lock).
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "learner/cpu/tensor.h"
#include "learner/evaluator.h"
#include "schemas/config.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::learner {

class PrequentialScorer {
 public:
  struct Options {
    std::vector<TaskConfig> tasks;  // model/tower order; window_ms per task
    int64_t grace_ms = 5000;        // on top of the longest window (ingest's allowed lateness)
    size_t max_pending = 1 << 20;   // deferred impressions kept at most
  };
  // What the scorer needs of each sample of a trained batch, in batch order.
  struct Row {
    uint64_t request_key = 0;  // RequestKey(sample.request_id())
    uint64_t user_id = 0;
    int64_t event_time_ms = 0;
    SampleOrigin origin = SAMPLE_ORIGIN_UNSPECIFIED;
  };
  static uint64_t RequestKey(std::string_view request_id);

  // REQUIRES: evaluator outlives the scorer and has one task per options.tasks entry.
  PrequentialScorer(PrequentialEvaluator* evaluator, Options options);

  // One trained batch: predictions made before the step, labels, masks and the
  // samples' own weights, all (B, T); rows: B.
  void Score(const std::vector<Row>& rows, const cpu::Mat<float>& predictions, const cpu::Mat<float>& labels,
             const cpu::Mat<float>& masks, const cpu::Mat<float>& weights);
  // Scores the deferred tasks whose windows (plus grace) closed by `stream_time_ms`.
  void Advance(int64_t stream_time_ms);

  size_t pending() const { return pending_.size(); }
  int64_t overflow() const { return overflow_; }
  int64_t unmatched_positives() const { return unmatched_positives_; }
  int64_t corrections_skipped() const { return corrections_skipped_; }

 private:
  struct Deferred {
    uint64_t user_id = 0;
    std::vector<float> prediction, label, weight;  // T each
    uint64_t mask = 0;                             // bit t: task t observed
    uint64_t open = 0;                             // bit t: task t not scored yet
  };
  // Scores the tasks of window group g; true when the impression has no task left.
  bool Emit(Deferred* d, int g);

  PrequentialEvaluator* evaluator_;
  Options options_;
  // Tasks grouped by window: one due queue per distinct window, so a short-window
  // task (click) is scored as soon as its own window closes.
  std::vector<int64_t> group_window_ms_;
  std::vector<int> task_group_;
  std::unordered_map<uint64_t, Deferred> pending_;
  std::vector<std::deque<std::pair<int64_t, uint64_t>>> due_;  // per group: (due_ms, key), arrival order
  int64_t overflow_ = 0;
  int64_t unmatched_positives_ = 0;
  int64_t corrections_skipped_ = 0;
};

}  // namespace freshet::learner
