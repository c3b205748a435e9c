// ExpertGroup: n experts with the same shape that read the same input, evaluated as
// batched GEMMs. Expert e's weights are column block e of each layer's matrix, so
// the first layer of all n experts is ONE (B, D)·(D, n·h1) GEMM (models.md §3,
// "concat same-group experts into one batched GEMM"); later layers are n
// block GEMMs on the matching column blocks.
//
//   x (B, D) ──[feature gate_e]──► Linear ─► [BN] ─► act ─► … ─► Linear ─► [BN] ─► act
//   output (B, n·d): expert e in columns [e·d, (e+1)·d)
//
// HoME's "expert normalisation + Swish" is batch_norm=true, output_act=kSwish.
// BN channels are (expert, unit) pairs, i.e. one BN per expert.
//
// With a WorkerPool (set_pool, LearnerConfig.threads) each layer is split into
// threads() parts: forward and dW/db by output columns (whole experts when there are
// at least as many experts as parts), dx by batch rows. Every part writes its own
// region and each output element is computed by the same GEMM arithmetic as without
// the split, so results do not depend on the thread count (tests check this). BN
// statistics and the feature gates' dx stay on the calling thread.
//
// Thread-safety: none (one model, one thread); the pool's workers only run inside
// Forward/Backward.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "learner/cpu/layers.h"
#include "common/worker_pool.h"

namespace freshet::cpu {

struct ExpertSpec {
  int num_experts = 1;
  int input_dim = 0;            // D
  std::vector<int> hidden;      // hidden widths (may be empty: one linear layer)
  int output_dim = 64;          // d
  Act hidden_act = Act::kRelu;
  Act output_act = Act::kRelu;
  bool batch_norm = false;
  bool norm_every_layer = false;  // false: BN after the last linear layer only
  double bn_momentum = 0.99;
  double bn_eps = 1e-5;
  double swish_beta = 1.0;
  int feature_gate_rank = 0;    // 0: no feature gate
};

template <typename T>
class ExpertGroup {
 public:
  // Each expert's weights are drawn from `rng` in turn, so experts start different.
  ExpertGroup(const std::string& name, const ExpertSpec& spec, Rng* rng);

  // Splits the layers over pool->threads() parts; null (the default): one part.
  // REQUIRES: pool outlives this group.
  void set_pool(WorkerPool* pool) { pool_ = pool; }

  // x: (B, D) → output (B, n·d), written to *out when given (saves a copy), else kept
  // in the group. output() refers to wherever it went.
  // REQUIRES: *out stays alive and unmodified while output() is read.
  void Forward(const Mat<T>& x, bool training, Mat<T>* out = nullptr);
  // dout: (B, n·d). Accumulates parameter grads and dx (B, D).
  // REQUIRES: x is the input of the last Forward, which ran in training mode.
  void Backward(const Mat<T>& x, const Mat<T>& dout, Mat<T>* dx);
  void CollectParams(std::vector<Param<T>*>* out);
  // BN running statistics (not trained; saved with the model).
  void CollectBuffers(std::vector<RowVec<T>*>* out);

  const ExpertSpec& spec() const { return spec_; }
  const Mat<T>& output() const { return *output_; }  // (B, n·d)
  // Input of the last activation (B, n·d): post-BN when BN is on. Diagnostics count
  // units ≤ 0 here (the "zero share" before Swish).
  const Mat<T>& pre_activation() const { return PreAct(num_layers() - 1); }
  // BN of the last layer, or nullptr.
  const BatchNorm<T>* output_norm() const;
  int num_layers() const { return static_cast<int>(weights_.size()); }
  Linear<T>& layer(int l) { return weights_[l]; }  // tests use this to plant biases

 private:
  bool HasNorm(int layer) const;
  Act ActOf(int layer) const;
  const Mat<T>& PreAct(int layer) const { return HasNorm(layer) ? zn_[layer] : z_[layer]; }
  // Input of layer l for expert e: x (or its gated copy) for l = 0, else block e of a_[l−1].
  Eigen::Block<const Mat<T>> ExpertInput(const Mat<T>& x, int l, int e) const;
  int Parts() const { return pool_ == nullptr ? 1 : pool_->threads(); }
  void Parallel(const std::function<void(int)>& fn) const;
  // Output columns [begin, end) of layer l that part p owns.
  std::pair<int, int> Columns(int l, int part) const;

  ExpertSpec spec_;
  std::vector<int> widths_;                 // {D, h1, …, d}
  std::vector<Linear<T>> weights_;          // layer l: W (w_l, n·w_{l+1}), b (1, n·w_{l+1})
  std::vector<BatchNorm<T>> norms_;         // per layer; channels 0 when unused
  std::vector<FeatureGate<T>> feature_gates_;  // per expert when rank > 0
  std::vector<Mat<T>> gated_x_;             // per expert (B, D): x ⊙ f_e
  std::vector<Mat<T>> z_;                   // per layer (B, n·w_{l+1}) pre-BN
  std::vector<Mat<T>> zn_;                  // per layer (B, n·w_{l+1}) post-BN (BN layers only)
  std::vector<Mat<T>> a_;                   // per layer (B, n·w_{l+1}) post-activation
  const Mat<T>* output_ = nullptr;          // a_.back() or the caller's buffer
  // Backward scratch per layer, (B, n·w_{l+1}). Kept across steps with fixed shapes:
  // fresh multi-MB buffers each step cost ~30 % of the step in page faults.
  std::vector<Mat<T>> da_, dzn_, dz_;
  Mat<T> dxg_;                              // (B, D) feature-gate scratch
  WorkerPool* pool_ = nullptr;
};

}  // namespace freshet::cpu
