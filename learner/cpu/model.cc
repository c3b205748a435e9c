// Model forward/backward: embedding bags, the op tape, towers.
#include "learner/cpu/model.h"

#include <unordered_map>

#include "common/check.h"

namespace freshet::cpu {

// --------------------------------------------------------- 1. embedding bags → x
//
// x.row(b).segment(column_s, dim_s) = Σ_{id in bag b of slot s} w(id)   (÷ |bag| for mean)
// Ids without a row (not admitted, or unknown at serving) contribute zeros.

template <typename T>
void Model<T>::EmbedBatch(const Batch& batch, bool training, int64_t now_ms) {
  const int64_t B = batch.size;
  CHECK_EQ(batch.sparse.size(), slots_.size()) << "batch built for another slot layout";
  CHECK_EQ(batch.dense.cols(), dense_dim_) << "batch built for another dense layout";
  Mat<T>& x = buffers_.value[0];
  x.setZero(B, input_dim_);
  if (training) table_->BeginBatch();

  // Resolve every id first: admission may grow the arena and move rows, so row
  // pointers are taken only after all lookups.
  occurrence_row_.assign(slots_.size(), {});
  sparse_grads_.assign(slots_.size(), {});
  for (size_t s = 0; s < slots_.size(); ++s) {
    const auto& ids = batch.sparse[s].ids;
    CHECK_EQ(batch.sparse[s].offsets.size(), static_cast<size_t>(B + 1));
    std::unordered_map<int32_t, int32_t> local;  // row → index in sparse_grads_[s].rows
    auto& occ = occurrence_row_[s];
    occ.resize(ids.size());
    for (size_t j = 0; j < ids.size(); ++j) {
      const RowId row = training ? table_->LookupOrAdmit(static_cast<int>(s), ids[j], now_ms)
                                 : table_->Lookup(static_cast<int>(s), ids[j]);
      if (!row.valid()) {
        occ[j] = -1;
        continue;
      }
      auto [it, inserted] = local.emplace(row.row, static_cast<int32_t>(sparse_grads_[s].rows.size()));
      if (inserted) sparse_grads_[s].rows.push_back(row);
      occ[j] = it->second;
    }
  }
  for (size_t s = 0; s < slots_.size(); ++s) {
    const SparseSlotLayout& layout = slots_[s];
    const auto& offsets = batch.sparse[s].offsets;
    const auto& rows = sparse_grads_[s].rows;
    for (int64_t b = 0; b < B; ++b) {
      auto out = x.row(b).segment(layout.column, layout.dim);
      for (int32_t j = offsets[b]; j < offsets[b + 1]; ++j) {
        const int32_t u = occurrence_row_[s][j];
        if (u < 0) continue;
        out += Eigen::Map<const RowVec<T>>(table_->Weights(rows[u]), layout.dim);
      }
      const int32_t n = offsets[b + 1] - offsets[b];
      if (layout.mean && n > 0) out /= T(n);
    }
  }
  x.middleCols(input_dim_ - twin_width_ - dense_dim_, dense_dim_) = batch.dense.template cast<T>();
  last_batch_ = &batch;
}

// ------------------------------------------------------------- 2. the op tape

template <typename T>
void Model<T>::RunOps(bool training) {
  const int64_t B = buffers_.value[0].rows();
  for (auto& op : ops_) op->Forward(&buffers_, training);
  logits_.resize(B, num_tasks());
  for (int t = 0; t < num_tasks(); ++t) logits_.col(t) = buffers_.value[tower_out_[t]].col(0);
}

template <typename T>
void Model<T>::Forward(const Batch& batch, bool training, int64_t now_ms) {
  EmbedBatch(batch, training, now_ms);
  if (twin_) RunTwin(batch);
  RunOps(training);
}

template <typename T>
void Model<T>::ForwardFromInput(const Mat<T>& x, bool training) {
  CHECK_EQ(x.cols(), input_dim_);
  buffers_.value[0] = x;
  last_batch_ = nullptr;
  sparse_grads_.clear();
  RunOps(training);
}

template <typename T>
void Model<T>::ZeroGrad() {
  for (Param<T>* p : params_) p->ZeroGrad();
}

template <typename T>
void Model<T>::Backward(const Mat<T>& dlogits) {
  CHECK_EQ(dlogits.cols(), num_tasks());
  for (size_t i = 0; i < buffers_.value.size(); ++i)
    buffers_.grad[i].setZero(buffers_.value[i].rows(), buffers_.value[i].cols());
  for (int t = 0; t < num_tasks(); ++t) buffers_.grad[tower_out_[t]].col(0) = dlogits.col(t);
  for (size_t i = ops_.size(); i-- > 0;) ops_[i]->Backward(&buffers_);

  // Embedding rows: d w(id) += dx.row(b).segment(column_s, dim_s) (÷ |bag| for mean).
  if (last_batch_ == nullptr) return;
  if (twin_) BackwardTwin();  // adds the query's gradient to dx before it is scattered
  const Mat<T>& dx = buffers_.grad[0];
  for (size_t s = 0; s < slots_.size(); ++s) {
    const SparseSlotLayout& layout = slots_[s];
    SparseGrad& g = sparse_grads_[s];
    g.grad.setZero(static_cast<int64_t>(g.rows.size()), layout.dim);
    const auto& offsets = last_batch_->sparse[s].offsets;
    for (int64_t b = 0; b + 1 < static_cast<int64_t>(offsets.size()); ++b) {
      const int32_t n = offsets[b + 1] - offsets[b];
      const T scale = layout.mean && n > 0 ? T(1) / T(n) : T(1);
      for (int32_t j = offsets[b]; j < offsets[b + 1]; ++j) {
        const int32_t u = occurrence_row_[s][j];
        if (u >= 0) g.grad.row(u) += scale * dx.row(b).segment(layout.column, layout.dim);
      }
    }
  }
  if (!twin_) return;
  // Behaviour items ESU attended to: their rows join the item slot's gradient.
  SparseGrad& g = sparse_grads_[twin_slot_];
  std::unordered_map<int32_t, int32_t> local;
  for (size_t u = 0; u < g.rows.size(); ++u) local.emplace(g.rows[u].row, static_cast<int32_t>(u));
  for (const auto& [item, grad] : twin_features_->grads) {
    const RowId row = table_->Lookup(twin_slot_, item);
    if (!row.valid()) continue;
    auto [it, inserted] = local.emplace(row.row, static_cast<int32_t>(g.rows.size()));
    if (inserted) {
      g.rows.push_back(row);
      g.grad.conservativeResize(g.grad.rows() + 1, Eigen::NoChange);
      g.grad.row(it->second).setZero();
    }
    g.grad.row(it->second) += grad;
  }
}

FRESHET_INSTANTIATE(Model)

}  // namespace freshet::cpu
