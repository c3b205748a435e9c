// TaskRules from FreshetConfig; see task_rules.h.
#include "ingest/task_rules.h"

#include <algorithm>

namespace freshet::ingest {

uint32_t TaskLayoutFingerprint(const FreshetConfig& config) {
  uint32_t h = 2166136261u;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 16777619u;
  };
  for (const TaskConfig& t : config.tasks()) {
    for (char c : t.name()) mix(static_cast<unsigned char>(c));
    mix(0);
    mix(static_cast<unsigned char>(t.type()));
    mix(0);
  }
  return h;
}

StatusOr<TaskRules> TaskRules::Create(const FreshetConfig& config) {
  TaskRules r;
  if (config.tasks_size() == 0) return InvalidArgumentError("tasks: at least one task is needed");
  if (config.tasks_size() > kMaxTasks) {
    return InvalidArgumentError("tasks: " + std::to_string(config.tasks_size()) + " tasks, ingest supports at most " +
                                std::to_string(kMaxTasks));
  }
  r.tasks_by_kind_.resize(LabelKind_MAX + 1);
  for (int i = 0; i < config.tasks_size(); ++i) {
    const TaskConfig& c = config.tasks(i);
    TaskRule t;
    t.name = c.name();
    t.regression = c.type() == TASK_REGRESSION;
    for (int k : c.label_kinds()) {
      t.kinds.push_back(static_cast<LabelKind>(k));
      auto& list = r.tasks_by_kind_[k];
      if (std::find(list.begin(), list.end(), i) == list.end()) list.push_back(i);
    }
    t.threshold = c.value_threshold();
    t.scale = c.value_scale();
    t.window_ms = c.window_ms();
    r.max_window_ms_ = std::max(r.max_window_ms_, t.window_ms);
    r.tasks_.push_back(std::move(t));
  }
  r.dependents_.resize(r.tasks_.size());
  for (int i = 0; i < config.tasks_size(); ++i) {
    const std::string& dep = config.tasks(i).requires_positive();
    if (dep.empty()) continue;
    int found = -1;
    for (int j = 0; j < config.tasks_size(); ++j) {
      if (config.tasks(j).name() == dep) found = j;
    }
    if (found < 0 || found == i || r.tasks_[found].regression) {
      return InvalidArgumentError("tasks[" + std::to_string(i) + "].requires_positive = \"" + dep +
                                  "\": must name another binary task");
    }
    r.tasks_[i].requires_positive = found;
    if (!r.tasks_[i].regression) r.dependents_[found].push_back(i);
  }
  r.layout_ = TaskLayoutFingerprint(config);
  return r;
}

const std::vector<int>& TaskRules::TasksForKind(LabelKind kind) const {
  static const std::vector<int> kNone;
  const int k = static_cast<int>(kind);
  if (k < 0 || k >= static_cast<int>(tasks_by_kind_.size())) return kNone;
  return tasks_by_kind_[k];
}

}  // namespace freshet::ingest
