// Gate softmax/sigmoid + mixture kernels and their launchers; see gate_mixture.cuh.
// One block per batch row (grid-stride); the row's n ≤ 64 gate values sit in shared
// memory; block size is a power of two for the tree reductions of backward.
#include "learner/cuda/gate_mixture.cuh"

#include "learner/cuda/device_math.cuh"
#include "learner/cuda/linear.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 128;  // power of two (tree reduction)

__global__ void gate_mixture_forward_kernel(GateShape s, GateExperts e, bool accumulate, float* g, float* h) {
  __shared__ float gs[kMaxGateExperts];
  const int n = e.n;
  for (int b = blockIdx.x; b < s.batch; b += gridDim.x) {
    float* zrow = g + static_cast<long long>(b) * n;  // holds z on entry, g on exit
    if (threadIdx.x == 0) {
      if (s.softmax) {
        float mx = zrow[0];
        for (int i = 1; i < n; ++i) mx = fmaxf(mx, zrow[i]);
        float sum = 0.f;
        for (int i = 0; i < n; ++i) {
          gs[i] = expf(zrow[i] - mx);
          sum += gs[i];
        }
        for (int i = 0; i < n; ++i) gs[i] /= sum;
      } else {
        for (int i = 0; i < n; ++i) gs[i] = SigmoidF(zrow[i]);
      }
      for (int i = 0; i < n; ++i) zrow[i] = gs[i];
    }
    __syncthreads();
    float* hrow = h + static_cast<long long>(b) * s.d;
    for (int c = threadIdx.x; c < s.d; c += blockDim.x) {
      float acc = accumulate ? hrow[c] : 0.f;
      for (int i = 0; i < n; ++i) acc += gs[i] * e.value[i][static_cast<long long>(b) * e.ld[i] + c];
      hrow[c] = acc;
    }
    __syncthreads();  // gs is rewritten by the next row
  }
}

__global__ void gate_mixture_backward_kernel(GateShape s, GateExperts e, const float* g, const float* dh,
                                             float* dz) {
  __shared__ float gs[kMaxGateExperts];
  __shared__ float as[kMaxGateExperts];
  __shared__ float red[kBlock];
  const int n = e.n;
  for (int b = blockIdx.x; b < s.batch; b += gridDim.x) {
    const float* dhrow = dh + static_cast<long long>(b) * s.d;
    if (threadIdx.x < n) gs[threadIdx.x] = g[static_cast<long long>(b) * n + threadIdx.x];
    __syncthreads();
    for (int i = 0; i < n; ++i) {
      const long long off = static_cast<long long>(b) * e.ld[i];
      float partial = 0.f;
      for (int c = threadIdx.x; c < s.d; c += blockDim.x) {
        const float d = dhrow[c];
        partial += d * e.value[i][off + c];
        e.grad[i][off + c] += gs[i] * d;  // de_i += g_i ⊙ dh
      }
      const float a = BlockSum(partial, red);
      if (threadIdx.x == 0) as[i] = a;
    }
    if (threadIdx.x == 0) {
      float* dzrow = dz + static_cast<long long>(b) * n;
      if (s.softmax) {
        float mean_a = 0.f;
        for (int i = 0; i < n; ++i) mean_a += gs[i] * as[i];
        for (int j = 0; j < n; ++j) dzrow[j] = gs[j] * (as[j] - mean_a);
      } else {
        for (int j = 0; j < n; ++j) dzrow[j] = as[j] * (gs[j] * (1.f - gs[j]));
      }
    }
    __syncthreads();
  }
}

Status CheckGate(const GateShape& s, const GateExperts& e) {
  if (e.n < 1 || e.n > kMaxGateExperts)
    return InvalidArgumentError("MixtureGate: " + std::to_string(e.n) + " experts; supported 1.." +
                                std::to_string(kMaxGateExperts));
  if (s.batch < 0 || s.in <= 0 || s.d <= 0) return InvalidArgumentError("MixtureGate: bad shape");
  for (int i = 0; i < e.n; ++i)
    if (e.value[i] == nullptr || e.ld[i] < s.d)
      return InvalidArgumentError("MixtureGate: expert " + std::to_string(i) + " has no data or ld < d");
  return Status::Ok();
}

}  // namespace

Status MixtureGateForward(const DeviceContext& ctx, const GateShape& s, const float* x, const float* w,
                          const float* b, const GateExperts& experts, bool accumulate, float* g, float* h) {
  RETURN_IF_ERROR(CheckGate(s, experts));
  if (s.batch == 0) return Status::Ok();
  RETURN_IF_ERROR(LinearForward(ctx, x, s.batch, s.in, w, b, experts.n, g));  // z → g
  gate_mixture_forward_kernel<<<GridFor(s.batch, 1), kBlock, 0, ctx.compute()>>>(s, experts, accumulate, g, h);
  RETURN_IF_LAUNCH_ERROR("gate_mixture_forward_kernel");
  return Status::Ok();
}

Status MixtureGateBackward(const DeviceContext& ctx, const GateShape& s, const float* x, const float* w,
                           const GateExperts& experts, const float* g, const float* dh, float* dz, float* dw,
                           float* db, float* dx) {
  RETURN_IF_ERROR(CheckGate(s, experts));
  for (int i = 0; i < experts.n; ++i)
    if (experts.grad[i] == nullptr) return InvalidArgumentError("MixtureGateBackward: expert " + std::to_string(i) + " has no grad");
  if (s.batch == 0) return Status::Ok();
  gate_mixture_backward_kernel<<<GridFor(s.batch, 1), kBlock, 0, ctx.compute()>>>(s, experts, g, dh, dz);
  RETURN_IF_LAUNCH_ERROR("gate_mixture_backward_kernel");
  return LinearBackward(ctx, x, dz, s.batch, s.in, w, experts.n, dw, db, dx);
}

}  // namespace freshet::learner::cuda
