// BatchBuilder: Sample protos → column-wise Batch.
#include "learner/batch.h"

#include <algorithm>

namespace freshet {

BatchBuilder::BatchBuilder(const ModelConfig& model, int num_tasks, uint32_t expected_task_layout)
    : num_tasks_(num_tasks), expected_task_layout_(expected_task_layout) {
  for (int i = 0; i < model.sparse_slots_size(); ++i) sparse_index_[model.sparse_slots(i).slot()] = i;
  for (const DenseSlotConfig& d : model.dense_slots()) {
    dense_index_[d.slot()] = {dense_dim_, d.width()};
    dense_dim_ += d.width();
  }
  sparse_.resize(model.sparse_slots_size());
  for (auto& s : sparse_) s.offsets = {0};
}

Status BatchBuilder::Add(const Sample& sample) {
  if (expected_task_layout_ != 0 && sample.task_layout() != expected_task_layout_)
    return InvalidArgumentError("sample " + sample.sample_id() + " was built for task layout " +
                                std::to_string(sample.task_layout()) + ", learner expects " +
                                std::to_string(expected_task_layout_));
  if (sample.label_size() != num_tasks_ || sample.mask_size() != num_tasks_ ||
      (sample.weight_size() != 0 && sample.weight_size() != num_tasks_))
    return InvalidArgumentError("sample " + sample.sample_id() + " has " +
                                std::to_string(sample.label_size()) + " labels, " +
                                std::to_string(sample.mask_size()) + " masks, " +
                                std::to_string(sample.weight_size()) + " weights; expected " +
                                std::to_string(num_tasks_) + " each (weights may be empty)");
  // Validate dense widths before touching any column, so a bad sample appends nothing.
  for (const DenseFeature& d : sample.dense()) {
    auto it = dense_index_.find(d.slot());
    if (it != dense_index_.end() && d.values_size() != it->second.second)
      return InvalidArgumentError("sample " + sample.sample_id() + " dense slot " +
                                  std::to_string(d.slot()) + " has " +
                                  std::to_string(d.values_size()) + " values, expected " +
                                  std::to_string(it->second.second));
  }
  for (const SparseFeature& f : sample.sparse()) {
    auto it = sparse_index_.find(f.slot());
    if (it == sparse_index_.end()) {
      ++unknown_slot_features_;
      continue;
    }
    auto& ids = sparse_[it->second].ids;
    ids.insert(ids.end(), f.ids().begin(), f.ids().end());
  }
  for (auto& s : sparse_) s.offsets.push_back(static_cast<int32_t>(s.ids.size()));
  const size_t row = dense_.size();
  dense_.resize(row + dense_dim_, 0.0f);
  for (const DenseFeature& d : sample.dense()) {
    auto it = dense_index_.find(d.slot());
    if (it == dense_index_.end()) {
      ++unknown_slot_features_;
      continue;
    }
    std::copy(d.values().begin(), d.values().end(), dense_.begin() + row + it->second.first);
  }
  for (int t = 0; t < num_tasks_; ++t) {
    labels_.push_back(sample.label(t));
    masks_.push_back(sample.mask(t) ? 1.0f : 0.0f);
    weights_.push_back(sample.weight_size() == 0 ? 1.0f : sample.weight(t));
  }
  max_event_time_ms_ = std::max(max_event_time_ms_, sample.event_time_ms());
  user_ids_.push_back(sample.user_id());
  item_ids_.push_back(sample.item_id());
  event_times_ms_.push_back(sample.event_time_ms());
  return Status::Ok();
}

Batch BatchBuilder::Finish() {
  Batch b;
  b.size = size();
  b.sparse = std::move(sparse_);
  b.dense = Eigen::Map<RowMatrixF>(dense_.data(), b.size, dense_dim_);
  b.labels = Eigen::Map<RowMatrixF>(labels_.data(), b.size, num_tasks_);
  b.masks = Eigen::Map<RowMatrixF>(masks_.data(), b.size, num_tasks_);
  b.weights = Eigen::Map<RowMatrixF>(weights_.data(), b.size, num_tasks_);
  b.max_event_time_ms = max_event_time_ms_;
  b.user_ids = std::move(user_ids_);
  b.item_ids = std::move(item_ids_);
  b.event_times_ms = std::move(event_times_ms_);
  user_ids_.clear();
  item_ids_.clear();
  event_times_ms_.clear();
  sparse_.assign(b.sparse.size(), Batch::SparseSlot{});
  for (auto& s : sparse_) s.offsets = {0};
  dense_.clear();
  labels_.clear();
  masks_.clear();
  weights_.clear();
  max_event_time_ms_ = 0;
  return b;
}

bool BehavioursDescribed(const Batch& batch) {
  const std::vector<int32_t>& o = batch.behaviour_offsets;
  if (o.empty() || o.front() != 0 || o.back() != static_cast<int32_t>(batch.behaviours.size())) return false;
  for (size_t i = 1; i < o.size(); ++i)
    if (o[i] < o[i - 1]) return false;
  const size_t histories = o.size() - 1;
  if (batch.behaviour_history.empty()) return histories == static_cast<size_t>(batch.size);
  if (static_cast<int>(batch.behaviour_history.size()) != batch.size) return false;
  for (int32_t h : batch.behaviour_history)
    if (h < 0 || static_cast<size_t>(h) >= histories) return false;
  return true;
}

Status AttachBehaviours(const store::BehaviourCache& cache, Batch* batch) {
  if (static_cast<int>(batch->user_ids.size()) != batch->size)
    return InvalidArgumentError("batch has " + std::to_string(batch->user_ids.size()) + " user ids for " +
                                std::to_string(batch->size) + " samples (build it with BatchBuilder)");
  std::vector<uint64_t> users;
  std::vector<int32_t> row_history(batch->size);
  std::unordered_map<uint64_t, int32_t> index;
  for (int b = 0; b < batch->size; ++b) {
    auto [it, inserted] = index.try_emplace(batch->user_ids[b], static_cast<int32_t>(users.size()));
    if (inserted) users.push_back(batch->user_ids[b]);
    row_history[b] = it->second;
  }
  ASSIGN_OR_RETURN(std::vector<std::vector<store::Behaviour>> histories, cache.MultiRead(users));
  return AttachHistories(histories, batch, row_history);
}

Status AttachHistories(const std::vector<std::vector<store::Behaviour>>& histories, Batch* batch,
                       const std::vector<int32_t>& row_history) {
  const size_t rows = row_history.empty() ? histories.size() : row_history.size();
  if (rows != static_cast<size_t>(batch->size))
    return InvalidArgumentError("got " + std::to_string(histories.size()) + " behaviour histories and " +
                                std::to_string(row_history.size()) + " row indices for a batch of " +
                                std::to_string(batch->size) + " samples");
  for (int32_t h : row_history)
    if (h < 0 || static_cast<size_t>(h) >= histories.size())
      return InvalidArgumentError("row history index " + std::to_string(h) + " is not one of the " +
                                  std::to_string(histories.size()) + " histories");
  batch->behaviours.clear();
  batch->behaviour_offsets.assign(1, 0);
  for (const auto& h : histories) {
    batch->behaviours.insert(batch->behaviours.end(), h.begin(), h.end());
    batch->behaviour_offsets.push_back(static_cast<int32_t>(batch->behaviours.size()));
  }
  batch->behaviour_history = row_history;
  return Status::Ok();
}

void QueueEngagements(const Batch& batch, const std::vector<bool>& binary_task, int play_time_task,
                      const store::BehaviourCache& cache, store::WriteBatch* out) {
  if (static_cast<int>(batch.user_ids.size()) != batch.size || static_cast<int>(batch.item_ids.size()) != batch.size ||
      static_cast<int>(batch.event_times_ms.size()) != batch.size)
    return;  // not built by BatchBuilder: no ids to key histories by
  // One merge per user, behaviours in event-time order.
  std::unordered_map<uint64_t, std::vector<store::Behaviour>> by_user;
  std::vector<uint64_t> order;
  for (int b = 0; b < batch.size; ++b) {
    uint32_t actions = 0;
    for (int t = 0; t < static_cast<int>(binary_task.size()) && t < 32; ++t)
      if (binary_task[t] && batch.masks(b, t) > 0 && batch.labels(b, t) > 0.5f) actions |= 1u << t;
    if (actions == 0) continue;
    double play_s = play_time_task >= 0 && batch.masks(b, play_time_task) > 0 ? batch.labels(b, play_time_task) : 0.0;
    play_s = std::clamp(play_s, 0.0, 4.0e6);  // saturate at ~46 days, below 2^32 ms
    auto [it, inserted] = by_user.try_emplace(batch.user_ids[b]);
    if (inserted) order.push_back(batch.user_ids[b]);
    it->second.push_back({batch.item_ids[b], batch.event_times_ms[b], actions, static_cast<uint32_t>(play_s * 1000.0)});
  }
  for (uint64_t u : order) {
    auto& v = by_user[u];
    std::stable_sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.time_ms < y.time_ms; });
    cache.Append(out, u, v);
  }
}

}  // namespace freshet
