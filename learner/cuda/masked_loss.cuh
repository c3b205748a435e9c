// Masked per-task loss on the device, forward and backward in one kernel: the
// counterpart of cpu::MaskedMultiTaskLoss (learner/cpu/loss.h, PLE eq. 9).
//
//   ℓ_bk = BCE-with-logits(z, y) = max(z,0) − z·y + log(1 + e^−|z|)   (binary)
//        = (z − y)²                                                (regression)
//   L_k  = Σ_b δ_bk w_bk ℓ_bk / Σ_b δ_bk   (0, no gradient, when Σδ = 0)
//   dz_bk = ω_k δ_bk w_bk ℓ'_bk / Σ_b δ_bk     ℓ' = σ(z) − y | 2(z − y)
//
// One block per task; the count and the weighted sum are block tree reductions, so
// L_k differs from the CPU's sequential sum by float rounding only. The total
// L = Σ_k ω_k L_k is formed on the host from per_task (T values).
//
// Thread-safety: stateless launchers.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "common/status.h"

namespace freshet::learner::cuda {

constexpr int kMaxLossTasks = 64;

struct LossTasks {
  int num_tasks = 0;
  int regression[kMaxLossTasks] = {};     // 1: MSE on z, 0: BCE with logits
  float loss_weight[kMaxLossTasks] = {};  // ω_k
};

// regression[k]: task k is a regression (else binary); loss_weight[k] = ω_k (from
// cpu::TaskSpec). InvalidArgument for 0 or more than kMaxLossTasks tasks.
[[nodiscard]] StatusOr<LossTasks> MakeLossTasks(const std::vector<bool>& regression,
                                                const std::vector<double>& loss_weight);

// logits, labels, masks, weights, dlogits: (B, T). per_task (T) = L_k, observed (T) = Σδ.
[[nodiscard]] Status MaskedLossForwardBackward(const LossTasks& tasks, int batch, const float* logits,
                                               const float* labels, const float* masks, const float* weights,
                                               float* dlogits, float* per_task, int* observed, cudaStream_t stream);
// predictions (B, T) = σ(z) for binary tasks, z for regression (serving's output).
[[nodiscard]] Status PredictionsFromLogits(const LossTasks& tasks, int batch, const float* logits,
                                           float* predictions, cudaStream_t stream);

}  // namespace freshet::learner::cuda
