// Model: a multi-task ranking model on the CPU reference backend.
//
//   Batch ─► embedding bags (one per sparse slot) ─┐
//                                                  ├─► x (B, D_in) ─► ops (experts, gates) ─► towers ─► logits (B, T)
//   Batch.dense (B, D_dense) ──────────────────────┘
//
// With TWIN enabled (ModelConfig.twin, learner/cpu/twin.h) the module reads the item
// slot's embedding as its query and the batch's behaviour histories, and its output
// (B, d_twin) is appended: x = [slots | dense | twin], D_in = Σ_s dim_s + D_dense + d_twin.
// Its projection cache is stamped with set_version()'s value (the trainer's step).
//
// D_in = Σ_s dim_s + D_dense (+ d_twin). The op list (ops.h) is what differs between
// shared-bottom, single-task, MMoE, CGC, PLE and HoME; BuildModel (model_builder.h)
// writes it from the typed config, and nothing else constructs a Model.
//
// Training mode: embedding lookups admit new ids (the table grows), BN normalises with
// batch statistics and updates running statistics. Inference mode (serving): lookups
// never admit, BN uses running statistics, nothing in the model changes.
//
// Thread-safety: none. One trainer thread owns a Model; serving keeps its own copy.
// With LearnerConfig.threads > 1 the model owns a WorkerPool whose threads help with
// the expert layers inside Forward/Backward (expert_group.h); values do not change.
#pragma once

#include <memory>
#include <vector>

#include "learner/batch.h"
#include "learner/cpu/embedding_table.h"
#include "learner/cpu/loss.h"
#include "learner/cpu/ops.h"
#include "learner/cpu/twin.h"
#include "common/worker_pool.h"
#include "store/projection_cache.h"

namespace freshet::cpu {

template <typename T>
class ModelBuilder;

template <typename T>
class Model {
 public:
  struct SparseSlotLayout {
    int dim = 0;
    bool mean = false;  // pooling: mean (true) or sum
    int column = 0;     // first column of this slot in x
  };
  // Gradient of the embedding rows touched by the last training Forward, one entry
  // per slot: rows[u] is the u-th distinct row, grad.row(u) its gradient (U, dim).
  struct SparseGrad {
    std::vector<RowId> rows;
    Mat<T> grad;
  };

  // Runs embedding lookups, pools, then the ops. now_ms stamps embedding updates.
  // REQUIRES: batch built for this model's slot layout and task count; B >= 2 in
  // training mode when the model has BatchNorm.
  void Forward(const Batch& batch, bool training, int64_t now_ms);
  // Runs the ops on an explicit input x (B, D_in), bypassing embeddings. Gradient
  // checks use it to test the dense part against finite differences of x.
  void ForwardFromInput(const Mat<T>& x, bool training);
  // (B, T) logits of the last Forward.
  const Mat<T>& logits() const { return logits_; }

  // Backpropagates dL/dlogits (B, T) through the last training Forward. Accumulates
  // into every Param's grad (call ZeroGrad first), fills input_grad() and, after a
  // batch Forward, sparse_grads().
  // REQUIRES: the Batch given to the last Forward is still alive.
  void Backward(const Mat<T>& dlogits);
  void ZeroGrad();
  const Mat<T>& input_grad() const { return buffers_.grad[0]; }  // (B, D_in)
  const std::vector<SparseGrad>& sparse_grads() const { return sparse_grads_; }

  // Dense trainable parameters, in a fixed order (save/restore relies on it).
  const std::vector<Param<T>*>& params() const { return params_; }
  // Non-trainable state: BN running mean/var.
  const std::vector<RowVec<T>*>& state_buffers() const { return state_buffers_; }
  EmbeddingTable<T>& embeddings() { return *table_; }
  const EmbeddingTable<T>& embeddings() const { return *table_; }
  const std::vector<TaskSpec>& tasks() const { return tasks_; }
  const std::vector<ExpertOp<T>*>& expert_ops() const { return expert_ops_; }
  const std::vector<GateOp<T>*>& gate_ops() const { return gate_ops_; }
  int input_dim() const { return input_dim_; }
  int num_tasks() const { return static_cast<int>(tasks_.size()); }

  // TWIN (null when disabled). The version stamps refreshed projections.
  Twin<T>* twin() { return twin_.get(); }
  store::ProjectionCache* projection_cache() { return projection_cache_.get(); }
  void set_version(int64_t version) { version_ = version; }
  // GSU/ESU top-k overlap on up to max_samples requests of the last batch Forward
  // (twin.h Consistency). REQUIRES: twin() and that batch still alive.
  double TwinConsistency(int max_samples);

 private:
  friend class ModelBuilder<T>;
  Model() = default;

  void EmbedBatch(const Batch& batch, bool training, int64_t now_ms);  // → buffers_.value[0]
  void RunOps(bool training);
  void RunTwin(const Batch& batch);                                   // → x's twin columns
  void BackwardTwin();                                                // → dx, twin_grads_

  // K_h of behaviour items from the item slot's embedding rows (never admitting);
  // their gradients are collected and folded into the slot's sparse gradient.
  class TwinEmbeddings : public TwinItemFeatures<T> {
   public:
    explicit TwinEmbeddings(Model* m) : m_(m) {}
    void Inherent(uint64_t item, T* out) override {
      const int dim = m_->slots_[m_->twin_slot_].dim;
      const RowId row = m_->table_->Lookup(m_->twin_slot_, item);
      if (row.valid()) std::copy(m_->table_->Weights(row), m_->table_->Weights(row) + dim, out);
      else std::fill(out, out + dim, T(0));  // unknown item: zero features, as in pooling
    }
    void AccumulateInherentGrad(uint64_t item, const T* grad) override {
      grads.emplace_back(item, Eigen::Map<const RowVec<T>>(grad, m_->slots_[m_->twin_slot_].dim));
    }
    std::vector<std::pair<uint64_t, RowVec<T>>> grads;
   private:
    Model* m_;
  };

  std::vector<TaskSpec> tasks_;
  std::vector<SparseSlotLayout> slots_;
  int dense_dim_ = 0;
  int input_dim_ = 0;
  std::unique_ptr<EmbeddingTable<T>> table_;

  std::unique_ptr<WorkerPool> pool_;         // LearnerConfig.threads > 1; outlives ops_
  std::vector<std::unique_ptr<Op<T>>> ops_;  // in forward order
  std::vector<ExpertOp<T>*> expert_ops_;     // views into ops_
  std::vector<GateOp<T>*> gate_ops_;
  std::vector<int> tower_out_;               // per task: buffer holding its (B, 1) logit
  Buffers<T> buffers_;                       // buffer 0 = x
  Mat<T> logits_;                            // (B, T)
  std::vector<Param<T>*> params_;
  std::vector<RowVec<T>*> state_buffers_;

  // Per slot, per id occurrence of the last batch: index into sparse_grads_[s].rows,
  // or -1 when the id has no row.
  std::vector<std::vector<int32_t>> occurrence_row_;
  std::vector<SparseGrad> sparse_grads_;
  const Batch* last_batch_ = nullptr;

  std::unique_ptr<Twin<T>> twin_;
  std::unique_ptr<store::ProjectionCache> projection_cache_;
  std::unique_ptr<TwinEmbeddings> twin_features_;
  int twin_slot_ = -1;       // index in slots_ of the item slot
  int twin_width_ = 0;       // d_twin, 0 when disabled
  int64_t version_ = 0;
  std::vector<TwinRequest> twin_requests_;  // (B) views into last_batch_
  Mat<T> twin_query_;                       // (B, H)
  Mat<T> twin_out_;                         // (B, d_twin)
};

}  // namespace freshet::cpu
