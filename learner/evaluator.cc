// PrequentialEvaluator and WeightedAuc; see evaluator.h.
#include "learner/evaluator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "common/check.h"

namespace freshet::learner {

double WeightedAuc(const std::vector<float>& scores, const std::vector<float>& labels,
                   const std::vector<float>& weights) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Walk groups of tied scores in ascending order: each positive in a group beats all
  // negative weight below the group and half of the negative weight inside it.
  double neg_below = 0, pos_total = 0, neg_total = 0, wins = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    double pos = 0, neg = 0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      const size_t k = order[j];
      if (labels[k] > 0.5f) pos += weights[k];
      else neg += weights[k];
      ++j;
    }
    wins += pos * (neg_below + 0.5 * neg);
    neg_below += neg;
    pos_total += pos;
    neg_total += neg;
    i = j;
  }
  if (pos_total <= 0 || neg_total <= 0) return -1;
  return wins / (pos_total * neg_total);
}

PrequentialEvaluator::PrequentialEvaluator(std::vector<TaskSpec> tasks, size_t window)
    : tasks_(std::move(tasks)), window_(window), entries_(tasks_.size()) {
  CHECK_GE(window, 1u);
}

void PrequentialEvaluator::Add(int task, uint64_t user_id, float prediction, float label, float weight) {
  CHECK(task >= 0 && task < static_cast<int>(tasks_.size())) << "task " << task;
  std::lock_guard<std::mutex> lock(mu_);
  auto& q = entries_[task];
  q.push_back({user_id, prediction, label, weight});
  if (q.size() > window_) q.pop_front();
  ++total_;
}

int64_t PrequentialEvaluator::total_added() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

std::vector<TaskMetrics> PrequentialEvaluator::Snapshot() const {
  std::vector<std::deque<Entry>> copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    copy = entries_;
  }
  std::vector<TaskMetrics> out;
  for (size_t t = 0; t < tasks_.size(); ++t) {
    TaskMetrics m;
    m.task = tasks_[t].name;
    m.regression = tasks_[t].regression;
    const auto& q = copy[t];
    m.count = static_cast<int64_t>(q.size());
    if (q.empty()) {
      out.push_back(m);
      continue;
    }
    double w_sum = 0, pred_sum = 0, label_sum = 0, loss_sum = 0, sq_sum = 0;
    for (const Entry& e : q) {
      w_sum += e.weight;
      pred_sum += e.weight * e.prediction;
      label_sum += e.weight * e.label;
      if (m.regression) {
        sq_sum += e.weight * (e.prediction - e.label) * (e.prediction - e.label);
      } else {
        const double p = std::clamp(static_cast<double>(e.prediction), 1e-7, 1 - 1e-7);
        loss_sum += -e.weight * (e.label > 0.5f ? std::log(p) : std::log(1 - p));
        if (e.label > 0.5f) m.positives += e.weight;
      }
    }
    if (w_sum <= 0) {
      out.push_back(m);
      continue;
    }
    m.mean_prediction = pred_sum / w_sum;
    m.mean_label = label_sum / w_sum;
    if (m.regression) {
      m.mse = sq_sum / w_sum;
      out.push_back(m);
      continue;
    }
    m.log_loss = loss_sum / w_sum;
    if (label_sum > 0) m.calibration = pred_sum / label_sum;

    std::vector<float> scores, labels, weights;
    scores.reserve(q.size());
    labels.reserve(q.size());
    weights.reserve(q.size());
    std::unordered_map<uint64_t, std::vector<size_t>> by_user;
    for (const Entry& e : q) {
      by_user[e.user].push_back(scores.size());
      scores.push_back(e.prediction);
      labels.push_back(e.label);
      weights.push_back(e.weight);
    }
    m.auc = WeightedAuc(scores, labels, weights);
    double gauc_num = 0, gauc_den = 0;
    std::vector<float> us, ul, uw;
    for (const auto& [user, idx] : by_user) {
      us.clear();
      ul.clear();
      uw.clear();
      for (size_t i : idx) {
        us.push_back(scores[i]);
        ul.push_back(labels[i]);
        uw.push_back(weights[i]);
      }
      const double a = WeightedAuc(us, ul, uw);
      if (a < 0) continue;
      gauc_num += a * static_cast<double>(idx.size());
      gauc_den += static_cast<double>(idx.size());
      ++m.gauc_users;
    }
    if (gauc_den > 0) m.gauc = gauc_num / gauc_den;
    out.push_back(m);
  }
  return out;
}

}  // namespace freshet::learner
