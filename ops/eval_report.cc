// The `freshet eval` report; see eval_report.h.
#include "ops/eval_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/json.h"

namespace freshet::ops {
namespace {

std::string Fmt(const char* format, double a, double b = 0) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, a, b);
  return buf;
}

std::string MeanStd(const Spread& s, const char* format = "%.4f±%.4f") {
  return s.n == 0 ? "-" : Fmt(format, s.mean, s.std);
}

// Index of the run with the best main-task (task 0) score: highest AUC, or lowest
// MSE when task 0 is a regression.
size_t BestRun(const VariantRuns& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.runs.size(); ++i) {
    const auto& a = v.runs[i].metrics[0];
    const auto& b = v.runs[best].metrics[0];
    if (a.regression ? (a.mse >= 0 && (b.mse < 0 || a.mse < b.mse)) : a.auc > b.auc) best = i;
  }
  return best;
}

template <typename F>
Spread Over(const VariantRuns& v, F f) {
  std::vector<double> x;
  for (const auto& r : v.runs) x.push_back(f(r));
  return SpreadOf(x);
}

bool OwnExpert(const std::string& expert, const std::string& task) {
  return expert.find("." + task + ".") != std::string::npos;
}

}  // namespace

Spread SpreadOf(const std::vector<double>& values) {
  Spread s;
  double sum = 0;
  for (double v : values)
    if (v >= 0 && std::isfinite(v)) sum += v, ++s.n;
  if (s.n == 0) return s;
  s.mean = sum / s.n;
  double sq = 0;
  for (double v : values)
    if (v >= 0 && std::isfinite(v)) sq += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(sq / (s.n - 1)) : 0;
  return s;
}

std::string FormatMetricsTable(const EvalReportHeader& h, const std::vector<VariantRuns>& variants) {
  std::string out = "data: " + h.data + "\nmode: " + h.mode +
                    (h.mode == "offline" ? " (" + std::to_string(h.passes) + " passes)" : "") + "\n\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-22s %-14s %5s %-15s %-7s %-15s %-15s %-8s %-15s\n", "variant", "task", "runs",
                "AUC mean±std", "best*", "GAUC mean±std", "logloss", "calib", "MSE mean±std");
  out += line;
  for (const VariantRuns& v : variants) {
    if (v.runs.empty()) continue;
    const size_t best = BestRun(v);
    for (size_t t = 0; t < h.tasks.size(); ++t) {
      auto metric = [&](double learner::TaskMetrics::*m) {
        return Over(v, [&](const learner::EvalResult& r) { return r.metrics[t].*m; });
      };
      const auto& b = v.runs[best].metrics[t];
      std::snprintf(line, sizeof(line), "%-22s %-14s %5zu %-15s %-7s %-15s %-15s %-8s %-15s\n", v.variant.c_str(),
                    h.tasks[t].name().c_str(), v.runs.size(), MeanStd(metric(&learner::TaskMetrics::auc)).c_str(),
                    b.auc < 0 ? "-" : Fmt("%.4f", b.auc).c_str(), MeanStd(metric(&learner::TaskMetrics::gauc)).c_str(),
                    MeanStd(metric(&learner::TaskMetrics::log_loss)).c_str(),
                    MeanStd(metric(&learner::TaskMetrics::calibration), "%.3f").c_str(),
                    MeanStd(metric(&learner::TaskMetrics::mse)).c_str());
      out += line;
    }
  }
  out += "* best: the task's AUC in the run with the best main-task (" + h.tasks[0].name() + ") score\n";
  return out;
}

std::string FormatDiagnostics(const EvalReportHeader& h, const std::vector<VariantRuns>& variants) {
  std::string out = "\nexpert diagnostics (mean over runs; inference forward over the last scored rows)\n";
  for (const VariantRuns& v : variants) {
    if (v.runs.empty()) continue;
    std::map<std::string, std::vector<double>> zero, occupancy;
    std::map<std::string, std::vector<double>> own_mass;  // task → gate mass on its own experts
    for (const auto& r : v.runs) {
      for (const auto& e : r.diagnostics.experts) zero[e.expert].push_back(e.zero_share);
      for (const auto& o : r.diagnostics.occupancy)
        occupancy[o.expert].push_back(*std::max_element(o.task_share.begin(), o.task_share.end()));
      for (const auto& g : r.diagnostics.gates) {
        if (g.task < 0 || g.self_gate) continue;
        const std::string& task = h.tasks[g.task].name();
        double own = 0;
        bool has_own = false;
        for (size_t i = 0; i < g.experts.size(); ++i)
          if (OwnExpert(g.experts[i], task)) own += g.weight_mean[i], has_own = true;
        if (has_own) own_mass[task].push_back(own);
      }
    }
    std::string worst;
    double worst_share = -1;
    int over90 = 0;
    for (const auto& [name, xs] : zero) {
      const double m = SpreadOf(xs).mean;
      if (m > worst_share) worst_share = m, worst = name;
      over90 += m > 0.9;
    }
    out += "  " + v.variant + ": experts " + std::to_string(zero.size());
    if (!zero.empty()) out += ", max zero share " + Fmt("%.3f", worst_share) + " (" + worst + "), >90% zero: " + std::to_string(over90);
    if (!occupancy.empty()) {
      double max_occ = 0;
      std::string which;
      for (const auto& [name, xs] : occupancy)
        if (SpreadOf(xs).mean > max_occ) max_occ = SpreadOf(xs).mean, which = name;
      out += ", max single-task occupancy " + Fmt("%.3f", max_occ) + " (" + which + ")";
    }
    out += "\n";
    std::string own_line;
    for (const auto& t : h.tasks) {
      auto it = own_mass.find(t.name());
      if (it == own_mass.end()) continue;
      own_line += " " + t.name() + "=" + Fmt("%.3f", SpreadOf(it->second).mean);
    }
    if (!own_line.empty()) out += "    gate mass on task-specific experts:" + own_line + "\n";
  }
  return out;
}

std::string ReportJson(const EvalReportHeader& h, const std::vector<VariantRuns>& variants) {
  JsonWriter w;
  w.BeginObject().Key("command").String(h.command).Key("data").String(h.data).Key("mode").String(h.mode);
  w.Key("passes").Int(h.passes).Key("tasks").BeginArray();
  for (const auto& t : h.tasks) w.String(t.name());
  w.EndArray().Key("variants").BeginArray();
  for (const VariantRuns& v : variants) {
    w.BeginObject().Key("variant").String(v.variant).Key("seconds").Double(v.seconds).Key("summary").BeginObject();
    for (size_t t = 0; t < h.tasks.size() && !v.runs.empty(); ++t) {
      w.Key(h.tasks[t].name()).BeginObject();
      for (auto [key, m] : {std::pair{"auc", &learner::TaskMetrics::auc}, {"gauc", &learner::TaskMetrics::gauc},
                            {"log_loss", &learner::TaskMetrics::log_loss}, {"calibration", &learner::TaskMetrics::calibration},
                            {"mse", &learner::TaskMetrics::mse}}) {
        const Spread s = Over(v, [&](const learner::EvalResult& r) { return r.metrics[t].*m; });
        w.Key(key).BeginObject().Key("mean").Double(s.mean).Key("std").Double(s.std).Key("n").Int(s.n).EndObject();
      }
      w.Key("best_run_auc").Double(v.runs[BestRun(v)].metrics[t].auc).EndObject();
    }
    w.EndObject().Key("mean_curve").BeginArray();
    // Seed-mean of the task-mean loss per curve point (runs have the same step grid).
    size_t points = v.runs.empty() ? 0 : v.runs[0].curve.size();
    for (const auto& r : v.runs) points = std::min(points, r.curve.size());
    for (size_t p = 0; p < points; ++p) {
      double sum = 0;
      int n = 0;
      for (const auto& r : v.runs)
        for (double l : r.curve[p].task_loss)
          if (l >= 0) sum += l, ++n;
      w.BeginArray().Int(v.runs[0].curve[p].step).Double(n > 0 ? sum / n : -1).EndArray();
    }
    w.EndArray().Key("runs").BeginArray();
    for (size_t i = 0; i < v.runs.size(); ++i) {
      const auto& r = v.runs[i];
      w.BeginObject().Key("seed").Int(static_cast<int64_t>(v.seeds[i])).Key("steps").Int(r.steps);
      w.Key("samples_trained").Int(r.samples_trained).Key("samples_scored").Int(r.samples_scored);
      w.Key("skipped_batches").Int(r.skipped_batches).Key("metrics").BeginArray();
      for (const auto& m : r.metrics) {
        w.BeginObject().Key("task").String(m.task).Key("count").Int(m.count).Key("positives").Double(m.positives);
        w.Key("auc").Double(m.auc).Key("gauc").Double(m.gauc).Key("gauc_users").Int(m.gauc_users);
        w.Key("log_loss").Double(m.log_loss).Key("calibration").Double(m.calibration).Key("mse").Double(m.mse).EndObject();
      }
      w.EndArray().Key("curve").BeginArray();
      for (const auto& p : r.curve) {
        w.BeginArray().Int(p.step);
        for (double l : p.task_loss) w.Double(l);
        w.EndArray();
      }
      w.EndArray().Key("experts").BeginArray();
      for (const auto& e : r.diagnostics.experts)
        w.BeginObject().Key("expert").String(e.expert).Key("zero_share").Double(e.zero_share)
            .Key("output_mean").Double(e.output_mean).Key("output_std").Double(e.output_std).EndObject();
      w.EndArray().Key("gates").BeginArray();
      for (const auto& g : r.diagnostics.gates) {
        w.BeginObject().Key("gate").String(g.gate).Key("task").Int(g.task).Key("self_gate").Bool(g.self_gate);
        w.Key("entropy").Double(g.entropy).Key("weights").BeginObject();
        for (size_t e = 0; e < g.experts.size(); ++e) w.Key(g.experts[e]).Double(g.weight_mean[e]);
        w.EndObject().EndObject();
      }
      w.EndArray().Key("occupancy").BeginArray();
      for (const auto& o : r.diagnostics.occupancy) {
        w.BeginObject().Key("expert").String(o.expert).Key("task_share").BeginArray();
        for (double s : o.task_share) w.Double(s);
        w.EndArray().EndObject();
      }
      w.EndArray().EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return w.str();
}

}  // namespace freshet::ops
