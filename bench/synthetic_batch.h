// SyntheticBatch: the benchmarks' stand-in for a batch of real samples.
#pragma once

#include <cmath>
#include <cstdint>

#include "learner/batch.h"
#include "learner/cpu/tensor.h"

namespace freshet::bench {

// One id per sparse slot from a skewed vocabulary of 10^5 per slot (hot ids repeat
// within a batch, as in production), N(0,1) dense, ~10 % positives.
inline Batch SyntheticBatch(const ModelConfig& m, int num_tasks, int batch, uint64_t seed) {
  cpu::Rng rng(seed);
  Batch b;
  b.size = batch;
  for (int s = 0; s < m.sparse_slots_size(); ++s) {
    Batch::SparseSlot slot;
    slot.offsets.push_back(0);
    for (int i = 0; i < batch; ++i) {
      const double u = rng.Uniform();
      slot.ids.push_back(static_cast<uint64_t>(100000.0 * u * u * u));
      slot.offsets.push_back(static_cast<int32_t>(slot.ids.size()));
    }
    b.sparse.push_back(std::move(slot));
  }
  int dense = 0;
  for (const auto& d : m.dense_slots()) dense += d.width();
  b.dense.resize(batch, dense);
  b.labels.resize(batch, num_tasks);
  b.masks.setOnes(batch, num_tasks);
  b.weights.setOnes(batch, num_tasks);
  for (int i = 0; i < batch; ++i) {
    for (int j = 0; j < dense; ++j) b.dense(i, j) = static_cast<float>(rng.Normal());
    for (int t = 0; t < num_tasks; ++t)
      b.labels(i, t) = t == num_tasks - 1 ? static_cast<float>(std::abs(rng.Normal())) : (rng.Uniform() < 0.1);
  }
  return b;
}

}  // namespace freshet::bench
