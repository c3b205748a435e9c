// Masked per-task BCE / MSE; see loss.h for the formulas.
#include "learner/cpu/loss.h"

#include <cmath>

#include "common/check.h"

namespace freshet::cpu {

template <typename T>
LossOutput<T> MaskedMultiTaskLoss(const std::vector<TaskSpec>& tasks, const Mat<T>& logits,
                                  const Mat<T>& labels, const Mat<T>& masks, const Mat<T>& weights,
                                  Mat<T>* dlogits) {
  const int64_t batch = logits.rows();
  const int num_tasks = static_cast<int>(tasks.size());
  CHECK_EQ(logits.cols(), num_tasks);
  LossOutput<T> out;
  out.per_task.assign(num_tasks, T(0));
  out.observed.assign(num_tasks, 0);
  dlogits->setZero(batch, num_tasks);
  for (int k = 0; k < num_tasks; ++k) {
    int observed = 0;
    for (int64_t b = 0; b < batch; ++b) observed += masks(b, k) != T(0);
    out.observed[k] = observed;
    if (observed == 0) continue;  // L_k := 0, no gradient
    const T inv_n = T(1) / T(observed);
    const T omega = T(tasks[k].loss_weight);
    T sum = 0;
    for (int64_t b = 0; b < batch; ++b) {
      if (masks(b, k) == T(0)) continue;
      const T z = logits(b, k), y = labels(b, k), w = weights(b, k);
      T loss, dz;
      if (tasks[k].kind == TaskKind::kBinary) {
        // Stable BCE from logits; dℓ/dz = σ(z) − y.
        loss = std::max(z, T(0)) - z * y + std::log1p(std::exp(-std::abs(z)));
        dz = Sigmoid(z) - y;
      } else {
        loss = (z - y) * (z - y);
        dz = T(2) * (z - y);
      }
      sum += w * loss;
      (*dlogits)(b, k) = omega * w * dz * inv_n;
    }
    out.per_task[k] = sum * inv_n;
    out.total += omega * out.per_task[k];
  }
  return out;
}

template <typename T>
void PredictionsFromLogits(const std::vector<TaskSpec>& tasks, const Mat<T>& logits, Mat<T>* out) {
  *out = logits;
  for (size_t k = 0; k < tasks.size(); ++k)
    if (tasks[k].kind == TaskKind::kBinary)
      out->col(k) = logits.col(k).unaryExpr([](T z) { return Sigmoid(z); });
}

#define FRESHET_INSTANTIATE_LOSS(T)                                                          \
  template LossOutput<T> MaskedMultiTaskLoss<T>(const std::vector<TaskSpec>&, const Mat<T>&, \
                                                const Mat<T>&, const Mat<T>&, const Mat<T>&, \
                                                Mat<T>*);                                    \
  template void PredictionsFromLogits<T>(const std::vector<TaskSpec>&, const Mat<T>&, Mat<T>*);
FRESHET_INSTANTIATE_LOSS(float)
FRESHET_INSTANTIATE_LOSS(double)

}  // namespace freshet::cpu
