// TaskRules: the typed form of the configured task list, as the joiner needs it —
// which label kinds set each task, its threshold or scale, its window and its
// sample space (always, or only when another binary task is positive). Built once
// from FreshetConfig and shared read-only.
//
// The task layout fingerprint stamped on every Sample is FNV-1a (32 bit) over, per
// task in config order, the task name, a 0 byte, the type number as one byte and a 0
// byte. The learner computes the same value from its config to reject samples built
// for another layout.
//
// Thread-safety: immutable after Create; share freely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "schemas/config.pb.h"

namespace freshet::ingest {

struct TaskRule {
  std::string name;
  bool regression = false;
  std::vector<LabelKind> kinds;  // in config order (regression: first one observed wins)
  float threshold = 0.5f;        // binary: positive when value >= threshold
  float scale = 1.0f;            // regression: label = value * scale
  int requires_positive = -1;    // index of the binary task that opens the sample space, or -1
  int64_t window_ms = 0;
};

class TaskRules {
 public:
  static constexpr int kMaxTasks = 64;  // masks are kept as 64-bit sets

  // INVALID_ARGUMENT naming the task when the list is empty, too long, or names an
  // unknown requires_positive task.
  static StatusOr<TaskRules> Create(const FreshetConfig& config);

  int size() const { return static_cast<int>(tasks_.size()); }
  const TaskRule& task(int t) const { return tasks_[t]; }
  int64_t max_window_ms() const { return max_window_ms_; }
  uint32_t layout() const { return layout_; }
  // Tasks that `kind` sets (empty: the kind is valid but unused by this config).
  const std::vector<int>& TasksForKind(LabelKind kind) const;
  // Binary tasks whose sample space opens when task `t` is positive.
  const std::vector<int>& Dependents(int t) const { return dependents_[t]; }

 private:
  std::vector<TaskRule> tasks_;
  std::vector<std::vector<int>> tasks_by_kind_;  // indexed by LabelKind value
  std::vector<std::vector<int>> dependents_;
  int64_t max_window_ms_ = 0;
  uint32_t layout_ = 0;
};

// The fingerprint described above, for the learner and tests.
uint32_t TaskLayoutFingerprint(const FreshetConfig& config);

}  // namespace freshet::ingest
