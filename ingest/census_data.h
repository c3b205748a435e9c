// LoadCensus: UCI census-income (KDD) rows as two-task Samples, the public benchmark
// of the MMoE (Sec. 6.3) and PLE papers (data/census-income-kdd/README.md).
//
//   group 1: "income"    = income_50k is "50000+."       + "never_married"
//   group 2: "education" = education is a college degree  + "never_married"
//            (Associates, Bachelors, Masters, Prof school, Doctorate; "Some college
//            but no degree" is not one)
//   never_married = marital_stat is "Never married"
//
// Inputs: every categorical column is its own sparse slot (id = hash of the column
// index and text; "?" leaves the slot empty), the continuous ones are dense slots
// (log1p of money columns, age/100, weeks_worked/52, num_emp/6). Dropped: the
// sampling weight instance_weight, the income label, and the group's label columns
// (marital_stat always, education in group 2).
//
// Split: the rows are shuffled with `seed` and the first (1 − test_fraction) train.
// Malformed rows (wrong field count, unparsable number) are an error naming the line.
//
// Thread-safety: a pure function of its options and the file.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "ingest/eval_data.h"

namespace freshet::ingest {

struct CensusOptions {
  std::string path;            // census-income.*.gz (or plain text)
  int group = 1;               // 1: income + never_married, 2: education + never_married
  double test_fraction = 0.2;
  uint64_t seed = 1;
  int embedding_dim = 4;       // width of every sparse slot in EvalData.input
};

// NotFound for a missing file; InvalidArgument for a bad option; DataLoss naming the
// line for a malformed row.
StatusOr<EvalData> LoadCensus(const CensusOptions& options);

}  // namespace freshet::ingest
