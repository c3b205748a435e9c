// Forward and backward passes of the layers in layers.h. Shapes: B rows (samples),
// columns as named in the header.
#include "learner/cpu/layers.h"

#include <algorithm>

#include "common/check.h"

namespace freshet::cpu {

template <typename T>
void ActivationForward(Act act, T beta, Eigen::Ref<const Mat<T>> z, Eigen::Ref<Mat<T>> a) {
  switch (act) {
    case Act::kRelu:
      a = z.cwiseMax(T(0));
      return;
    case Act::kSwish:
      // a = z σ(βz)
      a = z.unaryExpr([beta](T v) { return v * Sigmoid(beta * v); });
      return;
    case Act::kNone:
      a = z;
      return;
  }
}

template <typename T>
void ActivationBackward(Act act, T beta, Eigen::Ref<const Mat<T>> z, Eigen::Ref<const Mat<T>> da,
                        Eigen::Ref<Mat<T>> dz) {
  switch (act) {
    case Act::kRelu:
      dz = (z.array() > T(0)).select(da, T(0));
      return;
    case Act::kSwish:
      // d/dz z σ(βz) = σ(βz) (1 + βz (1 − σ(βz)))
      dz = da.cwiseProduct(z.unaryExpr([beta](T v) {
        const T s = Sigmoid(beta * v);
        return s * (T(1) + beta * v * (T(1) - s));
      }));
      return;
    case Act::kNone:
      dz = da;
      return;
  }
}

template <typename T>
void ActivationForward(Act act, T beta, const Mat<T>& z, Mat<T>* a) {
  a->resize(z.rows(), z.cols());
  ActivationForward<T>(act, beta, z, *a);
}

template <typename T>
void ActivationBackward(Act act, T beta, const Mat<T>& z, const Mat<T>& da, Mat<T>* dz) {
  dz->resize(z.rows(), z.cols());
  ActivationBackward<T>(act, beta, z, da, *dz);
}

// ---------------------------------------------------------------------------- Linear

template <typename T>
Linear<T>::Linear(const std::string& name, int in, int out, bool bias, Rng* rng)
    : w(name + ".w", in, out), b(name + ".b", bias ? 1 : 0, bias ? out : 0) {
  GlorotUniform(rng, in, out, w.value);
}

template <typename T>
void Linear<T>::Forward(const Mat<T>& x, Mat<T>* y) const {
  DCHECK(x.cols() == w.value.rows());
  y->noalias() = x * w.value;  // (B, in)·(in, out)
  if (b.value.size() > 0) y->rowwise() += RowVec<T>(b.value.row(0));
}

template <typename T>
void Linear<T>::Backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>* dx) {
  w.grad.noalias() += x.transpose() * dy;  // (in, B)·(B, out)
  if (b.value.size() > 0) b.grad.row(0) += dy.colwise().sum();
  if (dx != nullptr) dx->noalias() += dy * w.value.transpose();  // (B, out)·(out, in)
}

template <typename T>
void Linear<T>::CollectParams(std::vector<Param<T>*>* out) {
  out->push_back(&w);
  if (b.value.size() > 0) out->push_back(&b);
}

// ------------------------------------------------------------------------- BatchNorm

template <typename T>
BatchNorm<T>::BatchNorm(const std::string& name, int channels, T momentum, T eps)
    : gamma(name + ".gamma", 1, channels),
      beta(name + ".beta", 1, channels),
      running_mean(RowVec<T>::Zero(channels)),
      running_var(RowVec<T>::Ones(channels)),
      momentum_(momentum),
      eps_(eps) {
  gamma.value.setOnes();
}

template <typename T>
void BatchNorm<T>::Forward(const Mat<T>& x, bool training, Mat<T>* y) {
  const int64_t batch = x.rows();
  last_training_ = training;
  RowVec<T> mean, inv_std;
  if (training) {
    CHECK_GE(batch, 2) << "BatchNorm in training mode needs at least 2 rows";
    mean = x.colwise().mean();                                              // (C)
    RowVec<T> var = (x.rowwise() - mean).array().square().colwise().mean();  // biased
    inv_std = (var.array() + eps_).rsqrt();
    running_mean = momentum_ * running_mean + (T(1) - momentum_) * mean;
    running_var = momentum_ * running_var + (T(1) - momentum_) * var;
    xhat_ = (x.rowwise() - mean).array().rowwise() * inv_std.array();
    inv_std_ = inv_std;
    *y = (xhat_.array().rowwise() * gamma.value.row(0).array()).rowwise() +
         beta.value.row(0).array();
  } else {
    inv_std = (running_var.array() + eps_).rsqrt();
    *y = (((x.rowwise() - running_mean).array().rowwise() * inv_std.array()).rowwise() *
          gamma.value.row(0).array())
             .rowwise() +
         beta.value.row(0).array();
  }
}

template <typename T>
void BatchNorm<T>::Backward(const Mat<T>& dy, Mat<T>* dx) {
  CHECK(last_training_) << "BatchNorm backward after an inference-mode forward";
  const T batch = static_cast<T>(dy.rows());
  RowVec<T> sum_dy = dy.colwise().sum();                                  // (C)
  RowVec<T> sum_dy_xhat = dy.cwiseProduct(xhat_).colwise().sum();         // (C)
  gamma.grad.row(0) += sum_dy_xhat;
  beta.grad.row(0) += sum_dy;
  RowVec<T> scale = gamma.value.row(0).cwiseProduct(inv_std_) / batch;    // γ/(B√(σ²+ε))
  // dx = scale ⊙ (B·dy − Σdy − x̂ ⊙ Σ(dy·x̂))
  dx->array() += ((batch * dy.array()).rowwise() - sum_dy.array() -
                  xhat_.array().rowwise() * sum_dy_xhat.array())
                     .rowwise() *
                 scale.array();
}

template <typename T>
void BatchNorm<T>::CollectParams(std::vector<Param<T>*>* out) {
  out->push_back(&gamma);
  out->push_back(&beta);
}

// ----------------------------------------------------------------------- FeatureGate

template <typename T>
FeatureGate<T>::FeatureGate(const std::string& name, int dim, int rank, Rng* rng)
    : down(name + ".down", dim, rank), up(name + ".up", rank, dim) {
  GlorotUniform(rng, dim, rank, down.value);
  // up stays zero: f = 2σ(0) = 1, the identity gate.
}

template <typename T>
void FeatureGate<T>::Forward(const Mat<T>& x, Mat<T>* xg) {
  t_.noalias() = x * down.value;  // (B, D)·(D, l) → (B, l)
  Mat<T> u;
  u.noalias() = t_ * up.value;    // (B, l)·(l, D) → (B, D)
  f_ = u.unaryExpr([](T v) { return T(2) * Sigmoid(v); });
  *xg = x.cwiseProduct(f_);
}

template <typename T>
void FeatureGate<T>::Backward(const Mat<T>& x, const Mat<T>& dxg, Mat<T>* dx) {
  // df = dxg ⊙ x;  du = df ⊙ f(1 − f/2)   (d/du 2σ(u) = 2σ(1−σ) = f(1 − f/2))
  Mat<T> du = dxg.cwiseProduct(x).cwiseProduct(
      f_.unaryExpr([](T f) { return f * (T(1) - f / T(2)); }));
  up.grad.noalias() += t_.transpose() * du;           // (l, B)·(B, D)
  Mat<T> dt;
  dt.noalias() = du * up.value.transpose();           // (B, D)·(D, l) → (B, l)
  down.grad.noalias() += x.transpose() * dt;          // (D, B)·(B, l)
  dx->noalias() += dxg.cwiseProduct(f_);              // direct path
  dx->noalias() += dt * down.value.transpose();       // through the gate
}

template <typename T>
void FeatureGate<T>::CollectParams(std::vector<Param<T>*>* out) {
  out->push_back(&down);
  out->push_back(&up);
}

// ----------------------------------------------------------------------- MixtureGate

template <typename T>
MixtureGate<T>::MixtureGate(const std::string& name, int in, int n, Kind kind, bool bias, Rng* rng)
    : kind_(kind), linear_(name, in, n, bias, rng) {}

template <typename T>
void MixtureGate<T>::Forward(const Mat<T>& x, const std::vector<ExpertView>& experts, int d,
                             bool accumulate, Mat<T>* h) {
  const int n = num_experts();
  CHECK_EQ(static_cast<int>(experts.size()), n);
  linear_.Forward(x, &g_);  // z: (B, n), turned into g in place
  if (kind_ == Kind::kSoftmax) {
    // Row-wise softmax with max-subtraction.
    for (int64_t r = 0; r < g_.rows(); ++r) {
      auto row = g_.row(r);
      row.array() = (row.array() - row.maxCoeff()).exp();
      row /= row.sum();
    }
  } else {
    g_ = g_.unaryExpr([](T v) { return Sigmoid(v); });
  }
  if (!accumulate) h->setZero(x.rows(), d);
  for (int i = 0; i < n; ++i) {
    // h += g_i ⊙ e_i  (g_i broadcast along the d columns)
    h->array() += experts[i].value->middleCols(experts[i].col, d).array().colwise() *
                  g_.col(i).array();
  }
}

template <typename T>
void MixtureGate<T>::Backward(const Mat<T>& x, const std::vector<ExpertView>& experts, int d,
                              const Mat<T>& dh, Mat<T>* dx) {
  const int n = num_experts();
  Mat<T> a(x.rows(), n);  // a_i = ⟨dh, e_i⟩ per row
  for (int i = 0; i < n; ++i) {
    auto e = experts[i].value->middleCols(experts[i].col, d);
    a.col(i) = dh.cwiseProduct(e).rowwise().sum();
    experts[i].grad->middleCols(experts[i].col, d).array() += dh.array().colwise() * g_.col(i).array();
  }
  Mat<T> dz(x.rows(), n);
  if (kind_ == Kind::kSoftmax) {
    // dz_j = g_j (a_j − Σ_i g_i a_i)
    Eigen::Matrix<T, Eigen::Dynamic, 1> mean_a = g_.cwiseProduct(a).rowwise().sum();
    dz = g_.cwiseProduct(a.colwise() - mean_a);
  } else {
    dz = a.cwiseProduct(g_.cwiseProduct((T(1) - g_.array()).matrix()));
  }
  linear_.Backward(x, dz, dx);
}

template <typename T>
void MixtureGate<T>::CollectParams(std::vector<Param<T>*>* out) {
  linear_.CollectParams(out);
}

// ------------------------------------------------------------------------------- Mlp

template <typename T>
Mlp<T>::Mlp(const std::string& name, const std::vector<int>& widths, Act act, bool last_linear,
            Rng* rng)
    : act_(act), last_linear_(last_linear) {
  CHECK_GE(widths.size(), 2u);
  for (size_t l = 0; l + 1 < widths.size(); ++l)
    layers_.emplace_back(name + ".l" + std::to_string(l), widths[l], widths[l + 1], true, rng);
  z_.resize(layers_.size());
  a_.resize(layers_.size());
  dz_.resize(layers_.size());
  da_.resize(layers_.size());
}

template <typename T>
void Mlp<T>::Forward(const Mat<T>& x, Mat<T>* y) {
  const Mat<T>* in = &x;
  for (size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].Forward(*in, &z_[l]);  // (B, w_{l+1})
    const bool linear = last_linear_ && l + 1 == layers_.size();
    ActivationForward(linear ? Act::kNone : act_, T(1), z_[l], &a_[l]);
    in = &a_[l];
  }
  *y = a_.back();
}

template <typename T>
void Mlp<T>::Backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>* dx) {
  const Mat<T>* da = &dy;  // dL/d a_l
  for (size_t l = layers_.size(); l-- > 0;) {
    const bool linear = last_linear_ && l + 1 == layers_.size();
    ActivationBackward(linear ? Act::kNone : act_, T(1), z_[l], *da, &dz_[l]);
    if (l == 0) {
      layers_[l].Backward(x, dz_[l], dx);
    } else {
      da_[l - 1].setZero(a_[l - 1].rows(), a_[l - 1].cols());
      layers_[l].Backward(a_[l - 1], dz_[l], &da_[l - 1]);
      da = &da_[l - 1];
    }
  }
}

template <typename T>
void Mlp<T>::CollectParams(std::vector<Param<T>*>* out) {
  for (auto& layer : layers_) layer.CollectParams(out);
}

#define FRESHET_INSTANTIATE_FNS(T)                                                    \
  template void ActivationForward<T>(Act, T, const Mat<T>&, Mat<T>*);                 \
  template void ActivationBackward<T>(Act, T, const Mat<T>&, const Mat<T>&, Mat<T>*);            \
  template void ActivationForward<T>(Act, T, Eigen::Ref<const Mat<T>>, Eigen::Ref<Mat<T>>);       \
  template void ActivationBackward<T>(Act, T, Eigen::Ref<const Mat<T>>, Eigen::Ref<const Mat<T>>, \
                                      Eigen::Ref<Mat<T>>);
FRESHET_INSTANTIATE_FNS(float)
FRESHET_INSTANTIATE_FNS(double)
FRESHET_INSTANTIATE(Linear)
FRESHET_INSTANTIATE(BatchNorm)
FRESHET_INSTANTIATE(FeatureGate)
FRESHET_INSTANTIATE(MixtureGate)
FRESHET_INSTANTIATE(Mlp)

}  // namespace freshet::cpu
