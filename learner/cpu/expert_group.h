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
// Thread-safety: none (one model, one thread).
#pragma once

#include <string>
#include <vector>

#include "learner/cpu/layers.h"

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

  // x: (B, D) → output (B, n·d).
  void Forward(const Mat<T>& x, bool training);
  // dout: (B, n·d). Accumulates parameter grads and dx (B, D).
  // REQUIRES: x is the input of the last Forward, which ran in training mode.
  void Backward(const Mat<T>& x, const Mat<T>& dout, Mat<T>* dx);
  void CollectParams(std::vector<Param<T>*>* out);
  // BN running statistics (not trained; saved with the model).
  void CollectBuffers(std::vector<RowVec<T>*>* out);

  const ExpertSpec& spec() const { return spec_; }
  const Mat<T>& output() const { return a_.back(); }  // (B, n·d)
  // Input of the last activation (B, n·d): post-BN when BN is on. Diagnostics count
  // units ≤ 0 here (the "zero share" before Swish).
  const Mat<T>& pre_activation() const { return zn_.back(); }
  // BN of the last layer, or nullptr.
  const BatchNorm<T>* output_norm() const;
  int num_layers() const { return static_cast<int>(weights_.size()); }
  Linear<T>& layer(int l) { return weights_[l]; }  // tests use this to plant biases

 private:
  bool HasNorm(int layer) const;
  Act ActOf(int layer) const;

  ExpertSpec spec_;
  std::vector<int> widths_;                 // {D, h1, …, d}
  std::vector<Linear<T>> weights_;          // layer l: W (w_l, n·w_{l+1}), b (1, n·w_{l+1})
  std::vector<BatchNorm<T>> norms_;         // per layer; channels 0 when unused
  std::vector<FeatureGate<T>> feature_gates_;  // per expert when rank > 0
  std::vector<Mat<T>> gated_x_;             // per expert (B, D): x ⊙ f_e
  std::vector<Mat<T>> z_;                   // per layer (B, n·w_{l+1}) pre-BN
  std::vector<Mat<T>> zn_;                  // per layer (B, n·w_{l+1}) post-BN
  std::vector<Mat<T>> a_;                   // per layer (B, n·w_{l+1}) post-activation
  Mat<T> da_, dzn_, dz_, dxg_;              // Backward scratch, kept to avoid reallocation
};

}  // namespace freshet::cpu
