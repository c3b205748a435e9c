// Feature gate kernels (the element-wise part) and launchers; see feature_gate.cuh.
#include "learner/cuda/feature_gate.cuh"

#include "learner/cuda/device_math.cuh"
#include "learner/cuda/gemm.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

// f holds u on entry and 2σ(u) on exit.
__global__ void feature_gate_forward_kernel(const float* x, float* f, float* xg, long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const float gate = 2.f * SigmoidF(f[i]);
    f[i] = gate;
    xg[i] = x[i] * gate;
  }
}

__global__ void feature_gate_backward_kernel(const float* x, const float* f, const float* dxg, float* du, float* dx,
                                             long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const float fi = f[i];
    du[i] = dxg[i] * x[i] * (fi * (1.f - fi / 2.f));  // d/du 2σ(u) = f(1 − f/2)
    dx[i] += dxg[i] * fi;                              // direct path
  }
}

Status CheckShape(const FeatureGateShape& s) {
  if (s.batch < 0 || s.dim <= 0 || s.rank <= 0)
    return InvalidArgumentError("FeatureGate: bad shape (batch " + std::to_string(s.batch) + ", dim " +
                                std::to_string(s.dim) + ", rank " + std::to_string(s.rank) + ")");
  return Status::Ok();
}

}  // namespace

Status FeatureGateForward(const DeviceContext& ctx, const FeatureGateShape& s, const float* x, const float* down,
                          const float* up, float* t, float* f, float* xg) {
  RETURN_IF_ERROR(CheckShape(s));
  if (s.batch == 0) return Status::Ok();
  cublasHandle_t h = ctx.cublas();
  RETURN_IF_ERROR(Gemm(h, false, false, s.batch, s.rank, s.dim, 1.f, x, s.dim, down, s.rank, 0.f, t, s.rank));
  RETURN_IF_ERROR(Gemm(h, false, false, s.batch, s.dim, s.rank, 1.f, t, s.rank, up, s.dim, 0.f, f, s.dim));
  const long long n = static_cast<long long>(s.batch) * s.dim;
  feature_gate_forward_kernel<<<GridFor(n, kBlock), kBlock, 0, ctx.compute()>>>(x, f, xg, n);
  RETURN_IF_LAUNCH_ERROR("feature_gate_forward_kernel");
  return Status::Ok();
}

Status FeatureGateBackward(const DeviceContext& ctx, const FeatureGateShape& s, const float* x, const float* down,
                           const float* up, const float* t, const float* f, const float* dxg, float* du, float* dt,
                           float* ddown, float* dup, float* dx) {
  RETURN_IF_ERROR(CheckShape(s));
  if (s.batch == 0) return Status::Ok();
  const long long n = static_cast<long long>(s.batch) * s.dim;
  feature_gate_backward_kernel<<<GridFor(n, kBlock), kBlock, 0, ctx.compute()>>>(x, f, dxg, du, dx, n);
  RETURN_IF_LAUNCH_ERROR("feature_gate_backward_kernel");
  cublasHandle_t h = ctx.cublas();
  // dup (l, D) += tᵀ (l, B) · du (B, D)
  RETURN_IF_ERROR(Gemm(h, true, false, s.rank, s.dim, s.batch, 1.f, t, s.rank, du, s.dim, 1.f, dup, s.dim));
  // dt (B, l) = du (B, D) · upᵀ (D, l)
  RETURN_IF_ERROR(Gemm(h, false, true, s.batch, s.rank, s.dim, 1.f, du, s.dim, up, s.dim, 0.f, dt, s.rank));
  // ddown (D, l) += xᵀ (D, B) · dt (B, l)
  RETURN_IF_ERROR(Gemm(h, true, false, s.dim, s.rank, s.batch, 1.f, x, s.dim, dt, s.rank, 1.f, ddown, s.rank));
  // dx (B, D) += dt (B, l) · downᵀ (l, D)
  return Gemm(h, false, true, s.batch, s.dim, s.rank, 1.f, dt, s.rank, down, s.rank, 1.f, dx, s.dim);
}

}  // namespace freshet::learner::cuda
