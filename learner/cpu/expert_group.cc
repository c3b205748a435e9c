// Forward/backward of an ExpertGroup. Notation: n experts, layer l maps width w_l to
// w_{l+1}; "block e" of a (B, n·w) matrix is columns [e·w, (e+1)·w).
#include "learner/cpu/expert_group.h"

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

template <typename T>
void ExpertGroup<T>::Forward(const Mat<T>& x, bool training) {
  const int n = spec_.num_experts;
  const int64_t batch = x.rows();
  for (int l = 0; l < num_layers(); ++l) {
    const int w_in = widths_[l], w_out = widths_[l + 1];
    Linear<T>& lin = weights_[l];
    Mat<T>& z = z_[l];  // (B, n·w_out)
    if (l == 0 && feature_gates_.empty()) {
      lin.Forward(x, &z);  // one GEMM for all experts: (B, D)·(D, n·w_out)
    } else {
      z.resize(batch, n * w_out);
      if (l == 0) gated_x_.resize(n);
      for (int e = 0; e < n; ++e) {
        // Expert e: its own input block (or its own gated copy of x) times block e of W.
        if (l == 0) {
          feature_gates_[e].Forward(x, &gated_x_[e]);  // (B, D)
          z.middleCols(e * w_out, w_out).noalias() = gated_x_[e] * lin.w.value.middleCols(e * w_out, w_out);
        } else {
          z.middleCols(e * w_out, w_out).noalias() =
              a_[l - 1].middleCols(e * w_in, w_in) * lin.w.value.middleCols(e * w_out, w_out);
        }
      }
      z.rowwise() += RowVec<T>(lin.b.value.row(0));
    }
    if (HasNorm(l)) {
      norms_[l].Forward(z, training, &zn_[l]);
    } else {
      zn_[l] = z;
    }
    ActivationForward(ActOf(l), T(spec_.swish_beta), zn_[l], &a_[l]);
  }
}

template <typename T>
void ExpertGroup<T>::Backward(const Mat<T>& x, const Mat<T>& dout, Mat<T>* dx) {
  const int n = spec_.num_experts;
  const int64_t batch = x.rows();
  // Scratch matrices are members: same shapes every step, so no per-step allocation
  // (fresh multi-MB buffers each step cost ~30 % of the step in page faults).
  Mat<T>& da = da_;    // (B, n·w_{l+1})
  Mat<T>& dzn = dzn_;  // (B, n·w_{l+1})
  Mat<T>& dz = dz_;    // (B, n·w_{l+1})
  da = dout;
  for (int l = num_layers() - 1; l >= 0; --l) {
    const int w_in = widths_[l], w_out = widths_[l + 1];
    Linear<T>& lin = weights_[l];
    ActivationBackward(ActOf(l), T(spec_.swish_beta), zn_[l], da, &dzn);
    if (HasNorm(l)) {
      dz.setZero(batch, n * w_out);
      norms_[l].Backward(dzn, &dz);
    } else {
      dz.swap(dzn);
    }
    if (l == 0 && feature_gates_.empty()) {
      lin.Backward(x, dz, dx);  // dW0 += xᵀ dz, dx += dz W0ᵀ: two GEMMs for all experts
      continue;
    }
    lin.b.grad.row(0) += dz.colwise().sum();
    if (l > 0) da.setZero(batch, n * w_in);
    for (int e = 0; e < n; ++e) {
      auto dz_e = dz.middleCols(e * w_out, w_out);   // (B, w_out)
      auto w_e = lin.w.value.middleCols(e * w_out, w_out);  // (w_in, w_out)
      if (l == 0) {
        lin.w.grad.middleCols(e * w_out, w_out).noalias() += gated_x_[e].transpose() * dz_e;
        dxg_.noalias() = dz_e * w_e.transpose();  // (B, D)
        feature_gates_[e].Backward(x, dxg_, dx);
      } else {
        lin.w.grad.middleCols(e * w_out, w_out).noalias() +=
            a_[l - 1].middleCols(e * w_in, w_in).transpose() * dz_e;
        da.middleCols(e * w_in, w_in).noalias() = dz_e * w_e.transpose();
      }
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
