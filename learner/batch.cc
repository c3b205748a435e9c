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
  sparse_.assign(b.sparse.size(), Batch::SparseSlot{});
  for (auto& s : sparse_) s.offsets = {0};
  dense_.clear();
  labels_.clear();
  masks_.clear();
  weights_.clear();
  max_event_time_ms_ = 0;
  return b;
}

}  // namespace freshet
