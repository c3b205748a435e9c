// BatchNorm + activation kernels and launchers; see batchnorm_act.cuh.
#include "learner/cuda/batchnorm_act.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kChannels = 32;  // block x: channels (one warp)
constexpr int kLanes = 8;      // block y: row lanes

// Sums v over the kLanes row lanes of channel column threadIdx.x; every thread gets it.
__device__ float LaneSum(float v, float (*buf)[kChannels]) {
  buf[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += buf[l][threadIdx.x];
  __syncthreads();  // buf is reused by the next call
  return s;
}

__global__ void batchnorm_act_forward_kernel(BatchNormShape s, bool training, const float* x, BatchNormTensors t,
                                             float* zn, float* a) {
  __shared__ float buf[kLanes][kChannels];
  for (int c0 = blockIdx.x * kChannels; c0 < s.channels; c0 += gridDim.x * kChannels) {
    const int c = c0 + threadIdx.x;
    const bool live = c < s.channels;
    float mean, inv_std;
    if (training) {
      float sum = 0.f;
      if (live)
        for (int r = threadIdx.y; r < s.batch; r += kLanes) sum += x[static_cast<long long>(r) * s.channels + c];
      mean = LaneSum(sum, buf) / static_cast<float>(s.batch);
      float sq = 0.f;
      if (live)
        for (int r = threadIdx.y; r < s.batch; r += kLanes) {
          const float dv = x[static_cast<long long>(r) * s.channels + c] - mean;
          sq += dv * dv;
        }
      const float var = LaneSum(sq, buf) / static_cast<float>(s.batch);  // biased
      inv_std = 1.f / sqrtf(var + s.eps);
      if (live && threadIdx.y == 0) {
        t.running_mean[c] = s.momentum * t.running_mean[c] + (1.f - s.momentum) * mean;
        t.running_var[c] = s.momentum * t.running_var[c] + (1.f - s.momentum) * var;
        t.inv_std[c] = inv_std;
      }
    } else {
      mean = live ? t.running_mean[c] : 0.f;
      inv_std = live ? 1.f / sqrtf(t.running_var[c] + s.eps) : 0.f;
    }
    if (!live) continue;  // no barrier below this point in the iteration
    const float gamma = t.gamma[c], beta = t.beta[c];
    for (int r = threadIdx.y; r < s.batch; r += kLanes) {
      const long long i = static_cast<long long>(r) * s.channels + c;
      const float xh = (x[i] - mean) * inv_std;
      if (training) t.xhat[i] = xh;
      const float v = gamma * xh + beta;
      zn[i] = v;
      a[i] = ActF(s.act, s.swish_beta, v);
    }
  }
}

__global__ void batchnorm_act_backward_kernel(BatchNormShape s, BatchNormTensors t, const float* zn, const float* da,
                                              float* dgamma, float* dbeta, float* dx) {
  __shared__ float buf[kLanes][kChannels];
  for (int c0 = blockIdx.x * kChannels; c0 < s.channels; c0 += gridDim.x * kChannels) {
    const int c = c0 + threadIdx.x;
    const bool live = c < s.channels;
    float sum_dy = 0.f, sum_dy_xhat = 0.f;
    if (live)
      for (int r = threadIdx.y; r < s.batch; r += kLanes) {
        const long long i = static_cast<long long>(r) * s.channels + c;
        const float dy = ActBackwardF(s.act, s.swish_beta, zn[i], da[i]);
        sum_dy += dy;
        sum_dy_xhat += dy * t.xhat[i];
      }
    sum_dy = LaneSum(sum_dy, buf);
    sum_dy_xhat = LaneSum(sum_dy_xhat, buf);
    if (!live) continue;
    if (threadIdx.y == 0) {
      dgamma[c] += sum_dy_xhat;
      dbeta[c] += sum_dy;
    }
    const float batch = static_cast<float>(s.batch);
    const float scale = t.gamma[c] * t.inv_std[c] / batch;
    for (int r = threadIdx.y; r < s.batch; r += kLanes) {
      const long long i = static_cast<long long>(r) * s.channels + c;
      const float dy = ActBackwardF(s.act, s.swish_beta, zn[i], da[i]);
      dx[i] += scale * (batch * dy - sum_dy - t.xhat[i] * sum_dy_xhat);
    }
  }
}

Status CheckShape(const BatchNormShape& s, const BatchNormTensors& t, bool training) {
  if (s.channels <= 0 || s.batch < 0) return InvalidArgumentError("BatchNorm: bad shape");
  if (training && s.batch < 2) return InvalidArgumentError("BatchNorm in training mode needs at least 2 rows");
  if (t.gamma == nullptr || t.beta == nullptr || t.running_mean == nullptr || t.running_var == nullptr)
    return InvalidArgumentError("BatchNorm: gamma/beta/running stats missing");
  if (training && (t.xhat == nullptr || t.inv_std == nullptr))
    return InvalidArgumentError("BatchNorm: training needs xhat and inv_std buffers");
  return Status::Ok();
}

int Grid(int channels) { return GridFor(channels, kChannels); }

}  // namespace

Status BatchNormActForward(const BatchNormShape& s, bool training, const float* x, const BatchNormTensors& t,
                           float* zn, float* a, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape(s, t, training));
  if (s.batch == 0) return Status::Ok();
  batchnorm_act_forward_kernel<<<Grid(s.channels), dim3(kChannels, kLanes), 0, stream>>>(s, training, x, t, zn, a);
  RETURN_IF_LAUNCH_ERROR("batchnorm_act_forward_kernel");
  return Status::Ok();
}

Status BatchNormActBackward(const BatchNormShape& s, const BatchNormTensors& t, const float* zn, const float* da,
                            float* dgamma, float* dbeta, float* dx, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape(s, t, /*training=*/true));
  batchnorm_act_backward_kernel<<<Grid(s.channels), dim3(kChannels, kLanes), 0, stream>>>(s, t, zn, da, dgamma,
                                                                                          dbeta, dx);
  RETURN_IF_LAUNCH_ERROR("batchnorm_act_backward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
