// Layers of the CPU reference backend, each with a forward and a backward pass:
// Linear, activations (ReLU, Swish), BatchNorm, the HoME feature gate and the
// softmax/sigmoid mixture gate. The math and its derivation is docs/models.md §0;
// every function below names the equation it implements.
//
// A layer owns its Params and whatever it must remember from Forward for Backward
// (HugeCTR's fprop/bprop shape). The caller keeps the layer's input alive between
// Forward and Backward and passes it again. Backward ACCUMULATES into parameter
// gradients and into dx (+=), because one activation often feeds several consumers.
//
// Thread-safety: none; one layer belongs to one model used by one thread.
#pragma once

#include <string>
#include <vector>

#include "learner/cpu/tensor.h"

namespace freshet::cpu {

enum class Act { kRelu, kSwish, kNone };

// a = act(z), elementwise. z, a: (B, W). Swish is z·σ(βz).
template <typename T>
void ActivationForward(Act act, T beta, const Mat<T>& z, Mat<T>* a);
// dz = da ⊙ act'(z). ReLU: 1[z>0]; Swish: σ(βz)(1 + βz(1 − σ(βz))).
template <typename T>
void ActivationBackward(Act act, T beta, const Mat<T>& z, const Mat<T>& da, Mat<T>* dz);
// The same on blocks (e.g. a column range a worker owns); outputs are not resized.
// Call with T explicit: ActivationForward<float>(…).
template <typename T>
void ActivationForward(Act act, T beta, Eigen::Ref<const Mat<T>> z, Eigen::Ref<Mat<T>> a);
template <typename T>
void ActivationBackward(Act act, T beta, Eigen::Ref<const Mat<T>> z, Eigen::Ref<const Mat<T>> da,
                        Eigen::Ref<Mat<T>> dz);

// y = x W + b.
template <typename T>
class Linear {
 public:
  Linear() = default;
  // Glorot-uniform W, zero b.
  Linear(const std::string& name, int in, int out, bool bias, Rng* rng);

  // x: (B, in) → y: (B, out). y is overwritten.
  void Forward(const Mat<T>& x, Mat<T>* y) const;
  // dW += xᵀ dy; db += Σ_b dy; dx += dy Wᵀ when dx != nullptr.
  // REQUIRES: x is the input of the matching Forward; dx (if given) is (B, in).
  void Backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>* dx);

  void CollectParams(std::vector<Param<T>*>* out);
  int in() const { return static_cast<int>(w.value.rows()); }
  int out() const { return static_cast<int>(w.value.cols()); }

  Param<T> w;  // (in, out)
  Param<T> b;  // (1, out); 0×0 when built without bias
};

// BatchNorm per column over the batch (models.md §0). Training mode normalises with
// the batch's biased mean/variance and folds them into running stats; inference mode
// uses the running stats (what serving sees).
template <typename T>
class BatchNorm {
 public:
  BatchNorm() = default;
  BatchNorm(const std::string& name, int channels, T momentum, T eps);

  // x: (B, C) → y: (B, C). REQUIRES (training): B >= 2.
  void Forward(const Mat<T>& x, bool training, Mat<T>* y);
  // dγ += Σ dy·x̂; dβ += Σ dy; dx += γ/(B√(σ²+ε)) (B·dy − Σdy − x̂ Σ dy·x̂).
  // REQUIRES: the last Forward ran in training mode.
  void Backward(const Mat<T>& dy, Mat<T>* dx);

  void CollectParams(std::vector<Param<T>*>* out);

  Param<T> gamma;       // (1, C), init 1
  Param<T> beta;        // (1, C), init 0
  RowVec<T> running_mean;  // (C), init 0
  RowVec<T> running_var;   // (C), init 1

 private:
  T momentum_ = T(0.99);
  T eps_ = T(1e-5);
  bool last_training_ = false;
  Mat<T> xhat_;         // (B, C) from the last training Forward
  RowVec<T> inv_std_;   // (C)    1/√(σ²+ε) of that batch
};

// HoME feature gate (models.md §0, §3.5): x' = x ⊙ 2σ(x B A), B: (D, l), A: (l, D).
// A starts at zero so the gate starts as the identity (f ≡ 1) and B still receives
// gradient after A's first step. P = BA is never materialised.
template <typename T>
class FeatureGate {
 public:
  FeatureGate() = default;
  FeatureGate(const std::string& name, int dim, int rank, Rng* rng);

  // x: (B, D) → xg: (B, D).
  void Forward(const Mat<T>& x, Mat<T>* xg);
  // dx += dxg ⊙ f + (du Aᵀ) Bᵀ with du = dxg ⊙ x ⊙ f(1 − f/2).
  void Backward(const Mat<T>& x, const Mat<T>& dxg, Mat<T>* dx);

  void CollectParams(std::vector<Param<T>*>* out);

  Param<T> down;  // B: (D, l), Glorot
  Param<T> up;    // A: (l, D), zero-initialised

 private:
  Mat<T> t_;  // (B, l)  x B
  Mat<T> f_;  // (B, D)  2σ(x B A)
};

// Gated mixture of n experts of width d (models.md §0):
//   z = x W_g (+ b_g)  (B, n);  g = softmax(z) or σ(z) per entry;  h = Σ_i g_i ⊙ e_i.
// Softmax is the MMoE/PLE gate; σ is the one-expert HoME self gate.
// Experts are column blocks of activation matrices: expert i is
// experts[i].m->middleCols(experts[i].col, d).
template <typename T>
class MixtureGate {
 public:
  enum class Kind { kSoftmax, kSigmoid };
  struct ExpertView {
    Mat<T>* value;  // (B, ≥ col + d)
    Mat<T>* grad;   // same shape as *value; Backward accumulates into it
    int col;
  };

  MixtureGate() = default;
  MixtureGate(const std::string& name, int in, int n, Kind kind, bool bias, Rng* rng);

  // x: (B, in), experts: n views of width d. h: (B, d), overwritten unless
  // `accumulate` (then h += mixture; used by self gates).
  void Forward(const Mat<T>& x, const std::vector<ExpertView>& experts, int d, bool accumulate,
               Mat<T>* h);
  // de_i += g_i ⊙ dh; a_i = ⟨dh, e_i⟩ per row; softmax: dz_j = g_j(a_j − Σ_i g_i a_i),
  // sigmoid: dz = a ⊙ g(1 − g); dW += xᵀ dz; dx += dz Wᵀ (when dx != nullptr).
  void Backward(const Mat<T>& x, const std::vector<ExpertView>& experts, int d, const Mat<T>& dh,
                Mat<T>* dx);

  void CollectParams(std::vector<Param<T>*>* out);
  // The last Forward's gate weights, (B, n): diagnostics read these.
  const Mat<T>& weights() const { return g_; }
  int num_experts() const { return linear_.out(); }
  Kind kind() const { return kind_; }

 private:
  Kind kind_ = Kind::kSoftmax;
  Linear<T> linear_;  // W_g: (in, n)
  Mat<T> g_;          // (B, n)
};

// A stack of Linear layers with `act` after every layer except (when
// `last_linear`) the last. Used for towers.
template <typename T>
class Mlp {
 public:
  Mlp() = default;
  // widths = {in, h1, ..., out}.
  Mlp(const std::string& name, const std::vector<int>& widths, Act act, bool last_linear, Rng* rng);

  // x: (B, in) → y: (B, out). Keeps pointers to nothing; copies what Backward needs.
  void Forward(const Mat<T>& x, Mat<T>* y);
  // REQUIRES: x is the input of the matching Forward. dx += when given.
  void Backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>* dx);
  void CollectParams(std::vector<Param<T>*>* out);

 private:
  std::vector<Linear<T>> layers_;
  Act act_ = Act::kRelu;
  bool last_linear_ = true;
  std::vector<Mat<T>> z_;   // pre-activations per layer, (B, w_l)
  std::vector<Mat<T>> a_;   // post-activations per layer (input of the next), (B, w_l)
  std::vector<Mat<T>> dz_;  // Backward scratch per layer, (B, w_l): same shapes every
  std::vector<Mat<T>> da_;  // step, so no per-step allocation
};

}  // namespace freshet::cpu
