// The TWIN module (learner/cpu/twin.h): every gradient against central finite
// differences in double precision (test_util.h explains the tolerance), GSU with a
// zero-staleness cache returning exactly ESU's top-k, a stale cache drifting and a
// cache stamped by a discarded (restored-over) version never being served.
#include "learner/cpu/twin.h"

#include <gtest/gtest.h>

#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

using testing::CheckTensor;
using testing::GradCheckResult;
using testing::RandomFill;

// K_h rows from a table (item % rows), with their gradients collected.
template <typename T>
struct TableFeatures : TwinItemFeatures<T> {
  Mat<T> table, grad;
  TableFeatures(int rows, int dim, Rng* rng) : table(rows, dim), grad(Mat<T>::Zero(rows, dim)) {
    RandomFill(rng, 1.0, &table);
  }
  void Inherent(uint64_t item, T* out) override {
    const auto r = table.row(static_cast<int64_t>(item % table.rows()));
    std::copy(r.data(), r.data() + r.size(), out);
  }
  void AccumulateInherentGrad(uint64_t item, const T* g) override {
    grad.row(static_cast<int64_t>(item % table.rows())) += Eigen::Map<const RowVec<T>>(g, table.cols());
  }
};

// Histories of the given lengths: random items below `vocab`, increasing times,
// random play time and action bits.
std::vector<std::vector<store::Behaviour>> Histories(const std::vector<int>& lengths, int vocab, Rng* rng) {
  std::vector<std::vector<store::Behaviour>> out;
  for (int n : lengths) {
    std::vector<store::Behaviour> h;
    for (int i = 0; i < n; ++i)
      h.push_back({rng->Next() % vocab, 1000 * static_cast<int64_t>(i) * static_cast<int64_t>(rng->Next() % 5000),
                   static_cast<uint32_t>(rng->Next()), static_cast<uint32_t>(rng->Next() % 600000)});
    std::sort(h.begin(), h.end(), [](const auto& a, const auto& b) { return a.time_ms < b.time_ms; });
    out.push_back(std::move(h));
  }
  return out;
}

std::vector<TwinRequest> Requests(const std::vector<std::vector<store::Behaviour>>& h, int64_t time_ms) {
  std::vector<TwinRequest> r;
  for (const auto& x : h) r.push_back({x.data(), static_cast<int>(x.size()), time_ms});
  return r;
}

TEST(TwinTest, GradientsMatchFiniteDifferences) {
  Rng rng(11);
  TwinSpec spec;
  spec.item_dim = 5, spec.heads = 2, spec.key_dim = 3, spec.value_dim = 2, spec.output_dim = 3;
  spec.cross_dim = 2, spec.top_k = 4, spec.max_len = 50;
  Twin<double> twin("twin", spec, &rng);
  RandomFill(&rng, 0.5, &twin.beta.value);
  TableFeatures<double> features(12, spec.item_dim, &rng);
  // 9 behaviours (GSU picks 4), 3 (all attended), none, and 7 of which the newest
  // two lie after the request time (ignored).
  auto hist = Histories({9, 3, 0, 7}, 30, &rng);
  auto requests = Requests(hist, int64_t{1} << 40);
  requests[3].time_ms = hist[3][5].time_ms;
  store::ProjectionCache cache({.width = spec.projection_width(), .refresh_after_versions = 1000}, nullptr);
  Mat<double> q(4, spec.item_dim), r(4, spec.output_dim), y;
  RandomFill(&rng, 1.0, &q);
  RandomFill(&rng, 1.0, &r);
  twin.Forward(q, requests, &features, &cache, /*version=*/0, &y);
  EXPECT_EQ(twin.selected(0).size(), 4u);
  EXPECT_EQ(twin.selected(1), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(twin.selected(2).empty());
  EXPECT_EQ(y.row(2).norm(), 0.0) << "no history, no signal";
  for (int i : twin.selected(3)) EXPECT_LT(hist[3][i].time_ms, requests[3].time_ms);
  // The selection stays fixed under the perturbations (the cache is not refreshed
  // within a version), as the hard top-k has no gradient.
  const std::vector<int> selected0 = twin.selected(0);
  auto loss = [&] {
    Mat<double> out;
    twin.Forward(q, requests, &features, &cache, 0, &out);
    return r.cwiseProduct(out).sum();
  };
  Mat<double> dq = Mat<double>::Zero(4, spec.item_dim);
  std::vector<Param<double>*> params;
  twin.CollectParams(&params);
  for (Param<double>* p : params) p->ZeroGrad();
  loss();
  twin.Backward(q, r, &dq);
  GradCheckResult res;
  for (Param<double>* p : params) {
    EXPECT_GT(p->grad.norm(), 0.0) << p->name << " receives no gradient";
    CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res);
  }
  CheckTensor("query", q.data(), dq.data(), q.size(), loss, &res);
  CheckTensor("K_h", features.table.data(), features.grad.data(), features.table.size(), loss, &res);
  EXPECT_GRADS_OK(res);
  EXPECT_EQ(res.kinks, 0) << "nothing in TWIN is piecewise";
  EXPECT_EQ(twin.selected(0), selected0);
}

struct FloatFixture {
  TwinSpec spec;
  Rng rng{21};
  std::unique_ptr<Twin<float>> twin;
  std::unique_ptr<TableFeatures<float>> features;
  std::vector<std::vector<store::Behaviour>> hist;
  std::vector<TwinRequest> requests;
  Mat<float> q;

  FloatFixture() {
    spec.item_dim = 8, spec.heads = 4, spec.key_dim = 4, spec.top_k = 10, spec.max_len = 1000;
    twin = std::make_unique<Twin<float>>("twin", spec, &rng);
    features = std::make_unique<TableFeatures<float>>(150, spec.item_dim, &rng);
    hist = Histories({200, 300, 11, 250, 120, 400}, 150, &rng);
    requests = Requests(hist, int64_t{1} << 42);
    q.resize(6, spec.item_dim);
    RandomFill(&rng, 1.0, &q);
  }
  void Train() {  // what an optimizer step does to the relevance weights
    for (Param<float>* p : {&twin->wh, &twin->wq}) {
      Mat<float> noise(p->value.rows(), p->value.cols());
      RandomFill(&rng, 0.3, &noise);
      p->value += noise;
    }
  }
};

TEST(TwinTest, ZeroStalenessGsuReturnsExactlyEsuTopK) {
  FloatFixture f;
  store::ProjectionCache cache({.width = f.spec.projection_width(), .refresh_after_versions = 0}, nullptr);
  Mat<float> y;
  for (int64_t version = 1; version <= 3; ++version) {
    f.twin->Forward(f.q, f.requests, f.features.get(), &cache, version, &y);
    for (int b = 0; b < 6; ++b) {
      const auto esu = f.twin->EsuTopK(f.q, b, f.requests[b], f.features.get());
      EXPECT_EQ(f.twin->selected(b), esu) << "request " << b << " version " << version;
      EXPECT_EQ(static_cast<int>(esu.size()), std::min(10, f.requests[b].count));
    }
    EXPECT_EQ(f.twin->Consistency(f.q, f.requests, f.features.get(), 6), 1.0);
    f.Train();  // every version has new weights; refresh_after 0 recomputes them all
  }
  EXPECT_GT(cache.stale(), 0);
}

TEST(TwinTest, StaleCacheDriftsAndRefreshRestoresConsistency) {
  FloatFixture f;
  store::ProjectionCache cache({.width = f.spec.projection_width(), .refresh_after_versions = 5}, nullptr);
  Mat<float> y;
  f.twin->Forward(f.q, f.requests, f.features.get(), &cache, 10, &y);
  EXPECT_EQ(f.twin->Consistency(f.q, f.requests, f.features.get(), 6), 1.0);
  f.Train();
  f.twin->Forward(f.q, f.requests, f.features.get(), &cache, 12, &y);  // 2 versions old: served
  const double stale = f.twin->Consistency(f.q, f.requests, f.features.get(), 6);
  EXPECT_LT(stale, 1.0);
  EXPECT_GT(stale, 0.0);
  f.twin->Forward(f.q, f.requests, f.features.get(), &cache, 16, &y);  // 6 old: refreshed
  EXPECT_EQ(f.twin->Consistency(f.q, f.requests, f.features.get(), 6), 1.0);
}

TEST(TwinTest, ProjectionsFromADiscardedFutureVersionAreNeverServed) {
  FloatFixture f;
  store::ProjectionCache cache({.width = f.spec.projection_width(), .refresh_after_versions = 100}, nullptr);
  Mat<float> y;
  f.twin->Forward(f.q, f.requests, f.features.get(), &cache, 50, &y);
  // Restore to an older checkpoint: other weights, an earlier version number.
  f.Train();
  f.twin->Forward(f.q, f.requests, f.features.get(), &cache, 40, &y);
  for (int b = 0; b < 6; ++b)
    EXPECT_EQ(f.twin->selected(b), f.twin->EsuTopK(f.q, b, f.requests[b], f.features.get())) << b;
}

TEST(TwinTest, CrossBuckets) {
  int u[kTwinCrossFeatures];
  TwinCrossBuckets({1, 0, 0xFF, 0}, 0, u);
  EXPECT_EQ(u[0], 0);
  EXPECT_EQ(u[1], 0);
  EXPECT_EQ(u[2], 31);
  TwinCrossBuckets({1, 0, 2, 250}, 5000, u);  // 5 s old (bit width 3), 2 × 100 ms
  EXPECT_EQ(u[0], 3);
  EXPECT_EQ(u[1], 2);
  EXPECT_EQ(u[2], 2);
  TwinCrossBuckets({1, 0, 0, 0xFFFFFFFFu}, int64_t{1} << 62, u);
  EXPECT_EQ(u[0], kTwinCrossBuckets - 1);  // 2^52 s saturates
  EXPECT_EQ(u[1], 26);                     // the longest play time, (2^32−1)/100 < 2^26, fits
}

}  // namespace
}  // namespace freshet::cpu
