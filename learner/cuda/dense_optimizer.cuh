// Dense Adam and Adagrad steps on the device: the counterpart of
// cpu::DenseOptimizer::Step (formulas in learner/cpu/optimizer.h). One launch per
// parameter tensor; m, v (Adam) or the accumulator (Adagrad) have its shape.
//
//   AdamStep step = AdamStep::At(config, t);   // bias corrections as the CPU computes them
//   RETURN_IF_ERROR(AdamUpdate(step, w, g, m, v, n, stream));
//
// Thread-safety: stateless launchers.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "common/status.h"

namespace freshet::learner::cuda {

struct AdamStep {
  float lr = 0, beta1 = 0, beta2 = 0, eps = 0;
  float c1 = 1, c2 = 1;  // 1 − β1^t, 1 − β2^t, in float like the CPU
  static AdamStep At(float lr, float beta1, float beta2, float eps, int64_t t) {
    AdamStep s{lr, beta1, beta2, eps, 1, 1};
    s.c1 = 1.f - std::pow(beta1, static_cast<float>(t));
    s.c2 = 1.f - std::pow(beta2, static_cast<float>(t));
    return s;
  }
};

// m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  w ← w − lr·(m/c1)/(√(v/c2) + ε).
[[nodiscard]] Status AdamUpdate(const AdamStep& s, float* w, const float* g, float* m, float* v, long long n,
                                cudaStream_t stream);
// a ← a + g²;  w ← w − lr·g/(√a + ε).
[[nodiscard]] Status DenseAdagradUpdate(float lr, float eps, float* w, const float* g, float* a, long long n,
                                        cudaStream_t stream);

}  // namespace freshet::learner::cuda
