// ScrapedMetrics: one parsed Prometheus text exposition (what any daemon's /metrics
// serves), so ops tools read other daemons the way Prometheus does: the dashboard
// sampler (ops/dashboard.h) and `freshet ops status` (ops/ops_status.cc). Reading
// /metrics rather than an in-process registry keeps `freshet run` and the
// multi-process layout on the same code path.
//
//   auto m = ScrapeMetrics("127.0.0.1:9401", 1000);
//   double lag = m->Sum("freshet_ingest_consumer_lag_messages").value_or(0);
//   auto joined = m->Histogram("freshet_freshness_seconds", {{"stage", "joined"}});
//   double p99 = BucketQuantile(joined->bounds, joined->counts, 0.99);
//
// Only the sample lines matter: `# HELP`/`# TYPE` lines are skipped; timestamps after
// the value are ignored. A malformed line is an error naming its line number.
//
// Thread-safety: a parsed ScrapedMetrics is immutable; share it freely.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace freshet::ops {

struct MetricSample {
  std::string name;
  Labels labels;  // in exposition order
  double value = 0;

  // "" when the sample has no such label.
  const std::string& Label(const std::string& key) const;
  // True when every (key, value) of `match` is among the labels.
  bool Matches(const Labels& match) const;
};

// A histogram as per-bucket (not cumulative) counts; counts.size() == bounds.size()+1.
struct BucketCounts {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;

  uint64_t Total() const;
  // this - older, bucket by bucket. nullopt when the bounds differ or a count went
  // down (the daemon restarted): the window is then unknown, not zero.
  std::optional<BucketCounts> Minus(const BucketCounts& older) const;
  // Adds `other` bucket by bucket. False (and no change) when the bounds differ.
  bool Add(const BucketCounts& other);
};

class ScrapedMetrics {
 public:
  static StatusOr<ScrapedMetrics> Parse(std::string_view text);

  const std::vector<MetricSample>& samples() const { return samples_; }
  // Sum over every sample named `name` whose labels include `match`; nullopt if none.
  std::optional<double> Sum(const std::string& name, const Labels& match = {}) const;
  // Per value of `label`, the sum over samples named `name` matching `match`.
  std::map<std::string, double> SumBy(const std::string& name, const std::string& label,
                                      const Labels& match = {}) const;
  // Histogram `name` (its `_bucket` series) restricted to `match`; series with the
  // same bounds are added. nullopt if there is no such series.
  std::optional<BucketCounts> Histogram(const std::string& name, const Labels& match = {}) const;
  // The distinct values of `label` among samples named `name`.
  std::vector<std::string> LabelValues(const std::string& name, const std::string& label) const;

 private:
  std::vector<MetricSample> samples_;
};

// "host:port" → (host, port). InvalidArgument naming `what` (e.g. "--ingest") when
// malformed.
StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& address, const std::string& what);

// GET http://address/metrics: the exposition text. UNAVAILABLE naming the address
// when it cannot be reached or answers with a non-200 status.
StatusOr<std::string> FetchMetricsText(const std::string& address, int timeout_ms);

// GET http://address/metrics and parse it. UNAVAILABLE naming the address when it
// cannot be reached or answers with a non-200 status.
StatusOr<ScrapedMetrics> ScrapeMetrics(const std::string& address, int timeout_ms);

}  // namespace freshet::ops
