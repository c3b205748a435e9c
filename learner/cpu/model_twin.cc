// Model's TWIN wiring: the item slot's embedding as the query, the batch's histories
// as requests, the module's output into x's last columns, and its gradients back
// into x (the query columns) and the item slot's embedding rows. See model.h.
#include "learner/cpu/model.h"

#include <limits>

#include "common/check.h"
#include "learner/cpu/model_builder.h"

namespace freshet::cpu {

int TwinSlotIndex(const ModelConfig& model) {
  for (int i = 0; i < model.sparse_slots_size(); ++i)
    if (model.sparse_slots(i).slot() == model.twin().item_slot()) return i;
  return -1;
}

Status ValidateTwinConfig(const ModelConfig& model) {
  const TwinConfig& t = model.twin();
  if (!t.enabled()) return Status::Ok();
  if (TwinSlotIndex(model) < 0)
    return InvalidArgumentError("learner.model.twin.item_slot " + std::to_string(t.item_slot()) +
                                " is not one of learner.model.sparse_slots");
  if (t.max_len() < 1) return InvalidArgumentError("learner.model.twin.max_len must be >= 1");
  if (t.top_k() < 1 || t.top_k() > t.max_len())
    return InvalidArgumentError("learner.model.twin.top_k must be in [1, max_len]");
  if (t.heads() < 1 || t.key_dim() < 1 || t.value_dim() < 1 || t.output_dim() < 1 || t.cross_dim() < 1)
    return InvalidArgumentError("learner.model.twin: heads, key_dim, value_dim, output_dim, cross_dim must be >= 1");
  if (t.refresh_after_versions() < 0)
    return InvalidArgumentError("learner.model.twin.refresh_after_versions must be >= 0");
  if (t.projection_cache_items() < 1)
    return InvalidArgumentError("learner.model.twin.projection_cache_items must be >= 1");
  if (t.consistency_samples() < 0 || t.consistency_interval_steps() < 1)
    return InvalidArgumentError("learner.model.twin: consistency_samples must be >= 0 and consistency_interval_steps >= 1");
  return Status::Ok();
}

template <typename T>
void Model<T>::RunTwin(const Batch& batch) {
  const int B = batch.size;
  const SparseSlotLayout& item = slots_[twin_slot_];
  const bool histories = !batch.behaviour_offsets.empty();
  CHECK(!histories || BehavioursDescribed(batch));
  twin_requests_.assign(B, TwinRequest{});
  for (int b = 0; b < B; ++b) {
    TwinRequest& r = twin_requests_[b];
    // Without event times every cached behaviour is in the past.
    r.time_ms = batch.event_times_ms.empty() ? std::numeric_limits<int64_t>::max() : batch.event_times_ms[b];
    if (!histories) continue;
    // Rows sharing a history share its view, which lets GSU gather it once.
    const int h = batch.behaviour_history.empty() ? b : batch.behaviour_history[b];
    r.behaviours = batch.behaviours.data() + batch.behaviour_offsets[h];
    r.count = batch.behaviour_offsets[h + 1] - batch.behaviour_offsets[h];
  }
  Mat<T>& x = buffers_.value[0];
  twin_query_ = x.middleCols(item.column, item.dim);
  twin_->Forward(twin_query_, twin_requests_, twin_features_.get(), projection_cache_.get(), version_, &twin_out_);
  x.middleCols(input_dim_ - twin_width_, twin_width_) = twin_out_;
}

template <typename T>
void Model<T>::BackwardTwin() {
  Mat<T>& dx = buffers_.grad[0];
  const SparseSlotLayout& item = slots_[twin_slot_];
  Mat<T> dq = Mat<T>::Zero(dx.rows(), item.dim);
  twin_features_->grads.clear();
  const Mat<T> dy = dx.middleCols(input_dim_ - twin_width_, twin_width_);
  twin_->Backward(twin_query_, dy, &dq);
  dx.middleCols(item.column, item.dim) += dq;
}

template <typename T>
double Model<T>::TwinConsistency(int max_samples) {
  CHECK(twin_ != nullptr);
  return twin_->Consistency(twin_query_, twin_requests_, twin_features_.get(), max_samples);
}

template void Model<float>::RunTwin(const Batch&);
template void Model<double>::RunTwin(const Batch&);
template void Model<float>::BackwardTwin();
template void Model<double>::BackwardTwin();
template double Model<float>::TwinConsistency(int);
template double Model<double>::TwinConsistency(int);

}  // namespace freshet::cpu
