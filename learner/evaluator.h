// PrequentialEvaluator: quality metrics over a sliding window of scored samples, per
// task. The online learner scores each batch before training on it (test-then-train)
// and feeds the scores here; `freshet eval`, the publisher's validation gate and the
// dashboard read the snapshot.
//
// Per task, over the newest `window` observed samples (mask bit set):
//   AUC          probability a random positive outranks a random negative (ties: 1/2)
//   GAUC         per-user AUC averaged with impression-count weights, over users that
//                have both a positive and a negative in the window
//   log loss     mean binary cross-entropy (binary tasks)
//   calibration  mean prediction / mean label (1 is calibrated)
//   MSE          mean squared error (regression tasks)
// Samples carry an importance weight (fake-negative policies); metrics weight by it.
//
// Thread-safety: Add and Snapshot may be called concurrently (one mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace freshet::learner {

struct TaskMetrics {
  std::string task;
  bool regression = false;
  int64_t count = 0;          // samples in the window
  double positives = 0;       // weighted (binary tasks)
  double auc = -1;            // -1 when undefined (one class only)
  double gauc = -1;           // -1 when no user has both classes
  int64_t gauc_users = 0;
  double log_loss = -1;
  double calibration = -1;    // mean prediction / mean label; -1 when no positives
  double mean_prediction = 0;
  double mean_label = 0;
  double mse = -1;            // regression tasks
};

// AUC of scores against binary labels with weights (Mann-Whitney with tied ranks).
// Returns -1 when either class has zero weight.
double WeightedAuc(const std::vector<float>& scores, const std::vector<float>& labels,
                   const std::vector<float>& weights);

class PrequentialEvaluator {
 public:
  struct TaskSpec {
    std::string name;
    bool regression = false;
  };
  // REQUIRES: window >= 1
  PrequentialEvaluator(std::vector<TaskSpec> tasks, size_t window);

  // One scored sample of task `task`. `prediction` is a probability for binary tasks
  // (clamped away from 0 and 1 for log loss), a value for regression tasks.
  void Add(int task, uint64_t user_id, float prediction, float label, float weight = 1.0f);

  std::vector<TaskMetrics> Snapshot() const;
  int64_t total_added() const;

 private:
  struct Entry {
    uint64_t user;
    float prediction, label, weight;
  };
  std::vector<TaskSpec> tasks_;
  const size_t window_;
  mutable std::mutex mu_;
  std::vector<std::deque<Entry>> entries_;  // guarded by mu_
  int64_t total_ = 0;                       // guarded by mu_
};

}  // namespace freshet::learner
