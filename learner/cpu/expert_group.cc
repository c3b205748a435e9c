// Forward/backward of an ExpertGroup. Notation: n experts, layer l maps width w_l to
// w_{l+1}; "block e" of a (B, n·w) matrix is columns [e·w, (e+1)·w).
#include "learner/cpu/expert_group.h"

#include <algorithm>

#include "common/check.h"

namespace freshet::cpu {

template <typename T>
ExpertGroup<T>::ExpertGroup(const std::string& name, const ExpertSpec& spec, Rng* rng)
    : spec_(spec) {
  const int n = spec.num_experts;
  CHECK_GT(n, 0);
  widths_.push_back(spec.input_dim);
  for (int h : spec.hidden) widths_.push_back(h);
  widths_.push_back(spec.output_dim);
  const int layers = static_cast<int>(widths_.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    const std::string lname = name + ".l" + std::to_string(l);
    Linear<T> linear(lname, widths_[l], n * widths_[l + 1], /*bias=*/true, rng);
    // Re-draw per expert with the expert's own fan-out (independent draws per block).
    for (int e = 0; e < n; ++e)
      GlorotUniform(rng, widths_[l], widths_[l + 1],
                    linear.w.value.middleCols(e * widths_[l + 1], widths_[l + 1]));
    weights_.push_back(std::move(linear));
    norms_.emplace_back(lname + ".bn", HasNorm(l) ? n * widths_[l + 1] : 0, T(spec.bn_momentum),
                        T(spec.bn_eps));
  }
  if (spec.feature_gate_rank > 0) {
    for (int e = 0; e < n; ++e)
      feature_gates_.emplace_back(name + ".fg" + std::to_string(e), spec.input_dim,
                                  spec.feature_gate_rank, rng);
  }
  z_.resize(layers);
  zn_.resize(layers);
  a_.resize(layers);
  output_ = &a_.back();
}

template <typename T>
bool ExpertGroup<T>::HasNorm(int layer) const {
  const int last = static_cast<int>(widths_.size()) - 2;
  return spec_.batch_norm && (spec_.norm_every_layer || layer == last);
}

template <typename T>
Act ExpertGroup<T>::ActOf(int layer) const {
  return layer == static_cast<int>(widths_.size()) - 2 ? spec_.output_act : spec_.hidden_act;
}

template <typename T>
const BatchNorm<T>* ExpertGroup<T>::output_norm() const {
  const int last = num_layers() - 1;
  return HasNorm(last) ? &norms_[last] : nullptr;
}

// Part p of `parts` over [0, total): boundaries rounded to multiples of `align`.
static std::pair<int, int> Split(int total, int parts, int part, int align) {
  auto at = [&](int q) {
    if (q >= parts) return total;
    const int64_t raw = static_cast<int64_t>(total) * q / parts;
    return std::min(total, static_cast<int>((raw + align / 2) / align * align));
  };
  return {at(part), at(part + 1)};
}

// Eigen's GEMM kernel for float on AVX2 works on 24 output columns of our row-major
// results at a time (its mr: 3 packets of 8) and sums a ragged tail with other
// kernels in another order. Splits at multiples of 24 from the start of a GEMM give
// every column the same kernel as the unsplit GEMM, hence bit-identical results.
constexpr int kSplitAlign = 24;

template <typename T>
std::pair<int, int> ExpertGroup<T>::Columns(int l, int part) const {
  const int n = spec_.num_experts, w = widths_[l + 1], parts = Parts();
  // Layer 0 without feature gates is one GEMM over all experts' columns.
  if (l == 0 && feature_gates_.empty()) return Split(n * w, parts, part, kSplitAlign);
  // Otherwise one GEMM per expert: split whole experts, or within a lone expert.
  if (n == 1) return Split(w, parts, part, kSplitAlign);
  const int used = std::min(n, parts);
  if (part >= used) return {n * w, n * w};
  const auto [e0, e1] = Split(n, used, part, 1);
  return {e0 * w, e1 * w};
}

template <typename T>
void ExpertGroup<T>::Parallel(const std::function<void(int)>& fn) const {
  if (pool_ == nullptr) fn(0);
  else pool_->Run(pool_->threads(), fn);
}

template <typename T>
Eigen::Block<const Mat<T>> ExpertGroup<T>::ExpertInput(const Mat<T>& x, int l, int e) const {
  if (l > 0) return a_[l - 1].middleCols(e * widths_[l], widths_[l]);
  const Mat<T>& in = feature_gates_.empty() ? x : gated_x_[e];
  return in.middleCols(0, in.cols());
}

template <typename T>
void ExpertGroup<T>::Forward(const Mat<T>& x, bool training, Mat<T>* out) {
  const int n = spec_.num_experts;
  const int64_t batch = x.rows();
  const int last = num_layers() - 1;
  if (!feature_gates_.empty()) {
    gated_x_.resize(n);
    for (int e = 0; e < n; ++e) feature_gates_[e].Forward(x, &gated_x_[e]);  // (B, D)
  }
  for (int l = 0; l < num_layers(); ++l) {
    const int w_out = widths_[l + 1];
    const Linear<T>& lin = weights_[l];
    Mat<T>& z = z_[l];  // (B, n·w_out)
    Mat<T>& a = l == last && out != nullptr ? *out : a_[l];
    z.resize(batch, n * w_out);
    a.resize(batch, n * w_out);
    const bool norm = HasNorm(l);
    // Part p: columns [c0, c1) of z = input_e · block e of W (+ b), and of a = act(z)
    // unless BN must first see every column.
    auto columns = [&](int part) {
      const auto [c0, c1] = Columns(l, part);
      if (c0 == c1) return;
      if (l == 0 && feature_gates_.empty()) {
        // All experts read x: one GEMM (B, D)·(D, c1 − c0) for the whole range.
        z.middleCols(c0, c1 - c0).noalias() = x * lin.w.value.middleCols(c0, c1 - c0);
      } else {
        for (int e = c0 / w_out; e * w_out < c1; ++e) {
          const int b0 = std::max(c0, e * w_out), b1 = std::min(c1, (e + 1) * w_out);
          z.middleCols(b0, b1 - b0).noalias() = ExpertInput(x, l, e) * lin.w.value.middleCols(b0, b1 - b0);
        }
      }
      z.middleCols(c0, c1 - c0).rowwise() += lin.b.value.row(0).segment(c0, c1 - c0);
      if (!norm) ActivationForward<T>(ActOf(l), T(spec_.swish_beta), z.middleCols(c0, c1 - c0), a.middleCols(c0, c1 - c0));
    };
    Parallel(columns);
    if (norm) {
      norms_[l].Forward(z, training, &zn_[l]);
      ActivationForward(ActOf(l), T(spec_.swish_beta), zn_[l], &a);
    }
  }
  output_ = out != nullptr ? out : &a_.back();
}

template <typename T>
void ExpertGroup<T>::Backward(const Mat<T>& x, const Mat<T>& dout, Mat<T>* dx) {
  const int n = spec_.num_experts;
  const int64_t batch = x.rows();
  da_.resize(num_layers());
  dzn_.resize(num_layers());
  dz_.resize(num_layers());
  for (int l = num_layers() - 1; l >= 0; --l) {
    const int w_in = widths_[l], w_out = widths_[l + 1];
    Linear<T>& lin = weights_[l];
    const Mat<T>& da = l == num_layers() - 1 ? dout : da_[l];  // dL/da_l (B, n·w_out)
    Mat<T>& dz = dz_[l];                                       // dL/dz_l (B, n·w_out)
    const bool norm = HasNorm(l);
    if (norm) {
      ActivationBackward(ActOf(l), T(spec_.swish_beta), zn_[l], da, &dzn_[l]);
      dz.setZero(batch, n * w_out);
      norms_[l].Backward(dzn_[l], &dz);
    } else {
      dz.resize(batch, n * w_out);
      Parallel([&](int part) {
        const auto [c0, c1] = Columns(l, part);
        if (c0 < c1)
          ActivationBackward<T>(ActOf(l), T(spec_.swish_beta), z_[l].middleCols(c0, c1 - c0),
                                da.middleCols(c0, c1 - c0), dz.middleCols(c0, c1 - c0));
      });
    }
    const bool gated_input = l == 0 && !feature_gates_.empty();
    Mat<T>* dprev = l == 0 ? dx : &da_[l - 1];  // dL/d(input of layer l), (B, n·w_in) or (B, D)
    if (l > 0) dprev->resize(batch, n * w_in);
    // Part p: dW, db for its output columns, and (ungated) dprev for its rows.
    Parallel([&](int part) {
      const auto [c0, c1] = Columns(l, part);
      if (c0 < c1 && l == 0 && !gated_input) {
        // All experts read x: dW[:, c0:c1] += xᵀ dz[:, c0:c1], one GEMM for the range.
        lin.w.grad.middleCols(c0, c1 - c0).noalias() += x.transpose() * dz.middleCols(c0, c1 - c0);
      } else {
        for (int e = c0 / w_out; e * w_out < c1; ++e) {
          const int b0 = std::max(c0, e * w_out), b1 = std::min(c1, (e + 1) * w_out);
          lin.w.grad.middleCols(b0, b1 - b0).noalias() +=
              ExpertInput(x, l, e).transpose() * dz.middleCols(b0, b1 - b0);
        }
      }
      if (c0 < c1) lin.b.grad.row(0).segment(c0, c1 - c0) += dz.middleCols(c0, c1 - c0).colwise().sum();
      if (gated_input || dprev == nullptr) return;
      const auto [r0, r1] = Split(static_cast<int>(batch), Parts(), part, 8);
      if (r0 == r1) return;
      if (l == 0) {
        dprev->middleRows(r0, r1 - r0).noalias() += dz.middleRows(r0, r1 - r0) * lin.w.value.transpose();
        return;
      }
      for (int e = 0; e < n; ++e)
        dprev->block(r0, e * w_in, r1 - r0, w_in).noalias() =
            dz.block(r0, e * w_out, r1 - r0, w_out) * lin.w.value.middleCols(e * w_out, w_out).transpose();
    });
    if (!gated_input) continue;
    for (int e = 0; e < n; ++e) {
      dxg_.noalias() = dz.middleCols(e * w_out, w_out) * lin.w.value.middleCols(e * w_out, w_out).transpose();
      feature_gates_[e].Backward(x, dxg_, dx);  // (B, D)
    }
  }
}

template <typename T>
void ExpertGroup<T>::CollectParams(std::vector<Param<T>*>* out) {
  for (int l = 0; l < num_layers(); ++l) {
    weights_[l].CollectParams(out);
    if (HasNorm(l)) norms_[l].CollectParams(out);
  }
  for (auto& fg : feature_gates_) fg.CollectParams(out);
}

template <typename T>
void ExpertGroup<T>::CollectBuffers(std::vector<RowVec<T>*>* out) {
  for (int l = 0; l < num_layers(); ++l) {
    if (!HasNorm(l)) continue;
    out->push_back(&norms_[l].running_mean);
    out->push_back(&norms_[l].running_var);
  }
}

FRESHET_INSTANTIATE(ExpertGroup)

}  // namespace freshet::cpu
