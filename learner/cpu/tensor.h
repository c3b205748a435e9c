// Tensors and parameters of the CPU reference backend.
//
// Every activation is a row-major Eigen matrix with one row per sample (B × width),
// so a batch maps onto GEMMs directly. Code is templated on the scalar T: float for
// training and serving, double for the finite-difference gradient checks. The .cc
// files instantiate float and double explicitly (see FRESHET_INSTANTIATE).
//
// Thread-safety: plain values; a Param is owned by one model and used by one thread.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include <Eigen/Core>

namespace freshet::cpu {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// A trainable dense tensor and its gradient (same shape). Gradients accumulate
// (+=) across Backward calls until the trainer zeroes them.
template <typename T>
struct Param {
  std::string name;  // unique within a model, e.g. "l1.g0.w0"; used by save/restore
  Mat<T> value;
  Mat<T> grad;

  Param() = default;
  Param(std::string n, int rows, int cols)
      : name(std::move(n)), value(Mat<T>::Zero(rows, cols)), grad(Mat<T>::Zero(rows, cols)) {}
  void ZeroGrad() { grad.setZero(); }
};

// SplitMix64: a tiny deterministic generator, identical on every platform, so a
// seed gives the same initial model everywhere (std distributions do not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  // Standard normal (Box–Muller; one draw per call, simple over fast).
  double Normal() {
    double u1 = Uniform();
    double u2 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

// Fills `block` with Glorot-uniform values for a layer of the given fan-in/out.
template <typename Block>
void GlorotUniform(Rng* rng, int fan_in, int fan_out, Block&& block) {
  const double limit = std::sqrt(6.0 / (fan_in + fan_out));
  for (int r = 0; r < block.rows(); ++r)
    for (int c = 0; c < block.cols(); ++c)
      block(r, c) = static_cast<typename std::decay_t<Block>::Scalar>((2.0 * rng->Uniform() - 1.0) * limit);
}

template <typename T>
inline T Sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace freshet::cpu

#define FRESHET_INSTANTIATE(Template) \
  template class Template<float>;     \
  template class Template<double>;
