// Pooled embedding bag forward (gather) and row-gradient scatter-add; see
// embedding_bag.cuh. One block per bag (grid-stride over bags), threads over the
// slot's dim.
#include "learner/cuda/embedding_bag.cuh"

#include "learner/cuda/cuda_check.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 64;

__global__ void embedding_bag_forward_kernel(BagShape s, const float* arena, const int32_t* offsets,
                                             const int32_t* occurrence, const int32_t* rows, float* x) {
  for (int b = blockIdx.x; b < s.batch; b += gridDim.x) {
    const int begin = offsets[b], end = offsets[b + 1];
    const float scale = (s.mean && end > begin) ? 1.f / static_cast<float>(end - begin) : 1.f;
    float* out = x + static_cast<long long>(b) * s.ld + s.column;
    for (int c = threadIdx.x; c < s.dim; c += blockDim.x) {
      float acc = 0.f;
      for (int j = begin; j < end; ++j) {
        const int u = occurrence[j];
        if (u >= 0) acc += arena[static_cast<long long>(rows[u]) * s.stride + c];
      }
      out[c] = s.mean ? acc * scale : acc;
    }
  }
}

__global__ void embedding_bag_backward_kernel(BagShape s, const float* dx, const int32_t* offsets,
                                              const int32_t* occurrence, float* grad) {
  for (int b = blockIdx.x; b < s.batch; b += gridDim.x) {
    const int begin = offsets[b], end = offsets[b + 1];
    const float scale = (s.mean && end > begin) ? 1.f / static_cast<float>(end - begin) : 1.f;
    const float* in = dx + static_cast<long long>(b) * s.ld + s.column;
    for (int c = threadIdx.x; c < s.dim; c += blockDim.x) {
      const float g = scale * in[c];
      for (int j = begin; j < end; ++j) {
        const int u = occurrence[j];
        if (u >= 0) atomicAdd(&grad[static_cast<long long>(u) * s.dim + c], g);
      }
    }
  }
}

Status CheckShape(const BagShape& s) {
  if (s.batch < 0 || s.dim <= 0 || s.stride < s.dim || s.column < 0 || s.column + s.dim > s.ld)
    return InvalidArgumentError("EmbeddingBag: bad shape (batch " + std::to_string(s.batch) + ", dim " +
                                std::to_string(s.dim) + ", stride " + std::to_string(s.stride) + ", column " +
                                std::to_string(s.column) + ", ld " + std::to_string(s.ld) + ")");
  return Status::Ok();
}

}  // namespace

Status EmbeddingBagForward(const BagShape& shape, const float* arena, const int32_t* offsets,
                           const int32_t* occurrence, const int32_t* rows, float* x, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape(shape));
  if (shape.batch == 0) return Status::Ok();
  embedding_bag_forward_kernel<<<GridFor(shape.batch, 1), kBlock, 0, stream>>>(shape, arena, offsets, occurrence,
                                                                             rows, x);
  RETURN_IF_LAUNCH_ERROR("embedding_bag_forward_kernel");
  return Status::Ok();
}

Status EmbeddingBagBackward(const BagShape& shape, const float* dx, const int32_t* offsets,
                            const int32_t* occurrence, float* grad, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckShape(shape));
  if (shape.batch == 0) return Status::Ok();
  embedding_bag_backward_kernel<<<GridFor(shape.batch, 1), kBlock, 0, stream>>>(shape, dx, offsets, occurrence,
                                                                              grad);
  RETURN_IF_LAUNCH_ERROR("embedding_bag_backward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
