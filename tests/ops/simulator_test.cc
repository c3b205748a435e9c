#include "ops/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "ops/config.h"
#include "ops/simulator_data.h"

namespace freshet::ops {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

// Records every event as serialized bytes (for equality) and keeps timing facts.
class RecordingSink : public EventSink {
 public:
  Status OnImpression(const Impression& imp) override {
    stream.push_back("I" + imp.SerializeAsString());
    impression_time[imp.request_id()] = imp.event_time_ms();
    return Status::Ok();
  }
  Status OnLabel(const Label& l) override {
    stream.push_back("L" + l.SerializeAsString());
    auto it = impression_time.find(l.request_id());
    if (it == impression_time.end()) ++labels_before_impression;
    else delays[l.kind()].push_back(static_cast<double>(l.event_time_ms() - it->second));
    return Status::Ok();
  }
  std::vector<std::string> stream;
  std::map<std::string, int64_t> impression_time;
  std::map<LabelKind, std::vector<double>> delays;
  int labels_before_impression = 0;
};

SimulatorConfig SmallConfig(uint64_t seed, int64_t max_impressions = 0) {
  SimulatorConfig c = DefaultConfig().simulator();
  c.set_max_impressions(max_impressions);
  c.set_seed(seed);
  c.set_num_users(2000);
  c.set_num_items(5000);
  c.set_impressions_per_second(1000);
  return c;
}

TEST(SimulatorTest, SameSeedSameStreamWhateverTheStepping) {
  RecordingSink a, b, c;
  TrafficSimulator sa(SmallConfig(42), kStart), sb(SmallConfig(42), kStart), sc(SmallConfig(43), kStart);
  for (int64_t t = kStart; t < kStart + 20'000; t += 7) ASSERT_TRUE(sa.AdvanceTo(t, &a).ok());
  ASSERT_TRUE(sa.AdvanceTo(kStart + 20'000, &a).ok());
  ASSERT_TRUE(sb.AdvanceTo(kStart + 20'000, &b).ok());
  ASSERT_TRUE(sc.AdvanceTo(kStart + 20'000, &c).ok());
  ASSERT_GT(a.stream.size(), 20'000u);
  ASSERT_EQ(a.stream.size(), b.stream.size());
  size_t first_difference = a.stream.size();
  for (size_t i = 0; i < a.stream.size(); ++i) {
    if (a.stream[i] != b.stream[i]) {
      first_difference = i;
      break;
    }
  }
  EXPECT_EQ(first_difference, a.stream.size()) << "streams differ at event " << first_difference;
  EXPECT_TRUE(a.stream != c.stream) << "another seed must give another stream";
  EXPECT_EQ(sa.stats().impressions, 20'001u);  // t = 0 .. 20 s at 1000/s, inclusive
}

TEST(SimulatorTest, ImpressionsCarryEverySlot) {
  RecordingSink sink;
  TrafficSimulator sim(SmallConfig(1), kStart);
  ASSERT_TRUE(sim.AdvanceTo(kStart + 10, &sink).ok());
  Impression imp;
  ASSERT_TRUE(imp.ParseFromString(sink.stream[0].substr(1)));
  EXPECT_EQ(imp.request_id(), "s1-0");
  EXPECT_GT(imp.user_id(), 0u);
  EXPECT_GT(imp.item_id(), 0u);
  ASSERT_EQ(imp.sparse_size(), TrafficSimulator::kSparseSlots);
  ASSERT_EQ(imp.dense_size(), TrafficSimulator::kDenseSlots);
  EXPECT_EQ(imp.sparse(0).ids(0), imp.user_id());
  EXPECT_EQ(imp.sparse(1).ids(0), imp.item_id());
  EXPECT_GE(imp.sparse(7).ids_size(), 1);
  for (const auto& d : imp.dense()) EXPECT_TRUE(std::isfinite(d.values(0)));
}

// User activity follows the configured Zipf law, so heavy users build the long
// histories TWIN needs: the most active user's share of impressions is 1/H(n, s)
// (H the generalised harmonic number), within 5 standard errors; 0 means uniform.
TEST(SimulatorTest, UserActivityFollowsItsZipfExponent) {
  constexpr int kImpressions = 20'000;
  for (double s : {1.0, 0.0}) {
    SimulatorConfig config = SmallConfig(11, kImpressions);
    config.set_user_activity_zipf(s);
    RecordingSink sink;
    TrafficSimulator sim(config, kStart);
    ASSERT_TRUE(sim.AdvanceTo(kStart + 3'600'000, &sink).ok());
    std::map<uint64_t, int> per_user;
    int impressions = 0;
    for (const std::string& e : sink.stream) {
      if (e[0] != 'I') continue;
      Impression imp;
      ASSERT_TRUE(imp.ParseFromString(e.substr(1)));
      ++per_user[imp.user_id()];
      ++impressions;
    }
    ASSERT_EQ(impressions, kImpressions);
    int top = 0;
    for (const auto& [user, n] : per_user) top = std::max(top, n);
    double harmonic = 0;
    for (int r = 1; r <= config.num_users(); ++r) harmonic += 1.0 / std::pow(r, s);
    const double expected = 1.0 / harmonic;
    const double share = static_cast<double>(top) / impressions;
    if (s > 0) {
      EXPECT_NEAR(share, expected, 5 * std::sqrt(expected * (1 - expected) / impressions)) << "s=" << s;
    } else {
      EXPECT_LT(share, 10 * expected) << "uniform: no user stands out (expected share " << expected << ")";
      EXPECT_GT(per_user.size(), config.num_users() * 0.99);
    }
  }
}

// Median and log-standard-deviation of the observed delays match the configured
// log-normal within sampling tolerance (several thousand draws: the median's
// relative standard error is ~1.25·σ/√n ≈ 1-2%, allow 6%; σ's ≈ 1/√(2n), allow 8%).
TEST(SimulatorTest, LabelDelaysFollowConfiguredDistributions) {
  SimulatorConfig config = SmallConfig(7, 60'000);
  RecordingSink sink;
  TrafficSimulator sim(config, kStart);
  ASSERT_TRUE(sim.AdvanceTo(kStart + 60'000, &sink).ok());  // 60k impressions
  ASSERT_TRUE(sim.AdvanceTo(kStart + 3'600'000, &sink).ok());  // drain every label
  EXPECT_EQ(sim.pending_events(), 0u);
  EXPECT_EQ(sink.labels_before_impression, 0);

  std::map<LabelKind, std::pair<double, double>> expected;
  for (const auto& d : config.label_delays()) expected[d.kind()] = {d.median_ms(), d.log_sigma()};
  int checked = 0;
  for (LabelKind kind : {LABEL_CLICK, LABEL_PLAY_TIME, LABEL_LIKE, LABEL_LONG_VIEW}) {
    std::vector<double>& v = sink.delays[kind];
    ASSERT_GT(v.size(), 800u) << LabelKind_Name(kind);
    std::sort(v.begin(), v.end());
    double median = v[v.size() / 2];
    double mean_log = 0, var_log = 0;
    for (double x : v) mean_log += std::log(x);
    mean_log /= static_cast<double>(v.size());
    for (double x : v) var_log += (std::log(x) - mean_log) * (std::log(x) - mean_log);
    double sigma = std::sqrt(var_log / static_cast<double>(v.size() - 1));
    EXPECT_NEAR(median / expected[kind].first, 1.0, 0.06) << LabelKind_Name(kind) << " median " << median;
    EXPECT_NEAR(sigma / expected[kind].second, 1.0, 0.08) << LabelKind_Name(kind) << " sigma " << sigma;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
  // Minutes for follows, seconds for clicks.
  ASSERT_FALSE(sink.delays[LABEL_FOLLOW].empty());
  std::sort(sink.delays[LABEL_FOLLOW].begin(), sink.delays[LABEL_FOLLOW].end());
  EXPECT_GT(sink.delays[LABEL_FOLLOW][sink.delays[LABEL_FOLLOW].size() / 2], 30'000);
}

TEST(SimulatorTest, EngagementFollowsAffinityNotNoise) {
  SimulatorConfig config = SmallConfig(3, 40'000);
  RecordingSink sink;
  TrafficSimulator sim(config, kStart);
  ASSERT_TRUE(sim.AdvanceTo(kStart + 40'000, &sink).ok());
  ASSERT_TRUE(sim.AdvanceTo(kStart + 3'600'000, &sink).ok());
  const auto& by_kind = sim.stats().labels_by_kind;
  const double ctr = static_cast<double>(by_kind.at(LABEL_CLICK)) / static_cast<double>(sim.stats().impressions);
  EXPECT_GT(ctr, 0.08);
  EXPECT_LT(ctr, 0.35);
  // Rarer interactions are rarer, as on a real feed.
  EXPECT_GT(by_kind.at(LABEL_CLICK), by_kind.at(LABEL_LIKE));
  EXPECT_GT(by_kind.at(LABEL_LIKE), by_kind.at(LABEL_FOLLOW));
  EXPECT_EQ(by_kind.at(LABEL_PLAY_TIME), sim.stats().impressions);
}

TEST(SimulatorTest, EarlyLabelsPrecedeTheirImpressions) {
  SimulatorConfig config = SmallConfig(5, 10'001);
  config.set_early_label_fraction(0.3);
  RecordingSink sink;
  TrafficSimulator sim(config, kStart);
  ASSERT_TRUE(sim.AdvanceTo(kStart + 10'000, &sink).ok());
  ASSERT_TRUE(sim.AdvanceTo(kStart + 3'600'000, &sink).ok());
  EXPECT_GT(sink.labels_before_impression, 100);
  EXPECT_EQ(sim.stats().impressions, 10'001u);  // held-back impressions still arrive
  EXPECT_EQ(sim.pending_events(), 0u);
}

// A sink that fails every other call: nothing may be skipped or duplicated.
class FlakySink : public RecordingSink {
 public:
  Status OnImpression(const Impression& imp) override {
    if (++calls % 2 == 0) return UnavailableError("broker down");
    return RecordingSink::OnImpression(imp);
  }
  Status OnLabel(const Label& l) override {
    if (++calls % 2 == 0) return UnavailableError("broker down");
    return RecordingSink::OnLabel(l);
  }
  int calls = 0;
};

TEST(SimulatorTest, SinkErrorsLoseNothing) {
  RecordingSink good;
  FlakySink flaky;
  TrafficSimulator a(SmallConfig(9), kStart), b(SmallConfig(9), kStart);
  ASSERT_TRUE(a.AdvanceTo(kStart + 5'000, &good).ok());
  int errors = 0;
  for (int i = 0; i < 100'000 && (flaky.stream.size() < good.stream.size()); ++i) {
    if (!b.AdvanceTo(kStart + 5'000, &flaky).ok()) ++errors;
  }
  EXPECT_GT(errors, 0);
  std::multiset<std::string> x(good.stream.begin(), good.stream.end()), y(flaky.stream.begin(), flaky.stream.end());
  EXPECT_EQ(x, y);
}

// `freshet eval --data simulator`: the stream `freshet run` would simulate, time-split,
// labelled as the wait policy sees it; the same config gives the same rows.
TEST(SimulatedEvalDataTest, TimeSplitLabelledAndDeterministic) {
  FreshetConfig c = DefaultConfig();
  c.mutable_simulator()->set_num_users(200);
  c.mutable_simulator()->set_num_items(500);
  auto a = SimulatedEvalData(c, {.train_rows = 3000, .test_rows = 1000});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->train.size(), 3000u);
  EXPECT_EQ(a->test.size(), 1000u);
  EXPECT_TRUE(a->time_ordered);
  EXPECT_EQ(a->tasks.size(), static_cast<size_t>(c.tasks_size()));
  EXPECT_EQ(a->input.sparse_slots_size(), TrafficSimulator::kSparseSlots);
  EXPECT_LE(a->train.back().event_time_ms(), a->test.front().event_time_ms());
  double clicks = 0;
  int like_space = 0;
  for (const Sample& s : a->train) {
    ASSERT_EQ(s.label_size(), c.tasks_size());
    clicks += s.label(0);
    like_space += s.mask(2);
    EXPECT_EQ(s.mask(2), s.label(0) == 1.0f) << "like is observed exactly when click is positive";
  }
  // base_ctr 0.12 at zero affinity; user/item biases and affinity spread it.
  EXPECT_GT(clicks / 3000, 0.05);
  EXPECT_LT(clicks / 3000, 0.4);
  EXPECT_EQ(like_space, static_cast<int>(clicks));

  auto b = SimulatedEvalData(c, {.train_rows = 3000, .test_rows = 1000});
  ASSERT_TRUE(b.ok());
  for (size_t i = 0; i < a->train.size(); i += 97)
    EXPECT_EQ(a->train[i].SerializeAsString(), b->train[i].SerializeAsString()) << "row " << i;

  EXPECT_FALSE(SimulatedEvalData(c, {.train_rows = 0, .test_rows = 10}).ok());
}

}  // namespace
}  // namespace freshet::ops
