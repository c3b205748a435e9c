// Masked multi-task loss and predictions kernels; see masked_loss.cuh.
#include "learner/cuda/masked_loss.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;  // power of two (tree reduction)

__global__ void masked_loss_forward_backward_kernel(LossTasks tasks, int batch, const float* logits,
                                                    const float* labels, const float* masks, const float* weights,
                                                    float* dlogits, float* per_task, int* observed) {
  __shared__ float red[kBlock];
  const int nt = tasks.num_tasks;
  for (int k = blockIdx.x; k < nt; k += gridDim.x) {
    float count = 0.f;  // exact in float up to 2^24 rows
    for (int b = threadIdx.x; b < batch; b += blockDim.x) count += masks[static_cast<long long>(b) * nt + k] != 0.f;
    const float n = BlockSum(count, red);
    const float inv_n = n > 0.f ? 1.f / n : 0.f;
    const float omega = tasks.loss_weight[k];
    float sum = 0.f;
    for (int b = threadIdx.x; b < batch; b += blockDim.x) {
      const long long i = static_cast<long long>(b) * nt + k;
      if (n == 0.f || masks[i] == 0.f) {
        dlogits[i] = 0.f;
        continue;
      }
      const float z = logits[i], y = labels[i], w = weights[i];
      float loss, dz;
      if (tasks.regression[k]) {
        loss = (z - y) * (z - y);
        dz = 2.f * (z - y);
      } else {
        loss = fmaxf(z, 0.f) - z * y + log1pf(expf(-fabsf(z)));
        dz = SigmoidF(z) - y;
      }
      sum += w * loss;
      dlogits[i] = omega * w * dz * inv_n;
    }
    const float total = BlockSum(sum, red);
    if (threadIdx.x == 0) {
      per_task[k] = total * inv_n;
      observed[k] = static_cast<int>(n);
    }
  }
}

__global__ void predictions_forward_kernel(LossTasks tasks, long long n, const float* logits, float* out) {
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const float z = logits[i];
    out[i] = tasks.regression[i % tasks.num_tasks] ? z : SigmoidF(z);
  }
}

}  // namespace

StatusOr<LossTasks> MakeLossTasks(const std::vector<bool>& regression, const std::vector<double>& loss_weight) {
  if (regression.size() != loss_weight.size()) return InvalidArgumentError("MakeLossTasks: list lengths differ");
  if (regression.empty() || regression.size() > static_cast<size_t>(kMaxLossTasks))
    return InvalidArgumentError("tasks: the CUDA backend supports 1.." + std::to_string(kMaxLossTasks) + " tasks, got " +
                                std::to_string(regression.size()));
  LossTasks out;
  out.num_tasks = static_cast<int>(regression.size());
  for (size_t k = 0; k < regression.size(); ++k) {
    out.regression[k] = regression[k] ? 1 : 0;
    out.loss_weight[k] = static_cast<float>(loss_weight[k]);
  }
  return out;
}

Status MaskedLossForwardBackward(const LossTasks& tasks, int batch, const float* logits, const float* labels,
                                 const float* masks, const float* weights, float* dlogits, float* per_task,
                                 int* observed, cudaStream_t stream) {
  if (tasks.num_tasks < 1 || tasks.num_tasks > kMaxLossTasks || batch < 0)
    return InvalidArgumentError("MaskedLoss: bad shape");
  masked_loss_forward_backward_kernel<<<tasks.num_tasks, kBlock, 0, stream>>>(tasks, batch, logits, labels, masks,
                                                                              weights, dlogits, per_task, observed);
  RETURN_IF_LAUNCH_ERROR("masked_loss_forward_backward_kernel");
  return Status::Ok();
}

Status PredictionsFromLogits(const LossTasks& tasks, int batch, const float* logits, float* predictions,
                             cudaStream_t stream) {
  if (tasks.num_tasks < 1 || batch < 0) return InvalidArgumentError("PredictionsFromLogits: bad shape");
  const long long n = static_cast<long long>(batch) * tasks.num_tasks;
  if (n == 0) return Status::Ok();
  predictions_forward_kernel<<<GridFor(n, 256), 256, 0, stream>>>(tasks, n, logits, predictions);
  RETURN_IF_LAUNCH_ERROR("predictions_forward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
