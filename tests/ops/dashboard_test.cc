// The dashboard's data side without a network: Prometheus text parsing
// (ops/metrics_scrape.h) and the sampler (ops/dashboard.h) fed by real registries
// through their rendered text, on a fake clock.
#include "ops/dashboard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/admin_http.h"
#include "ops/metrics_scrape.h"

namespace freshet::ops {
namespace {

TEST(ScrapedMetricsTest, ParsesWhatTheRegistryRenders) {
  MetricsRegistry r;
  r.GetCounter("freshet_ingest_events_total", "events", {{"topic", "impressions"}})->Inc(7);
  r.GetCounter("freshet_ingest_events_total", "events", {{"topic", "labels"}})->Inc(3);
  r.GetGauge("odd_label", "x", {{"v", "a\"b\\c\nd"}})->Set(-2.5);
  Histogram* h = r.GetHistogram("freshet_freshness_seconds", "f", {0.1, 1, 10}, {{"stage", "joined"}});
  for (double v : {0.05, 0.5, 0.7, 5.0, 50.0}) h->Observe(v);
  auto m = ScrapedMetrics::Parse(r.Render());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Sum("freshet_ingest_events_total").value_or(-1), 10);
  EXPECT_EQ(m->Sum("freshet_ingest_events_total", {{"topic", "labels"}}).value_or(-1), 3);
  EXPECT_FALSE(m->Sum("freshet_missing_total").has_value());
  EXPECT_EQ(m->SumBy("freshet_ingest_events_total", "topic").at("impressions"), 7);
  EXPECT_EQ(m->Sum("odd_label", {{"v", "a\"b\\c\nd"}}).value_or(0), -2.5);
  auto hist = m->Histogram("freshet_freshness_seconds", {{"stage", "joined"}});
  ASSERT_TRUE(hist.has_value());
  EXPECT_EQ(hist->bounds, (std::vector<double>{0.1, 1, 10}));
  EXPECT_EQ(hist->counts, (std::vector<uint64_t>{1, 2, 1, 1}));  // per bucket, +Inf last
  EXPECT_FALSE(m->Histogram("freshet_freshness_seconds", {{"stage", "served"}}).has_value());
}

TEST(ScrapedMetricsTest, MalformedLinesNameTheLine) {
  auto m = ScrapedMetrics::Parse("# HELP x y\nx 1\ny{a=\"1\" 2\n");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("metrics line 3"), std::string::npos) << m.status();
  EXPECT_FALSE(ScrapedMetrics::Parse("z notanumber\n").ok());
  EXPECT_TRUE(ScrapedMetrics::Parse("t 1 1700000000000\n").ok());  // a timestamp is allowed
}

TEST(ScrapedMetricsTest, HostPortErrorsNameTheFlag) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:9401", "--ingest")->second, 9401);
  auto bad = ParseHostPort("localhost", "--ingest");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--ingest takes HOST:PORT"), std::string::npos);
  EXPECT_FALSE(ParseHostPort("h:70000", "--learner").ok());
}

TEST(BucketCountsTest, MinusRefusesARestartAndAddRefusesOtherBounds) {
  BucketCounts a{{1, 2}, {5, 5, 0}}, b{{1, 2}, {2, 5, 0}};
  EXPECT_EQ(a.Minus(b)->counts, (std::vector<uint64_t>{3, 0, 0}));
  EXPECT_FALSE(b.Minus(a).has_value());  // a count went down: the daemon restarted
  BucketCounts other{{1, 3}, {1, 1, 1}};
  EXPECT_FALSE(a.Add(other));
  EXPECT_EQ(a.Total(), 10u);
}

// Two fake daemons (their registries rendered as text) on a fake clock.
class DashboardTest : public ::testing::Test {
 protected:
  DashboardTest() {
    ingest_joined_ = ingest_.GetHistogram("freshet_freshness_seconds", "f", FreshnessBuckets(), {{"stage", "joined"}});
    learner_trained_ = learner_.GetHistogram("freshet_freshness_seconds", "f", FreshnessBuckets(), {{"stage", "trained"}});
    events_ = ingest_.GetCounter("freshet_ingest_events_total", "e", {{"topic", "impressions"}});
    lag_ = ingest_.GetGauge("freshet_ingest_consumer_lag_messages", "l", {{"topic", "impressions"}, {"partition", "0"}});
    auc_ = learner_.GetGauge("freshet_learner_auc", "a", {{"task", "click"}});
    Dashboard::Options o;
    o.sources = {LocalSource("learner", &learner_),
                 {"ingest", "127.0.0.1:1", [this]() -> StatusOr<std::string> {
                    if (ingest_down_) return UnavailableError("cannot reach 127.0.0.1:1");
                    return ingest_.Render();
                  }}};
    o.window_ms = 5000;
    o.capacity = 10;
    o.clock = &clock_;
    dash_ = std::make_unique<Dashboard>(std::move(o));
  }

  FakeClock clock_;
  MetricsRegistry ingest_, learner_;
  Histogram *ingest_joined_, *learner_trained_;
  Counter* events_;
  Gauge *lag_, *auc_;
  bool ingest_down_ = false;
  std::unique_ptr<Dashboard> dash_;
};

TEST_F(DashboardTest, FreshnessQuantilesCoverOnlyTheWindow) {
  for (int i = 0; i < 1000; ++i) ingest_joined_->Observe(100.0);  // old, slow samples
  dash_->SampleOnce();
  // Over the next 5 s every new sample is 0.2 s fresh.
  for (int s = 0; s < 5; ++s) {
    clock_.AdvanceMs(1000);
    for (int i = 0; i < 100; ++i) ingest_joined_->Observe(0.2);
    dash_->SampleOnce();
  }
  const Dashboard::Quantiles q = dash_->RecentFreshness("joined", 5000);
  EXPECT_EQ(q.count, 500u);
  // Within the bucket around 0.2 s (bounds grow by sqrt(2)), far from the old 100 s.
  EXPECT_GT(q.p50, 0.2 / std::sqrt(2.0));
  EXPECT_LE(q.p99, 0.2 * std::sqrt(2.0));
  EXPECT_EQ(dash_->RecentFreshness("trained", 5000).count, 0u);  // nothing trained yet
  const std::string json = dash_->DataJson();
  EXPECT_NE(json.find("\"freshness.joined.p50\":[null,"), std::string::npos) << json;
  // Stages nobody exports have no series; the page says "no data yet".
  EXPECT_EQ(json.find("freshness.published"), std::string::npos) << json;
}

TEST_F(DashboardTest, RatesGaugesAndNoDataMarkers) {
  auc_->Set(-1);  // the learner's "not enough samples"
  dash_->SampleOnce();
  clock_.AdvanceMs(2000);
  events_->Inc(300);
  lag_->Set(42);
  auc_->Set(0.75);
  dash_->SampleOnce();
  const std::string json = dash_->DataJson();
  EXPECT_NE(json.find("\"rate.events\":[null,150]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"lag.impressions\":[0,42]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"auc.click\":[null,0.75]"), std::string::npos) << json;
  EXPECT_NE(json.find("{\"name\":\"ingest\",\"address\":\"127.0.0.1:1\",\"ok\":true"), std::string::npos) << json;
}

TEST_F(DashboardTest, UnreachableSourceIsShownAndItsWindowSkipped) {
  dash_->SampleOnce();
  ingest_down_ = true;
  clock_.AdvanceMs(1000);
  dash_->SampleOnce();
  const std::string json = dash_->DataJson();
  EXPECT_NE(json.find("\"name\":\"ingest\",\"address\":\"127.0.0.1:1\",\"ok\":false,\"error\":\"UNAVAILABLE: cannot reach"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("\"rate.events\""), std::string::npos) << "no rate without two scrapes of ingest: " << json;
}

TEST_F(DashboardTest, GateBlocksAndRollbacksBecomeTimelineEvents) {
  Counter* blocked = learner_.GetCounter("freshet_publisher_blocked_total", "b", {{"reason", "auc_floor"}});
  Gauge* version = learner_.GetGauge("freshet_publisher_version", "v");
  version->Set(7);
  dash_->SampleOnce();
  clock_.AdvanceMs(1000);
  blocked->Inc();
  version->Set(5);  // went down: a rollback
  dash_->SampleOnce();
  const std::string json = dash_->DataJson();
  EXPECT_NE(json.find("\"kind\":\"blocked\",\"detail\":\"auc_floor\",\"count\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"kind\":\"rollback\",\"detail\":\"published version 7 -> 5\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"version.published\":[7,5]"), std::string::npos) << json;
}

TEST_F(DashboardTest, RingIsBounded) {
  for (int i = 0; i < 25; ++i) {
    dash_->SampleOnce();
    clock_.AdvanceMs(1000);
  }
  const std::string json = dash_->DataJson();
  const size_t t = json.find("\"t\":[");
  const std::string times = json.substr(t, json.find(']', t) - t);
  EXPECT_EQ(std::count(times.begin(), times.end(), ','), 9) << times;  // capacity 10
}

TEST_F(DashboardTest, PageNamesTheMissingChartPackage) {
  Dashboard::Options o;
  o.chart_js_path = "/nonexistent/chart.min.js";
  Dashboard missing(std::move(o));
  AdminServer admin({}, &learner_);
  missing.Register(&admin);
  HttpRequest req;
  req.method = "GET";
  req.path = "/dashboard";
  HttpResponse page = admin.Dispatch(req);
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("libjs-chart.js"), std::string::npos) << page.body;
  req.path = "/dashboard/dashboard.js";
  EXPECT_NE(admin.Dispatch(req).body.find("/dashboard/data"), std::string::npos);
  req.path = "/dashboard/data";
  HttpResponse data = admin.Dispatch(req);
  EXPECT_EQ(data.status, 200);
  EXPECT_NE(data.body.find("\"stages\":[\"joined\",\"trained\",\"published\",\"applied\",\"served\"]"), std::string::npos);
}

}  // namespace
}  // namespace freshet::ops
