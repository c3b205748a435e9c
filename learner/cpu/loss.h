// Masked multi-task loss (PLE eq. 9, docs/models.md §0):
//
//   ℓ_bk  = BCE-with-logits(z_bk, y_bk)   binary:      max(z,0) − z·y + log(1 + e^−|z|)
//         = (z_bk − y_bk)²                regression:  prediction is z itself
//   L_k   = Σ_b δ_bk w_bk ℓ_bk / Σ_b δ_bk       δ = mask, w = per-sample importance weight
//         = 0, with zero gradient, when Σ_b δ_bk = 0 (no observed label in the batch)
//   L     = Σ_k ω_k L_k                          ω_k = TaskConfig.loss_weight
//
// The normaliser is the COUNT of observed samples (Σδ), not Σδw, so importance
// weights (fake-negative correction, label policies) change a sample's share of its
// task's loss rather than being renormalised away.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "learner/cpu/tensor.h"

namespace freshet::cpu {

enum class TaskKind { kBinary, kRegression };

struct TaskSpec {
  std::string name;
  TaskKind kind = TaskKind::kBinary;
  double loss_weight = 1.0;
  bool watch_group = false;  // HoME meta-task group: true = watch, false = interaction
};

template <typename T>
struct LossOutput {
  T total = 0;                  // L
  std::vector<T> per_task;      // L_k (unweighted by ω_k)
  std::vector<int> observed;    // Σ_b δ_bk
};

// logits, labels, masks, weights: (B, T). Writes dlogits = dL/dz (B, T).
template <typename T>
LossOutput<T> MaskedMultiTaskLoss(const std::vector<TaskSpec>& tasks, const Mat<T>& logits,
                                  const Mat<T>& labels, const Mat<T>& masks, const Mat<T>& weights,
                                  Mat<T>* dlogits);

// Per-task predictions from logits: σ(z) for binary tasks, z for regression. (B, T).
template <typename T>
void PredictionsFromLogits(const std::vector<TaskSpec>& tasks, const Mat<T>& logits, Mat<T>* out);

}  // namespace freshet::cpu
