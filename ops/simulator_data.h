// SimulatedEvalData: the default simulator's traffic as an offline data set for
// `freshet eval --data simulator`, so the model and optimizer defaults of `freshet run`
// can be tuned (and checked) in minutes without Kafka. The events are the ones
// `freshet run` would produce with the same `simulator` config section; samples are
// labelled as the `wait` policy would see them (a label counts when it arrives within
// its task's window: ingest/eval_data.h's EvalCollector).
//
//   StatusOr<ingest::EvalData> d = SimulatedEvalData(config, {.train_rows = 40000});
//   // time-ordered: d->train is the first train_rows impressions, d->test the next
//
// Thread-safety: a function.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "ingest/eval_data.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

struct SimulatedDataOptions {
  int64_t train_rows = 40000;
  int64_t test_rows = 10000;
};

// InvalidArgument when the row counts are not positive or the simulator section
// is invalid (ops::Validate names the field).
StatusOr<ingest::EvalData> SimulatedEvalData(const FreshetConfig& config, const SimulatedDataOptions& options);

}  // namespace freshet::ops
