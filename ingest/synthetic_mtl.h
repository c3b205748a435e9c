// MakeSyntheticMtl: the synthetic two-task regression data of the MMoE paper (Ma et
// al., KDD'18, Sec. 3.2; docs/models.md §1), whose task correlation is a knob:
//
//   u1 ⟂ u2 unit vectors in R^d;  w1 = c·u1,  w2 = c·(p·u1 + √(1−p²)·u2)
//   x ~ N(0, I_d);  y_k = w_kᵀx + Σ_{i=1..m} sin(α_i w_kᵀx + β_i) + ε_k,  ε_k ~ N(0, σ²)
//
// so cos(w1, w2) = p. The paper leaves α_i, β_i, c, m and the sizes open; we follow
// the PLE paper's reproduction: α_i, β_i ~ N(0, 1) drawn once per data set (shared by
// both tasks), c = 1, m = 10; σ = 0.01 as in Google's public generator. With m = 0
// the labels' Pearson correlation is p (up to the noise); with the sine terms it
// still rises monotonically with p.
//
// Samples: one dense slot 0 of width d; tasks "y1" and "y2" (TASK_REGRESSION);
// user_id = item_id = row + 1; event time = row (the stream order). Every row is
// drawn fresh from `seed`, so the data set is a function of the options alone.
//
//   SyntheticMtlOptions o;  o.correlation = 0.9;  o.seed = 3;
//   StatusOr<EvalData> d = MakeSyntheticMtl(o);
//
// Thread-safety: a pure function.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "ingest/eval_data.h"

namespace freshet::ingest {

struct SyntheticMtlOptions {
  int input_dim = 100;          // d (the paper's Sec. 5.1)
  double correlation = 0.5;     // p in [-1, 1]
  int sin_terms = 10;           // m
  double scale = 1.0;           // c
  double noise_std = 0.01;      // σ
  int64_t train_rows = 20000;
  int64_t test_rows = 5000;
  uint64_t seed = 1;
};

// InvalidArgument naming the option when it is out of range.
StatusOr<EvalData> MakeSyntheticMtl(const SyntheticMtlOptions& options);

}  // namespace freshet::ingest
