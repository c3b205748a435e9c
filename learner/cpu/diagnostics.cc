// Expert/gate diagnostics from the last forward pass.
#include "learner/cpu/diagnostics.h"

#include <cmath>
#include <map>

namespace freshet::cpu {

template <typename T>
ModelDiagnostics ComputeDiagnostics(const Model<T>& model) {
  ModelDiagnostics out;
  const auto& experts = model.expert_ops();
  for (const ExpertOp<T>* op : experts) {
    const ExpertGroup<T>& g = op->group();
    const int d = g.spec().output_dim;
    const BatchNorm<T>* bn = g.output_norm();
    for (int e = 0; e < g.spec().num_experts; ++e) {
      ExpertDiagnostics x;
      x.expert = op->expert_names()[e];
      auto pre = g.pre_activation().middleCols(e * d, d);
      auto y = g.output().middleCols(e * d, d);
      const double count = static_cast<double>(y.size());
      x.zero_share = (pre.array() <= T(0)).count() / count;
      x.output_mean = static_cast<double>(y.sum()) / count;
      x.output_std = std::sqrt(std::max(0.0, static_cast<double>(y.array().square().sum()) / count -
                                                 x.output_mean * x.output_mean));
      if (bn != nullptr) {
        x.has_norm = true;
        x.bn_gamma_mean = static_cast<double>(bn->gamma.value.row(0).segment(e * d, d).mean());
        x.bn_beta_mean = static_cast<double>(bn->beta.value.row(0).segment(e * d, d).mean());
      }
      out.experts.push_back(x);
    }
  }
  // Occupancy accumulators: (op, index) → per-task gate mass, and how many task gates.
  std::map<std::pair<int, int>, std::vector<double>> mass;
  for (const GateOp<T>* op : model.gate_ops()) {
    const Mat<T>& w = op->gate().weights();  // (B, n)
    GateDiagnostics g;
    g.gate = op->name();
    g.task = op->task();
    g.self_gate = op->is_self_gate();
    const double rows = static_cast<double>(std::max<int64_t>(1, w.rows()));
    for (size_t i = 0; i < op->experts().size(); ++i) {
      const ExpertRef& ref = op->experts()[i];
      g.experts.push_back(experts[ref.op]->expert_names()[ref.index]);
      const double mean = static_cast<double>(w.col(i).sum()) / rows;
      const double sq = static_cast<double>(w.col(i).squaredNorm()) / rows;
      g.weight_mean.push_back(mean);
      g.weight_std.push_back(std::sqrt(std::max(0.0, sq - mean * mean)));
      if (op->task() >= 0 && !op->is_self_gate()) {
        auto& v = mass[{ref.op, ref.index}];
        v.resize(model.num_tasks(), 0.0);
        v[op->task()] += static_cast<double>(w.col(i).sum());
      }
    }
    if (!op->is_self_gate()) {
      double h = 0;
      for (int64_t r = 0; r < w.rows(); ++r)
        for (int64_t c = 0; c < w.cols(); ++c) {
          const double p = static_cast<double>(w(r, c));
          if (p > 0) h -= p * std::log(p);
        }
      g.entropy = h / rows;
    }
    out.gates.push_back(std::move(g));
  }
  for (const auto& [key, v] : mass) {
    int tasks_seen = 0;
    double total = 0;
    for (double m : v) total += m, tasks_seen += m > 0;
    if (tasks_seen < 2 || total <= 0) continue;
    OccupancyDiagnostics o;
    o.expert = experts[key.first]->expert_names()[key.second];
    for (double m : v) o.task_share.push_back(m / total);
    out.occupancy.push_back(std::move(o));
  }
  return out;
}

void ExportDiagnostics(const ModelDiagnostics& d, const std::vector<TaskSpec>& tasks,
                       MetricsRegistry* registry) {
  for (const ExpertDiagnostics& e : d.experts) {
    const Labels l = {{"expert", e.expert}};
    registry->GetGauge("freshet_learner_expert_zero_share", "Share of expert units with pre-activation <= 0", l)->Set(e.zero_share);
    registry->GetGauge("freshet_learner_expert_output_mean", "Mean of expert outputs", l)->Set(e.output_mean);
    registry->GetGauge("freshet_learner_expert_output_std", "Std of expert outputs", l)->Set(e.output_std);
    if (e.has_norm) {
      registry->GetGauge("freshet_learner_expert_bn_gamma_mean", "Mean BN gamma of the expert", l)->Set(e.bn_gamma_mean);
      registry->GetGauge("freshet_learner_expert_bn_beta_mean", "Mean BN beta of the expert", l)->Set(e.bn_beta_mean);
    }
  }
  for (const GateDiagnostics& g : d.gates) {
    for (size_t i = 0; i < g.experts.size(); ++i) {
      const Labels l = {{"gate", g.gate}, {"expert", g.experts[i]}};
      registry->GetGauge("freshet_learner_gate_weight_mean", "Mean gate weight per expert", l)->Set(g.weight_mean[i]);
      registry->GetGauge("freshet_learner_gate_weight_std", "Std of gate weight per expert", l)->Set(g.weight_std[i]);
    }
    if (!g.self_gate)
      registry->GetGauge("freshet_learner_gate_entropy", "Mean gate entropy (nats)", {{"gate", g.gate}})->Set(g.entropy);
  }
  for (const OccupancyDiagnostics& o : d.occupancy)
    for (size_t t = 0; t < o.task_share.size() && t < tasks.size(); ++t)
      registry->GetGauge("freshet_learner_expert_task_occupancy", "Share of an expert's task-gate mass per task",
                         {{"expert", o.expert}, {"task", tasks[t].name}})
          ->Set(o.task_share[t]);
}

template ModelDiagnostics ComputeDiagnostics<float>(const Model<float>&);
template ModelDiagnostics ComputeDiagnostics<double>(const Model<double>&);

}  // namespace freshet::cpu
