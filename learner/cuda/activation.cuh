// Element-wise activations of the CUDA backend (ReLU, Swish z·σ(βz), identity), the
// counterpart of cpu::ActivationForward/Backward (learner/cpu/layers.h). DeviceAct's
// values match cpu::Act so host code converts with a cast; the CUDA files stay free
// of Eigen headers.
//
//   RETURN_IF_ERROR(ActivationForward(DeviceAct::kSwish, 1.f, z, a, B * W, stream));
//
// Thread-safety: stateless launchers; ordering is the stream's.
#pragma once

#include <cuda_runtime.h>

#include "common/status.h"

namespace freshet::learner::cuda {

// Same order and values as cpu::Act { kRelu, kSwish, kNone }.
enum class DeviceAct : int { kRelu = 0, kSwish = 1, kNone = 2 };

// a[i] = act(z[i]) for i < n. a may alias z.
[[nodiscard]] Status ActivationForward(DeviceAct act, float beta, const float* z, float* a, long long n,
                                       cudaStream_t stream);
// dz[i] = da[i] · act'(z[i]). dz may alias da.
[[nodiscard]] Status ActivationBackward(DeviceAct act, float beta, const float* z, const float* da, float* dz,
                                        long long n, cudaStream_t stream);

}  // namespace freshet::learner::cuda
