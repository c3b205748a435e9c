// Expert and gate diagnostics (models.md §3.7, DESIGN.md §6): what HoME used to
// detect expert collapse, degradation and underfitting. Computed from the LAST
// forward pass of a model (run it on a representative batch first).
//
//   per expert   zero_share   share of units with pre-activation ≤ 0 (the zeros of a
//                             ReLU; under Swish the units left near zero)
//                output mean/std over (B, d);  BN γ and β means when the expert has BN
//   per gate     weight mean/std per expert over the batch (PLE Fig. 8), mean entropy
//                −Σ g log g (softmax gates; 0 for σ self gates)
//   per expert   task occupancy: share of the expert's total task-gate mass coming
//   with ≥2 task from each task (degradation when one task holds > ~80 %)
//   gates
//
// ExportDiagnostics writes them as gauges, e.g.
//   freshet_learner_expert_zero_share{expert="l1.shared.0"}
//   freshet_learner_gate_weight_mean{gate="l1.gate.click",expert="l1.shared.0"}
//   freshet_learner_expert_task_occupancy{expert="l1.shared.0",task="click"}
//
// Thread-safety: reads the model; run on the thread that owns it.
#pragma once

#include <string>
#include <vector>

#include "common/metrics.h"
#include "learner/cpu/model.h"

namespace freshet::cpu {

struct ExpertDiagnostics {
  std::string expert;
  double zero_share = 0;
  double output_mean = 0;
  double output_std = 0;
  bool has_norm = false;
  double bn_gamma_mean = 0;
  double bn_beta_mean = 0;
};

struct GateDiagnostics {
  std::string gate;
  int task = -1;                      // -1: shared / meta-category gate
  bool self_gate = false;
  std::vector<std::string> experts;   // the experts it mixes, in gate order
  std::vector<double> weight_mean;    // per expert
  std::vector<double> weight_std;     // per expert
  double entropy = 0;                 // mean over the batch; 0 for self gates
};

struct OccupancyDiagnostics {
  std::string expert;
  std::vector<double> task_share;     // per task (model task order), sums to 1
};

struct ModelDiagnostics {
  std::vector<ExpertDiagnostics> experts;
  std::vector<GateDiagnostics> gates;
  std::vector<OccupancyDiagnostics> occupancy;  // experts seen by ≥ 2 task gates
};

// REQUIRES: model has run a Forward.
template <typename T>
ModelDiagnostics ComputeDiagnostics(const Model<T>& model);

void ExportDiagnostics(const ModelDiagnostics& diagnostics, const std::vector<TaskSpec>& tasks,
                       MetricsRegistry* registry);

}  // namespace freshet::cpu
