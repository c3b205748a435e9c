// The report of `freshet eval`: per model variant, the runs over seeds, summarised as
// a terminal table (per task: AUC mean ± std and the AUC of the run with the best
// main-task AUC, GAUC, log loss, calibration, MSE for regression tasks), a collapse
// diagnostics summary, and everything as one JSON document (per-seed metrics,
// diagnostics and loss curves, plus the seed-mean loss curve).
//
//   std::vector<VariantRuns> v = ...;   // filled by eval_command.cc
//   std::fputs(FormatMetricsTable(v).c_str(), stdout);
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "learner/eval/eval_runner.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

struct VariantRuns {
  std::string variant;                    // e.g. "mmoe", "home_no_self_gate"
  std::vector<uint64_t> seeds;            // one per run
  std::vector<learner::EvalResult> runs;  // same order
  double seconds = 0;                     // wall time of all runs
};

struct EvalReportHeader {
  std::string command;      // the command line
  std::string data;         // EvalData.description
  std::string mode;         // "offline" or "prequential"
  int passes = 1;
  std::vector<TaskConfig> tasks;
};

// Mean and (sample) standard deviation of the values >= 0 (undefined metrics are -1).
struct Spread {
  double mean = -1, std = 0;
  int n = 0;
};
Spread SpreadOf(const std::vector<double>& values);

std::string FormatMetricsTable(const EvalReportHeader& header, const std::vector<VariantRuns>& variants);
// Zero-activation share per expert (max, and experts over 90 %), the largest single-
// task share of each shared expert's gate mass, and the gate mass each task puts on
// its own (specific) experts, averaged over seeds.
std::string FormatDiagnostics(const EvalReportHeader& header, const std::vector<VariantRuns>& variants);
std::string ReportJson(const EvalReportHeader& header, const std::vector<VariantRuns>& variants);

}  // namespace freshet::ops
