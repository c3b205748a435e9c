// Optimizers. Dense parameters: Adam or Adagrad (DenseOptimizer). Embedding rows:
// sparse Adagrad or FTRL-Proximal (SparseOptimizer), whose per-element state lives
// in the EmbeddingTable next to the row, so it is admitted, evicted and saved with it.
//
//   Adam     m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  w ← w − lr·m̂/(√v̂ + ε),
//            m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)
//   Adagrad  a ← a + g²;  w ← w − lr·g/(√a + ε)
//   FTRL     σ = (√(n+g²) − √n)/α;  z ← z + g − σw;  n ← n + g²;
//            w = 0 if |z| ≤ λ1 else −(z − sgn(z)λ1) / ((β + √n)/α + λ2)
//
// Thread-safety: none; used by the trainer thread.
#pragma once

#include <vector>

#include "learner/cpu/model.h"
#include "schemas/model_config.pb.h"

namespace freshet::cpu {

template <typename T>
class DenseOptimizer {
 public:
  // params: the model's dense parameters; the optimizer keeps one or two state
  // tensors of the same shape per parameter.
  DenseOptimizer(const DenseOptimizerConfig& config, const std::vector<Param<T>*>& params);

  // Applies every param's grad to its value. Does not zero the grads.
  void Step();
  int64_t steps() const { return t_; }

  void Save(ByteWriter* w) const;
  // REQUIRES: built for the same params (same shapes, same order).
  [[nodiscard]] Status Load(ByteReader* r);

 private:
  DenseOptimizerConfig config_;
  std::vector<Param<T>*> params_;
  std::vector<Mat<T>> m_;  // Adam first moment / Adagrad accumulator, per param
  std::vector<Mat<T>> v_;  // Adam second moment (empty for Adagrad)
  int64_t t_ = 0;
};

template <typename T>
class SparseOptimizer {
 public:
  explicit SparseOptimizer(const SparseOptimizerConfig& config) : config_(config) {}
  // Number of state values per embedding element it needs in the table.
  int state_width() const { return config_.type() == SPARSE_FTRL ? 2 : 1; }

  // Applies grads[s].grad.row(u) to row grads[s].rows[u] of slot s.
  void Step(EmbeddingTable<T>* table, const std::vector<typename Model<T>::SparseGrad>& grads);

 private:
  SparseOptimizerConfig config_;
};

}  // namespace freshet::cpu
