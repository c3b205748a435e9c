// Origin-dependent loss weights: how the learner honours ingest's label policies
// (ingest/partition_join.h, DESIGN.md §5). Ingest writes a prediction-independent
// factor into Sample.weight (1 today) and the origin; the factors that depend on the
// model's own prediction p̂ (this step's training-mode forward, used as a constant:
// stop-gradient) are applied here, per observed (mask = 1) binary entry:
//
//   origin                     label 1                label 0
//   WINDOW_CLOSED/unspecified  w                      w
//   IMMEDIATE_NEGATIVE         w·(1 + p̂)              w·(1 − p̂)(1 + p̂)   fake-negative
//   IMMEDIATE_POSITIVE         w·(1 + p̂)              w·(1 − p̂)(1 + p̂)   weighting, Ktena
//                                                                          et al. 2019
//   LATE_CORRECTION            w·min(1/(1 − p̂), cap)  w
//
// Why LATE_CORRECTION gets 1/(1 − p̂): under wait+correct the same impression was
// already trained as a (fake) negative of task t. "Add the positive, take back the
// negative" has gradient (p̂ − 1) − p̂ = −1 in the logit; a positive of weight
// 1/(1 − p̂) has exactly that gradient at the current point, but a bounded loss
// (subtracting a BCE term outright is unbounded below). The cap keeps one late
// correction from dominating a step when p̂ → 1. Its label-0 entries are tasks whose
// sample space the positive opens (fake negatives until their own correction): w.
// Regression entries always keep w.
//
// Thread-safety: pure function.
#pragma once

#include <vector>

#include "learner/cpu/loss.h"
#include "learner/cpu/tensor.h"
#include "schemas/sample.pb.h"

namespace freshet::learner {

// predictions, labels, masks, weights: (B, T); origins: B. Rewrites *weights.
template <typename T>
void ApplyOriginWeights(const std::vector<cpu::TaskSpec>& tasks, const std::vector<SampleOrigin>& origins,
                        const cpu::Mat<T>& predictions, const cpu::Mat<T>& labels, const cpu::Mat<T>& masks,
                        T correction_cap, cpu::Mat<T>* weights);

// True when some origin needs ApplyOriginWeights (everything else keeps Sample.weight).
bool NeedsOriginWeights(const std::vector<SampleOrigin>& origins);

}  // namespace freshet::learner
