#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

namespace freshet {
namespace {

TEST(MetricsTest, CounterGaugeRender) {
  MetricsRegistry r;
  Counter* c = r.GetCounter("freshet_ingest_deadletter_total", "Events sent to dead-letter",
                            {{"reason", "malformed_protobuf"}});
  c->Inc();
  c->Inc(2);
  EXPECT_EQ(r.GetCounter("freshet_ingest_deadletter_total", "x", {{"reason", "malformed_protobuf"}}), c);
  r.GetGauge("freshet_serving_version", "Version served")->Set(42);
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE freshet_ingest_deadletter_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_ingest_deadletter_total{reason=\"malformed_protobuf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_serving_version 42\n"), std::string::npos) << text;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsRegistry r;
  r.GetCounter("x_total", "help", {{"path", "a\"b\\c\nd"}})->Inc();
  EXPECT_NE(r.Render().find("x_total{path=\"a\\\"b\\\\c\\nd\"} 1"), std::string::npos) << r.Render();
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram* h = r.GetHistogram("freshet_freshness_seconds", "Freshness", {0.1, 1, 10}, {{"stage", "joined"}});
  for (double v : {0.05, 0.5, 0.7, 5.0, 50.0}) h->Observe(v);
  std::string text = r.Render();
  EXPECT_NE(text.find("freshet_freshness_seconds_bucket{stage=\"joined\",le=\"0.10000000000000001\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_freshness_seconds_bucket{stage=\"joined\",le=\"1\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_freshness_seconds_bucket{stage=\"joined\",le=\"+Inf\"} 5"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_freshness_seconds_count{stage=\"joined\"} 5"), std::string::npos) << text;
  EXPECT_NEAR(h->Sum(), 56.25, 1e-9);
}

// A value equal to a bound belongs to that bound's bucket (le = "less or equal").
TEST(MetricsTest, BucketOfPutsBoundsInTheirOwnBucket) {
  Histogram h({0.1, 1, 10});
  EXPECT_EQ(h.BucketOf(-5), 0u);
  EXPECT_EQ(h.BucketOf(0.1), 0u);
  EXPECT_EQ(h.BucketOf(0.2), 1u);
  EXPECT_EQ(h.BucketOf(1), 1u);
  EXPECT_EQ(h.BucketOf(10), 2u);
  EXPECT_EQ(h.BucketOf(10.5), 3u);  // +Inf
  EXPECT_EQ(h.BucketOf(std::nan("")), 0u);
}

// A LocalHistogram shows nothing until flushed, then exactly what Observe would have.
TEST(MetricsTest, LocalHistogramAddsUpLikeObserve) {
  const std::vector<double> bounds = ExponentialBuckets(0.25, 2, 14);
  Histogram direct(bounds), batched(bounds);
  LocalHistogram local(&batched);
  std::vector<double> values;
  for (int i = 0; i < 500; ++i) values.push_back(0.01 * i * i);
  for (double v : values) {
    direct.Observe(v);
    local.Observe(v);
  }
  EXPECT_EQ(batched.Count(), 0u);
  EXPECT_EQ(local.pending(), values.size());
  local.Flush();
  EXPECT_EQ(local.pending(), 0u);
  local.Flush();  // nothing pending: no change
  EXPECT_EQ(batched.Count(), direct.Count());
  EXPECT_NEAR(batched.Sum(), direct.Sum(), 1e-6);
  for (size_t i = 0; i <= bounds.size(); ++i) EXPECT_EQ(batched.CumulativeCount(i), direct.CumulativeCount(i)) << i;
  local.Observe(3);  // flushes add up
  local.Flush();
  EXPECT_EQ(batched.Count(), direct.Count() + 1);
}

TEST(MetricsTest, HistogramQuantileInterpolates) {
  Histogram h({1, 2, 3, 4});
  EXPECT_TRUE(std::isnan(h.Quantile(0.5)));
  for (int i = 0; i < 100; ++i) h.Observe(1.5);  // all in (1, 2]
  EXPECT_GT(h.Quantile(0.5), 1.0);
  EXPECT_LE(h.Quantile(0.5), 2.0);
  EXPECT_DOUBLE_EQ(h.Quantile(1.0), 2.0);
}

TEST(MetricsTest, BucketQuantileOfAWindowIgnoresOlderObservations) {
  // Bounds 1,2,3 + Inf. The window (difference of two snapshots) holds 10 values in
  // (2, 3]; the cumulative histogram also holds 1000 older values in (0, 1].
  const std::vector<double> bounds = {1, 2, 3};
  const std::vector<uint64_t> before = {1000, 0, 0, 0};
  const std::vector<uint64_t> after = {1000, 0, 10, 0};
  std::vector<uint64_t> window(after.size());
  for (size_t i = 0; i < after.size(); ++i) window[i] = after[i] - before[i];
  EXPECT_DOUBLE_EQ(BucketQuantile(bounds, window, 0.5), 2.5);  // halfway through (2, 3]
  EXPECT_DOUBLE_EQ(BucketQuantile(bounds, window, 0.99), 2.99);
  EXPECT_LE(BucketQuantile(bounds, after, 0.5), 1.0);          // cumulative: dominated by the old values
  EXPECT_TRUE(std::isnan(BucketQuantile(bounds, {0, 0, 0, 0}, 0.5)));
  EXPECT_DOUBLE_EQ(BucketQuantile(bounds, {0, 0, 0, 4}, 0.5), 3.0);  // +Inf bucket: the highest bound
}

TEST(MetricsTest, FreshnessBucketsCoverMillisecondsToMinutes) {
  const std::vector<double> b = FreshnessBuckets();
  EXPECT_DOUBLE_EQ(b.front(), 0.005);
  EXPECT_GT(b.back(), 600.0);  // a 10-minute label window still lands in a finite bucket
  for (size_t i = 1; i < b.size(); ++i) EXPECT_NEAR(b[i] / b[i - 1], std::sqrt(2.0), 1e-9);
  // A quantile from these buckets is within one bucket's width of the true value.
  Histogram h(b);
  for (int i = 1; i <= 1000; ++i) h.Observe(0.001 * i);  // uniform on (0, 1] s
  EXPECT_NEAR(h.Quantile(0.5), 0.5, 0.5 * (std::sqrt(2.0) - 1));
  EXPECT_NEAR(h.Quantile(0.99), 0.99, 0.99 * (std::sqrt(2.0) - 1));
}

TEST(MetricsTest, CollectorsRunBeforeRender) {
  MetricsRegistry r;
  Gauge* g = r.GetGauge("queue_depth", "depth");
  int depth = 7;
  r.AddCollector([&] { g->Set(depth); });
  EXPECT_NE(r.Render().find("queue_depth 7"), std::string::npos);
  depth = 9;
  EXPECT_NE(r.Render().find("queue_depth 9"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry r;
  Counter* c = r.GetCounter("hits_total", "hits");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([c] { for (int i = 0; i < 10000; ++i) c->Inc(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Value(), 40000);
}

TEST(MetricsDeathTest, InvalidNameIsABug) {
  MetricsRegistry r;
  EXPECT_DEATH(r.GetCounter("bad-name", "x"), "invalid metric name");
  r.GetCounter("twice", "x");
  EXPECT_DEATH(r.GetGauge("twice", "x"), "different types");
}

}  // namespace
}  // namespace freshet
