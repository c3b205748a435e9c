// MakeSyntheticMtl; see synthetic_mtl.h.
#include "ingest/synthetic_mtl.h"

#include <cmath>
#include <random>
#include <vector>

namespace freshet::ingest {
namespace {

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void Normalize(std::vector<double>* v) {
  const double n = std::sqrt(Dot(*v, *v));
  for (double& x : *v) x /= n;
}

}  // namespace

StatusOr<EvalData> MakeSyntheticMtl(const SyntheticMtlOptions& o) {
  if (o.input_dim < 2) return InvalidArgumentError("synthetic input_dim must be >= 2 (two orthogonal directions)");
  if (!(o.correlation >= -1 && o.correlation <= 1)) return InvalidArgumentError("synthetic correlation must be in [-1, 1]");
  if (o.sin_terms < 0) return InvalidArgumentError("synthetic sin_terms must be >= 0");
  if (o.train_rows < 1 || o.test_rows < 0) return InvalidArgumentError("synthetic rows: train >= 1, test >= 0");
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int d = o.input_dim;
  // Two orthogonal unit vectors by Gram-Schmidt on Gaussian draws.
  std::vector<double> u1(d), u2(d);
  for (double& x : u1) x = normal(rng);
  for (double& x : u2) x = normal(rng);
  Normalize(&u1);
  const double proj = Dot(u1, u2);
  for (int i = 0; i < d; ++i) u2[i] -= proj * u1[i];
  Normalize(&u2);
  const double p = o.correlation, q = std::sqrt(std::max(0.0, 1 - p * p));
  std::vector<double> w1(d), w2(d);
  for (int i = 0; i < d; ++i) {
    w1[i] = o.scale * u1[i];
    w2[i] = o.scale * (p * u1[i] + q * u2[i]);
  }
  std::vector<double> alpha(o.sin_terms), beta(o.sin_terms);
  for (int i = 0; i < o.sin_terms; ++i) alpha[i] = normal(rng), beta[i] = normal(rng);
  auto label = [&](double z) {
    double y = z;
    for (int i = 0; i < o.sin_terms; ++i) y += std::sin(alpha[i] * z + beta[i]);
    return y + o.noise_std * normal(rng);
  };

  EvalData data;
  data.name = "synthetic";
  for (const char* name : {"y1", "y2"}) {
    TaskConfig t;
    t.set_name(name);
    t.set_type(TASK_REGRESSION);
    t.add_label_kinds(LABEL_PLAY_TIME);  // unused here; keeps the task config valid
    data.tasks.push_back(t);
  }
  auto* slot = data.input.add_dense_slots();
  slot->set_slot(0);
  slot->set_width(d);
  std::vector<double> x(d);
  for (int64_t row = 0; row < o.train_rows + o.test_rows; ++row) {
    for (double& v : x) v = normal(rng);
    Sample s;
    s.set_sample_id("syn-" + std::to_string(row));
    s.set_user_id(static_cast<uint64_t>(row) + 1);
    s.set_item_id(static_cast<uint64_t>(row) + 1);
    s.set_event_time_ms(row);
    auto* dense = s.add_dense();
    dense->set_slot(0);
    for (double v : x) dense->add_values(static_cast<float>(v));
    s.add_label(static_cast<float>(label(Dot(w1, x))));
    s.add_label(static_cast<float>(label(Dot(w2, x))));
    s.add_mask(true);
    s.add_mask(true);
    (row < o.train_rows ? data.train : data.test).push_back(std::move(s));
  }
  data.time_ordered = false;
  data.description = "synthetic MMoE pair: d=" + std::to_string(d) + " p=" + std::to_string(p) +
                     " m=" + std::to_string(o.sin_terms) + " train=" + std::to_string(o.train_rows) +
                     " test=" + std::to_string(o.test_rows) + " seed=" + std::to_string(o.seed);
  return data;
}

}  // namespace freshet::ingest
