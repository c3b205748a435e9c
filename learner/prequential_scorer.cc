// PrequentialScorer; see prequential_scorer.h.
#include "learner/prequential_scorer.h"

#include <algorithm>
#include <utility>

namespace freshet::learner {

uint64_t PrequentialScorer::RequestKey(std::string_view request_id) {
  // FNV-1a 64: stable across processes and standard libraries.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : request_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

PrequentialScorer::PrequentialScorer(PrequentialEvaluator* evaluator, Options options)
    : evaluator_(evaluator), options_(std::move(options)) {
  for (const TaskConfig& t : options_.tasks) {
    auto it = std::find(group_window_ms_.begin(), group_window_ms_.end(), t.window_ms());
    task_group_.push_back(static_cast<int>(it - group_window_ms_.begin()));
    if (it == group_window_ms_.end()) group_window_ms_.push_back(t.window_ms());
  }
  due_.resize(group_window_ms_.size());
}

void PrequentialScorer::Score(const std::vector<Row>& rows, const cpu::Mat<float>& predictions,
                              const cpu::Mat<float>& labels, const cpu::Mat<float>& masks,
                              const cpu::Mat<float>& weights) {
  const int tasks = static_cast<int>(predictions.cols());
  auto score_now = [&](int b) {
    for (int t = 0; t < tasks; ++t)
      if (masks(b, t) != 0) evaluator_->Add(t, rows[b].user_id, predictions(b, t), labels(b, t), weights(b, t));
  };
  for (int b = 0; b < static_cast<int>(rows.size()); ++b) {
    const Row& row = rows[b];
    switch (row.origin) {
      case ORIGIN_LATE_CORRECTION:
        ++corrections_skipped_;
        break;
      case ORIGIN_IMMEDIATE_POSITIVE: {
        auto it = pending_.find(row.request_key);
        if (it == pending_.end()) {
          ++unmatched_positives_;
          break;
        }
        Deferred& d = it->second;
        for (int t = 0; t < tasks; ++t) {
          if (masks(b, t) == 0 || (d.open >> t & 1) == 0) continue;  // a task already scored stays as scored
          d.label[t] = labels(b, t);
          d.weight[t] = weights(b, t);
          d.mask |= uint64_t{1} << t;
        }
        break;
      }
      case ORIGIN_IMMEDIATE_NEGATIVE: {
        if (pending_.size() >= options_.max_pending || pending_.count(row.request_key) > 0) {
          ++overflow_;
          score_now(b);
          break;
        }
        Deferred d;
        d.user_id = row.user_id;
        d.open = tasks >= 64 ? ~uint64_t{0} : (uint64_t{1} << tasks) - 1;
        d.prediction.resize(tasks);
        d.label.resize(tasks);
        d.weight.resize(tasks);
        for (int t = 0; t < tasks; ++t) {
          d.prediction[t] = predictions(b, t);
          d.label[t] = labels(b, t);
          d.weight[t] = weights(b, t);
          if (masks(b, t) != 0) d.mask |= uint64_t{1} << t;
        }
        for (size_t g = 0; g < due_.size(); ++g)
          due_[g].emplace_back(row.event_time_ms + group_window_ms_[g] + options_.grace_ms, row.request_key);
        pending_.emplace(row.request_key, std::move(d));
        break;
      }
      default:
        score_now(b);
    }
  }
}

void PrequentialScorer::Advance(int64_t stream_time_ms) {
  // Arrival order is event-time order up to the joiner's interleaving of partitions,
  // so walking from the front and stopping at the first entry not yet due scores a
  // slightly late entry at most one interleaving later.
  for (size_t g = 0; g < due_.size(); ++g) {
    auto& queue = due_[g];
    while (!queue.empty() && queue.front().first <= stream_time_ms) {
      auto it = pending_.find(queue.front().second);
      if (it != pending_.end() && Emit(&it->second, static_cast<int>(g))) pending_.erase(it);
      queue.pop_front();
    }
  }
}

bool PrequentialScorer::Emit(Deferred* d, int g) {
  for (int t = 0; t < static_cast<int>(d->prediction.size()); ++t) {
    if (task_group_[t] != g || (d->open >> t & 1) == 0) continue;
    d->open &= ~(uint64_t{1} << t);
    if (d->mask >> t & 1) evaluator_->Add(t, d->user_id, d->prediction[t], d->label[t], d->weight[t]);
  }
  return d->open == 0;
}

}  // namespace freshet::learner
