// The data-set readers of `freshet eval`: the synthetic generator's label correlation
// follows the configured task correlation; census rows parse into the two tasks with
// the label columns kept out of the inputs; KuaiRand samples carry the task rules'
// labels and sample spaces and are split by time; EvalCollector labels an event stream
// with the window-closed rule.
#include <gtest/gtest.h>

#include <cmath>

#include "ingest/census_data.h"
#include "ingest/eval_data.h"
#include "ingest/task_rules.h"
#include "ingest/kuairand_data.h"
#include "ingest/synthetic_mtl.h"
#include "tests/util/shared_data.h"

namespace freshet::ingest {
namespace {

double Pearson(const std::vector<Sample>& rows) {
  double n = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (const Sample& s : rows) {
    const double a = s.label(0), b = s.label(1);
    n += 1, sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
  }
  const double cov = sab / n - sa / n * sb / n;
  return cov / std::sqrt((saa / n - sa / n * sa / n) * (sbb / n - sb / n * sb / n));
}

EvalData Synthetic(double p, int sin_terms, int input_dim, uint64_t seed) {
  SyntheticMtlOptions o;
  o.correlation = p;
  o.sin_terms = sin_terms;
  o.input_dim = input_dim;
  o.train_rows = 20000;
  o.test_rows = 0;
  o.seed = seed;
  auto d = MakeSyntheticMtl(o);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? std::move(d).value() : EvalData{};
}

// Linear case (m = 0): the labels are two unit-variance Gaussians with correlation p
// plus noise of std 0.01, so r estimates p·(1/(1 + 1e-4)) with standard error
// ≈ (1 − p²)/√n. The tolerance is 4 standard errors plus the noise shrinkage.
TEST(SyntheticMtlTest, LinearLabelCorrelationFollowsTheTaskCorrelation) {
  for (double p : {0.0, 0.5, 0.9, -0.7}) {
    const EvalData d = Synthetic(p, /*sin_terms=*/0, /*input_dim=*/100, /*seed=*/5);
    const double n = static_cast<double>(d.train.size());
    ASSERT_EQ(n, 20000);
    const double tol = 4 * (1 - p * p) / std::sqrt(n - 1) + 2e-4;
    EXPECT_NEAR(Pearson(d.train), p, tol) << "p=" << p;
  }
}

// With the sine terms the correlation is no longer p, but it rises with p and is 1
// (up to the noise) for identical tasks.
TEST(SyntheticMtlTest, NonlinearLabelCorrelationRisesWithTheTaskCorrelation) {
  std::vector<double> r;
  for (double p : {0.5, 0.9, 1.0}) {
    const EvalData d = Synthetic(p, /*sin_terms=*/10, /*input_dim=*/20, /*seed=*/9);
    ASSERT_EQ(d.train.size(), 20000u);
    r.push_back(Pearson(d.train));
  }
  // Standard error ≤ 1/√20000 ≈ 0.007; the steps between the settings are far larger.
  EXPECT_GT(r[1], r[0] + 0.05);
  EXPECT_GT(r[2], r[1] + 0.02);
  EXPECT_GT(r[2], 0.999);
}

TEST(SyntheticMtlTest, SameSeedSameDataAndLayout) {
  SyntheticMtlOptions o;
  o.train_rows = 50;
  o.test_rows = 10;
  auto a = MakeSyntheticMtl(o), b = MakeSyntheticMtl(o);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->train.size(), 50u);
  ASSERT_EQ(a->test.size(), 10u);
  EXPECT_EQ(a->train[7].SerializeAsString(), b->train[7].SerializeAsString());
  EXPECT_EQ(a->train[0].dense(0).values_size(), 100);
  EXPECT_EQ(a->tasks[0].type(), TASK_REGRESSION);
  o.correlation = 1.5;
  EXPECT_EQ(MakeSyntheticMtl(o).status().code(), StatusCode::kInvalidArgument);
}

const std::string kCensusFixture =
    freshet::testing::SharedDataPath("census-income-kdd/census-income.data.first1891rows.gz");

TEST(CensusDataTest, ParsesTheFixtureIntoTwoTasksWithoutTheLabelColumns) {
  SKIP_WITHOUT_DATA(kCensusFixture);
  CensusOptions o;
  o.path = kCensusFixture;
  o.group = 2;
  auto d = LoadCensus(o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.size() + d->test.size(), 1891u);
  EXPECT_EQ(d->test.size(), 378u);  // round(0.2 · 1891)
  EXPECT_EQ(d->tasks[0].name(), "education");
  EXPECT_EQ(d->tasks[1].name(), "never_married");
  // 42 columns − instance weight − income − marital − education; 7 of them dense.
  EXPECT_EQ(d->input.dense_slots_size(), 7);
  EXPECT_EQ(d->input.sparse_slots_size(), 42 - 4 - 7);
  for (const auto& s : d->input.sparse_slots()) EXPECT_TRUE(s.slot() != 4 && s.slot() != 7 && s.slot() != 24);
  double edu = 0, never = 0;
  for (const Sample& s : d->train) edu += s.label(0), never += s.label(1);
  const double n = static_cast<double>(d->train.size());
  EXPECT_GT(edu / n, 0.05);   // college degrees among all ages
  EXPECT_LT(edu / n, 0.4);
  EXPECT_GT(never / n, 0.3);  // about 43 % in the full data
  EXPECT_LT(never / n, 0.55);
  // Group 1 keeps education as an input.
  o.group = 1;
  auto g1 = LoadCensus(o);
  ASSERT_TRUE(g1.ok());
  EXPECT_EQ(g1->input.sparse_slots_size(), 42 - 3 - 7);
}

TEST(CensusDataTest, MissingFileAndBadOptionsAreClearErrors) {
  CensusOptions o;
  o.path = "/nonexistent/census.gz";
  EXPECT_EQ(LoadCensus(o).status().code(), StatusCode::kNotFound);
  SKIP_WITHOUT_DATA(kCensusFixture);
  o.path = kCensusFixture;
  o.group = 3;
  EXPECT_EQ(LoadCensus(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(KuaiRandDataTest, LabelsFollowTheTaskRulesAndTheSplitIsByTime) {
  FreshetConfig config;
  auto add = [&](const std::string& name, LabelKind kind, const std::string& space = "") {
    TaskConfig* t = config.add_tasks();
    t->set_name(name);
    t->add_label_kinds(kind);
    t->set_requires_positive(space);
  };
  add("click", LABEL_CLICK);
  add("like", LABEL_LIKE, "click");
  TaskConfig* play = config.add_tasks();
  play->set_name("play_time");
  play->set_type(TASK_REGRESSION);
  play->add_label_kinds(LABEL_PLAY_TIME);
  play->set_value_scale(1.0f / 60000);
  KuaiRandDataOptions o;
  o.log_path = freshet::testing::SharedDataPath("kuairand-pure/log_standard_4_25_to_4_30_pure.csv.gz");
  SKIP_WITHOUT_DATA(o.log_path);
  o.keep_user_modulo = 20;
  auto d = LoadKuaiRand(o, config);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_FALSE(d->train.empty());
  ASSERT_FALSE(d->test.empty());
  EXPECT_TRUE(d->time_ordered);
  int64_t clicks = 0, likes = 0;
  for (const Sample& s : d->train) {
    ASSERT_LT(s.event_time_ms(), kKuaiRandDay29Ms);
    ASSERT_EQ((s.user_id() - 1) % 20, 0u);
    ASSERT_EQ(s.label_size(), 3);
    EXPECT_TRUE(s.mask(0));                        // click: every impression
    EXPECT_EQ(s.mask(1), s.label(0) > 0.5f);       // like: only among clicks
    EXPECT_TRUE(s.mask(2));                        // play time: every row has one
    EXPECT_GE(s.label(2), 0.0f);
    clicks += s.label(0) > 0.5f;
    likes += s.mask(1) && s.label(1) > 0.5f;
  }
  for (const Sample& s : d->test) ASSERT_GE(s.event_time_ms(), kKuaiRandDay29Ms);
  EXPECT_GT(clicks, 0);
  EXPECT_LT(likes, clicks);
  EXPECT_EQ(d->input.sparse_slots_size(), 34);
  EXPECT_EQ(d->input.dense_slots_size(), 5);
}

}  // namespace
}  // namespace freshet::ingest

namespace freshet::ingest {
namespace {

Impression Imp(const std::string& id, uint64_t user, int64_t t) {
  Impression i;
  i.set_request_id(id);
  i.set_user_id(user);
  i.set_item_id(7);
  i.set_event_time_ms(t);
  return i;
}

Label Lab(const std::string& id, LabelKind kind, float value, int64_t t) {
  Label l;
  l.set_request_id(id);
  l.set_kind(kind);
  l.set_value(value);
  l.set_event_time_ms(t);
  return l;
}

// click (window 10 s), like in click's space (window 60 s), play_time regression.
FreshetConfig ThreeTasks() {
  FreshetConfig c;
  auto add = [&c](const char* name, LabelKind kind, int64_t window) {
    TaskConfig* t = c.add_tasks();
    t->set_name(name);
    t->add_label_kinds(kind);
    t->set_window_ms(window);
    return t;
  };
  add("click", LABEL_CLICK, 10000);
  add("like", LABEL_LIKE, 60000)->set_requires_positive("click");
  TaskConfig* play = add("play_time", LABEL_PLAY_TIME, 30000);
  play->set_type(TASK_REGRESSION);
  play->set_value_scale(0.001f);
  return c;
}

TEST(EvalCollectorTest, LabelsMasksWindowsAndFilter) {
  auto rules = TaskRules::Create(ThreeTasks());
  ASSERT_TRUE(rules.ok()) << rules.status();
  EvalCollector c([](const Impression& i) { return i.user_id() != 99; });
  ASSERT_TRUE(c.OnImpression(Imp("a", 1, 1000)).ok());
  ASSERT_TRUE(c.OnImpression(Imp("dropped", 99, 1000)).ok());
  ASSERT_TRUE(c.OnImpression(Imp("b", 2, 2000)).ok());
  ASSERT_TRUE(c.OnLabel(Lab("a", LABEL_CLICK, 1, 3000)).ok());         // 2 s: in click's window
  ASSERT_TRUE(c.OnLabel(Lab("a", LABEL_LIKE, 1, 41000)).ok());         // 40 s: in like's window
  ASSERT_TRUE(c.OnLabel(Lab("a", LABEL_PLAY_TIME, 5000, 9000)).ok());  // regression: 5000 * 0.001
  ASSERT_TRUE(c.OnLabel(Lab("b", LABEL_CLICK, 1, 14000)).ok());        // 12 s: past click's 10 s window
  ASSERT_TRUE(c.OnLabel(Lab("dropped", LABEL_CLICK, 1, 1500)).ok());
  ASSERT_TRUE(c.OnLabel(Lab("unknown", LABEL_CLICK, 1, 1500)).ok());
  EXPECT_EQ(c.size(), 2u);

  std::vector<Sample> windowed = c.TakeLabelled(*rules, /*honour_windows=*/true);
  ASSERT_EQ(windowed.size(), 2u);
  EXPECT_EQ(c.size(), 0u);
  const Sample& a = windowed[0];
  EXPECT_EQ(a.request_id(), "a");
  EXPECT_EQ(a.task_layout(), rules->layout());
  EXPECT_EQ(a.origin(), ORIGIN_WINDOW_CLOSED);
  ASSERT_EQ(a.label_size(), 3);
  EXPECT_EQ(a.label(0), 1.0f);
  EXPECT_TRUE(a.mask(1));  // click positive opens like's space
  EXPECT_EQ(a.label(1), 1.0f);
  EXPECT_TRUE(a.mask(2));
  EXPECT_FLOAT_EQ(a.label(2), 5.0f);
  const Sample& b = windowed[1];
  EXPECT_EQ(b.label(0), 0.0f) << "the click came after the window closed";
  EXPECT_FALSE(b.mask(1)) << "no click in the window: like is outside the sample space";
  EXPECT_FALSE(b.mask(2)) << "no play time observed";

  // Without windows (logs whose labels carry no delay) b's late click counts.
  EvalCollector all;
  ASSERT_TRUE(all.OnImpression(Imp("b", 2, 2000)).ok());
  ASSERT_TRUE(all.OnLabel(Lab("b", LABEL_CLICK, 1, 14000)).ok());
  std::vector<Sample> unwindowed = all.TakeLabelled(*rules, /*honour_windows=*/false);
  ASSERT_EQ(unwindowed.size(), 1u);
  EXPECT_EQ(unwindowed[0].label(0), 1.0f);
  EXPECT_TRUE(unwindowed[0].mask(1));
}

}  // namespace
}  // namespace freshet::ingest
