// Shared helpers of the learner tests: small configs, random batches, and the
// central-finite-difference gradient check.
#pragma once

#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "learner/batch.h"
#include "learner/cpu/tensor.h"
#include "schemas/config.pb.h"
#include "schemas/model_config.pb.h"

namespace freshet::cpu::testing {

// Three sparse slots (sum, mean, sum; dims 4, 3, 2) and two dense slots (widths 2, 1):
// D_in = 12. Small enough that a full finite-difference sweep stays fast.
inline LearnerConfig SmallConfig(ModelFamily family) {
  LearnerConfig c;
  c.set_seed(7);
  ModelConfig* m = c.mutable_model();
  m->set_family(family);
  auto* s = m->add_sparse_slots();
  s->set_slot(1), s->set_dim(4), s->set_pooling(POOL_SUM);
  s = m->add_sparse_slots();
  s->set_slot(2), s->set_dim(3), s->set_pooling(POOL_MEAN);
  s = m->add_sparse_slots();
  s->set_slot(5), s->set_dim(2), s->set_pooling(POOL_SUM);
  auto* d = m->add_dense_slots();
  d->set_slot(1), d->set_width(2);
  d = m->add_dense_slots();
  d->set_slot(2), d->set_width(1);
  m->set_num_shared_experts(2);
  m->set_num_specific_experts(1);
  m->add_expert_hidden(5);
  m->set_expert_output_dim(4);
  m->add_tower_hidden(3);
  m->set_ple_levels(2);
  m->mutable_home()->set_feature_gate_rank(2);
  c.mutable_embedding()->set_cms_width(1024);
  return c;
}

// configs/reference.pbtxt (the reference model of issue 10); false when it is missing
// or does not parse.
inline bool LoadReferenceConfig(FreshetConfig* config) {
  std::ifstream in(std::string(FRESHET_SOURCE_DIR) + "/configs/reference.pbtxt");
  std::stringstream text;
  text << in.rdbuf();
  return in && google::protobuf::TextFormat::ParseFromString(text.str(), config);
}

// Three tasks: click (binary, interaction), long_view (binary, watch), play_time
// (regression, watch), loss weights 1, 0.5, 2.
inline std::vector<TaskConfig> SmallTasks() {
  std::vector<TaskConfig> tasks(3);
  tasks[0].set_name("click");
  tasks[1].set_name("long_view");
  tasks[1].set_home_group("watch");
  tasks[1].set_loss_weight(0.5);
  tasks[2].set_name("play_time");
  tasks[2].set_type(TASK_REGRESSION);
  tasks[2].set_home_group("watch");
  tasks[2].set_loss_weight(2.0);
  return tasks;
}

// B samples with random bags (0..3 ids from a vocabulary of `vocab` per slot), random
// dense, labels, masks (≈70 % set), weights in [0.5, 1.5]. Task `zero_mask_task`
// (if >= 0) has no observed label in the whole batch.
inline Batch RandomBatch(const ModelConfig& m, int num_tasks, int batch, uint64_t seed,
                         int zero_mask_task = -1, int vocab = 20) {
  Rng rng(seed);
  Batch b;
  b.size = batch;
  for (int s = 0; s < m.sparse_slots_size(); ++s) {
    Batch::SparseSlot slot;
    slot.offsets.push_back(0);
    for (int i = 0; i < batch; ++i) {
      const int n = static_cast<int>(rng.Next() % 4);
      for (int j = 0; j < n; ++j) slot.ids.push_back(rng.Next() % vocab);
      slot.offsets.push_back(static_cast<int32_t>(slot.ids.size()));
    }
    b.sparse.push_back(std::move(slot));
  }
  int dense = 0;
  for (const auto& d : m.dense_slots()) dense += d.width();
  b.dense.resize(batch, dense);
  b.labels.resize(batch, num_tasks);
  b.masks.resize(batch, num_tasks);
  b.weights.resize(batch, num_tasks);
  for (int i = 0; i < batch; ++i) {
    for (int j = 0; j < dense; ++j) b.dense(i, j) = static_cast<float>(rng.Normal());
    for (int t = 0; t < num_tasks; ++t) {
      b.labels(i, t) = t == 2 ? static_cast<float>(rng.Normal()) : static_cast<float>(rng.Next() % 2);
      b.masks(i, t) = (t == zero_mask_task || rng.Uniform() > 0.7) ? 0.0f : 1.0f;
      b.weights(i, t) = static_cast<float>(0.5 + rng.Uniform());
    }
  }
  return b;
}

// Central differences: dL/dθ ≈ (L(θ+h) − L(θ−h)) / 2h, in double precision.
// h = 1e-5: the truncation error is O(h²·L''') ≈ 1e-10 and the rounding error
// ≈ ε·|L|/h ≈ 1e-11 for our O(1) losses, so analytic and numerical gradients agree to
// ~1e-8 absolute. The check allows |a − n| ≤ 1e-6 + 1e-5·max(|a|, |n|): two orders of
// margin over the FD error, yet a wrong factor, sign, transpose or missed path (all
// ≥ 1e-3 relative) fails.
// ReLU kinks: when a ReLU pre-activation sits within h of zero, the difference
// quotient straddles the kink and is wrong by design. Such an entry shows itself by
// disagreeing with the quotient at h/10; it is then counted as `kinks` instead of
// compared, and EXPECT_GRADS_OK allows at most 1 % of entries to be kinks.
struct GradCheckResult {
  int checked = 0;
  int kinks = 0;
  int failed = 0;
  double max_abs_err = 0;
  std::string first_failure;
};

inline void CheckEntry(const std::string& name, int64_t index, double analytic, double* value,
                       const std::function<double()>& loss, GradCheckResult* r) {
  const double saved = *value;
  auto quotient = [&](double h) {
    *value = saved + h;
    const double plus = loss();
    *value = saved - h;
    const double minus = loss();
    *value = saved;
    return (plus - minus) / (2 * h);
  };
  auto close = [](double a, double b) { return std::abs(a - b) <= 1e-6 + 1e-5 * std::max(std::abs(a), std::abs(b)); };
  const double numeric = quotient(1e-5);
  const double err = std::abs(analytic - numeric);
  ++r->checked;
  if (!close(analytic, numeric) && !close(numeric, quotient(1e-6))) {
    ++r->kinks;  // not differentiable at this point within h
    return;
  }
  r->max_abs_err = std::max(r->max_abs_err, err);
  if (!close(analytic, numeric)) {
    if (r->failed++ == 0)
      r->first_failure = name + "[" + std::to_string(index) + "]: analytic " + std::to_string(analytic) +
                         " numeric " + std::to_string(numeric);
  }
}

// Checks up to `max_entries` entries of `values` (spread evenly) against `analytic`.
inline void CheckTensor(const std::string& name, double* values, const double* analytic, int64_t size,
                        const std::function<double()>& loss, GradCheckResult* r, int64_t max_entries = 1 << 30) {
  const int64_t stride = std::max<int64_t>(1, size / std::max<int64_t>(1, max_entries));
  for (int64_t i = 0; i < size; i += stride) CheckEntry(name, i, analytic[i], values + i, loss, r);
}

#define EXPECT_GRADS_OK(r)                                            \
  do {                                                                \
    EXPECT_GT((r).checked, 0);                                        \
    EXPECT_LE((r).kinks * 100, (r).checked) << "too many kinks";      \
    EXPECT_EQ((r).failed, 0) << (r).first_failure << " (" << (r).failed \
                             << " of " << (r).checked << " failed)";  \
  } while (0)

// Fills a matrix with N(0, scale²).
template <typename M>
void RandomFill(Rng* rng, double scale, M* m) {
  for (int64_t i = 0; i < m->size(); ++i) m->data()[i] = static_cast<typename M::Scalar>(scale * rng->Normal());
}

}  // namespace freshet::cpu::testing
