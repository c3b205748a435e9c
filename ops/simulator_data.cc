// SimulatedEvalData; see simulator_data.h.
#include "ops/simulator_data.h"

#include <cmath>
#include <string>

#include "ingest/task_rules.h"
#include "ops/simulator.h"

namespace freshet::ops {

StatusOr<ingest::EvalData> SimulatedEvalData(const FreshetConfig& config, const SimulatedDataOptions& o) {
  if (o.train_rows < 1) return InvalidArgumentError("simulator data: train rows must be >= 1");
  if (o.test_rows < 0) return InvalidArgumentError("simulator data: test rows must be >= 0");
  SimulatorConfig sim = config.simulator();
  if (!(sim.impressions_per_second() > 0))
    return InvalidArgumentError("simulator.impressions_per_second must be > 0 for simulated data");
  ASSIGN_OR_RETURN(ingest::TaskRules rules, ingest::TaskRules::Create(config));
  const int64_t rows = o.train_rows + o.test_rows;
  // The last impression's time, plus the longest window so every label that counts
  // has been emitted.
  const int64_t start_ms = 1'700'000'000'000;
  const int64_t last_ms = start_ms + static_cast<int64_t>(std::ceil(rows * 1000.0 / sim.impressions_per_second()));
  // The simulator generates exactly the rows asked for (or fewer, if the config caps it lower).
  if (sim.max_impressions() <= 0 || sim.max_impressions() > rows) sim.set_max_impressions(rows);
  ingest::EvalCollector sink;
  TrafficSimulator simulator(sim, start_ms);
  RETURN_IF_ERROR(simulator.AdvanceTo(last_ms + rules.max_window_ms(), &sink));

  ingest::EvalData data;
  data.name = "simulator";
  data.tasks.assign(config.tasks().begin(), config.tasks().end());
  *data.input.mutable_sparse_slots() = config.learner().model().sparse_slots();
  *data.input.mutable_dense_slots() = config.learner().model().dense_slots();
  std::vector<Sample> samples = sink.TakeLabelled(rules, /*honour_windows=*/true);
  for (size_t i = 0; i < samples.size(); ++i)
    (static_cast<int64_t>(i) < o.train_rows ? data.train : data.test).push_back(std::move(samples[i]));
  data.time_ordered = true;
  data.description = "simulator: seed " + std::to_string(sim.seed()) + ", " + std::to_string(sim.num_users()) +
                     " users, " + std::to_string(sim.num_items()) + " items, affinity_scale " +
                     std::to_string(sim.affinity_scale()) + ", " + std::to_string(data.train.size()) + " train / " +
                     std::to_string(data.test.size()) + " test impressions (time split)";
  return data;
}

}  // namespace freshet::ops
