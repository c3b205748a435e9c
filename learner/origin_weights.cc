// Origin-dependent loss weights (see origin_weights.h).
#include "learner/origin_weights.h"

#include <algorithm>

namespace freshet::learner {

bool NeedsOriginWeights(const std::vector<SampleOrigin>& origins) {
  for (SampleOrigin o : origins)
    if (o == ORIGIN_IMMEDIATE_NEGATIVE || o == ORIGIN_IMMEDIATE_POSITIVE || o == ORIGIN_LATE_CORRECTION) return true;
  return false;
}

template <typename T>
void ApplyOriginWeights(const std::vector<cpu::TaskSpec>& tasks, const std::vector<SampleOrigin>& origins,
                        const cpu::Mat<T>& predictions, const cpu::Mat<T>& labels, const cpu::Mat<T>& masks,
                        T correction_cap, cpu::Mat<T>* weights) {
  const int rows = static_cast<int>(std::min<Eigen::Index>(origins.size(), weights->rows()));
  for (int b = 0; b < rows; ++b) {
    const SampleOrigin o = origins[b];
    const bool immediate = o == ORIGIN_IMMEDIATE_NEGATIVE || o == ORIGIN_IMMEDIATE_POSITIVE;
    if (!immediate && o != ORIGIN_LATE_CORRECTION) continue;
    for (int t = 0; t < static_cast<int>(tasks.size()); ++t) {
      if (tasks[t].kind != cpu::TaskKind::kBinary || masks(b, t) == T(0)) continue;
      // Clamp p̂ away from 0 and 1 so the weights stay finite whatever the model says.
      const T p = std::clamp(predictions(b, t), T(1e-6), T(1 - 1e-6));
      const bool positive = labels(b, t) > T(0.5);
      T factor = 1;
      if (immediate) {
        factor = positive ? T(1) + p : (T(1) - p) * (T(1) + p);
      } else if (positive) {
        factor = std::min(T(1) / (T(1) - p), correction_cap);
      }
      (*weights)(b, t) *= factor;
    }
  }
}

template void ApplyOriginWeights<float>(const std::vector<cpu::TaskSpec>&, const std::vector<SampleOrigin>&,
                                        const cpu::Mat<float>&, const cpu::Mat<float>&, const cpu::Mat<float>&, float,
                                        cpu::Mat<float>*);
template void ApplyOriginWeights<double>(const std::vector<cpu::TaskSpec>&, const std::vector<SampleOrigin>&,
                                         const cpu::Mat<double>&, const cpu::Mat<double>&, const cpu::Mat<double>&,
                                         double, cpu::Mat<double>*);

}  // namespace freshet::learner
