// Metrics registry: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format (version 0.0.4) for /metrics.
//
//   MetricsRegistry registry;
//   Counter* dead = registry.GetCounter("freshet_ingest_deadletter_total",
//                                       "Events sent to dead-letter", {{"reason", "bad_proto"}});
//   dead->Inc();
//
// A family (name) has one help text, one type and one label-name set; each distinct
// label-value set is a child. Get* returns the same pointer for the same name and
// labels, valid for the registry's lifetime, so hot paths look a metric up once.
// There is no global registry: each daemon owns one and passes it down.
//
// Thread-safety: Get*, updates and Render may run concurrently. Updates are lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace freshet {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // REQUIRES: v >= 0 (counters only go up)
  void Inc(double v = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // REQUIRES: bounds strictly increasing (the +Inf bucket is implicit).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // The bucket `v` belongs to: the first bound >= v; bounds().size() is +Inf (and NaN
  // goes to bucket 0, as Observe puts it).
  size_t BucketOf(double v) const;
  // Observations counted elsewhere (LocalHistogram): counts[i] in bucket i, for the
  // bounds().size() + 1 buckets; `count` of them in all, summing to `sum`.
  void Add(const uint64_t* counts, uint64_t count, double sum);

  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i]; i == bounds().size() is +Inf.
  uint64_t CumulativeCount(size_t i) const;
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  // Estimate of quantile q in [0,1] by linear interpolation inside the bucket, as
  // Prometheus' histogram_quantile does. NaN when empty.
  double Quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Observations of one Histogram counted in plain memory by one thread and added to it
// by Flush(): for code that observes per event and can flush per batch, where an
// Observe's three atomic updates would be a noticeable share of the work. Until
// Flush, the histogram does not show them.
//
// Thread-safety: one thread at a time; Flush may run concurrently with readers of
// the histogram.
class LocalHistogram {
 public:
  explicit LocalHistogram(Histogram* h) : h_(h), counts_(h->bounds().size() + 1) {}
  void Observe(double v) {
    ++counts_[h_->BucketOf(v)];
    ++count_;
    sum_ += v;
  }
  uint64_t pending() const { return count_; }
  void Flush();

 private:
  Histogram* h_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Exponential bucket bounds: start, start*factor, ... (count bounds).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// The bounds of freshet_freshness_seconds, shared by every stage and daemon so that
// stages compare bucket for bucket and replicas' histograms add up: 5 ms to ~15 min,
// factor sqrt(2) (a quantile estimate is within ~20 % of the truth).
std::vector<double> FreshnessBuckets();
// freshet_freshness_seconds{stage} (DESIGN.md §7) with those bounds: every component
// registers its stage through this, so the buckets and help text always agree.
class MetricsRegistry;
Histogram* FreshnessHistogram(MetricsRegistry* registry, const std::string& stage);

// Quantile q in [0,1] of a histogram given as per-bucket (NOT cumulative) counts,
// counts.size() == bounds.size() + 1 (the last is +Inf), interpolating linearly
// inside the bucket as Prometheus' histogram_quantile does; a rank in the +Inf
// bucket returns the highest bound. NaN when the counts sum to 0. Used on the
// difference of two snapshots for a quantile over a time window (dashboard,
// progress line).
double BucketQuantile(const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double q);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // A name or label name that is not a valid Prometheus identifier, or a name reused
  // with another type or label-name set, is a bug: these CHECK-fail.
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const Labels& labels = {});

  // Runs before every Render, to refresh gauges that mirror other state (queue
  // depth, store size). Collectors must not call Render.
  void AddCollector(std::function<void()> collector);

  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string help;
    Type type;
    std::vector<std::string> label_names;
    std::vector<double> bounds;  // histograms only
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family* FamilyFor(const std::string& name, const std::string& help, Type type,
                    const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;              // guarded by mu_
  std::vector<std::function<void()>> collectors_;       // guarded by mu_
};

}  // namespace freshet
