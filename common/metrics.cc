// Metrics registry and Prometheus text rendering; see metrics.h.
#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/check.h"

namespace freshet {
namespace {

bool ValidName(const std::string& s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void AtomicAdd(std::atomic<double>* a, double v) {
  double cur = a->load(std::memory_order_relaxed);
  while (!a->compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// `{a="x",b="y"}` with an optional extra label appended (histogram `le`).
std::string LabelText(const Labels& labels, const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

}  // namespace

void Counter::Inc(double v) {
  DCHECK(v >= 0);
  AtomicAdd(&value_, v);
}

void Gauge::Add(double v) { AtomicAdd(&value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 1; i < bounds_.size(); ++i) {
    CHECK(bounds_[i] > bounds_[i - 1]) << "histogram bounds must increase";
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

size_t Histogram::BucketOf(double v) const {
  return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
}

void Histogram::Observe(double v) {
  buckets_[BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, v);
}

void Histogram::Add(const uint64_t* counts, uint64_t count, double sum) {
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    if (counts[i] != 0) buckets_[i].fetch_add(counts[i], std::memory_order_relaxed);
  }
  count_.fetch_add(count, std::memory_order_relaxed);
  AtomicAdd(&sum_, sum);
}

void LocalHistogram::Flush() {
  if (count_ == 0) return;
  h_->Add(counts_.data(), count_, sum_);
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t total = 0;
  for (size_t j = 0; j <= i && j <= bounds_.size(); ++j) total += buckets_[j].load(std::memory_order_relaxed);
  return total;
}

double Histogram::Quantile(double q) const {
  std::vector<uint64_t> counts(bounds_.size() + 1);
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = buckets_[i].load(std::memory_order_relaxed);
  return BucketQuantile(bounds_, counts, q);
}

double BucketQuantile(const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double q) {
  CHECK(counts.size() == bounds.size() + 1) << "BucketQuantile: " << counts.size() << " counts for "
                                            << bounds.size() << " bounds";
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(n);
  uint64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t in_bucket = counts[i];
    if (in_bucket > 0 && static_cast<double>(below + in_bucket) >= rank) {
      if (i == bounds.size()) return bounds.empty() ? 0.0 : bounds.back();  // +Inf bucket
      const double lo = i == 0 ? std::min(0.0, bounds[0]) : bounds[i - 1];
      const double hi = bounds[i];
      const double frac = (rank - static_cast<double>(below)) / static_cast<double>(in_bucket);
      return lo + (hi - lo) * frac;
    }
    below += in_bucket;
  }
  return bounds.empty() ? 0.0 : bounds.back();
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  CHECK(start > 0 && factor > 1 && count > 0);
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

std::vector<double> FreshnessBuckets() { return ExponentialBuckets(0.005, std::sqrt(2.0), 36); }

Histogram* FreshnessHistogram(MetricsRegistry* registry, const std::string& stage) {
  return registry->GetHistogram("freshet_freshness_seconds", "Age of data at each pipeline stage", FreshnessBuckets(),
                                {{"stage", stage}});
}

MetricsRegistry::Family* MetricsRegistry::FamilyFor(const std::string& name, const std::string& help,
                                                    Type type, const Labels& labels) {
  CHECK(ValidName(name, true)) << "invalid metric name '" << name << "'";
  std::vector<std::string> label_names;
  for (const auto& [k, v] : labels) {
    CHECK(ValidName(k, false) && k != "le") << "invalid label name '" << k << "' on " << name;
    label_names.push_back(k);
  }
  auto [it, inserted] = families_.try_emplace(name);
  Family& f = it->second;
  if (inserted) {
    f.help = help;
    f.type = type;
    f.label_names = label_names;
  } else {
    CHECK(f.type == type) << "metric " << name << " registered twice with different types";
    CHECK(f.label_names == label_names) << "metric " << name << " registered with other label names";
  }
  return &f;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, Type::kCounter, labels);
  auto& slot = f->counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, Type::kGauge, labels);
  auto& slot = f->gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, Type::kHistogram, labels);
  if (f->histograms.empty()) {
    f->bounds = bounds;
  } else {
    CHECK(f->bounds == bounds) << "histogram " << name << " registered with other buckets";
  }
  auto& slot = f->histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return slot.get();
}

void MetricsRegistry::AddCollector(std::function<void()> collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (auto& c : collectors) c();

  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + LabelText(labels) + " " + FormatValue(c->Value()) + "\n";
    }
    for (const auto& [labels, g] : f.gauges) {
      out += name + LabelText(labels) + " " + FormatValue(g->Value()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      for (size_t i = 0; i <= h->bounds().size(); ++i) {
        std::string le = i < h->bounds().size() ? FormatValue(h->bounds()[i]) : "+Inf";
        out += name + "_bucket" + LabelText(labels, "le", le) + " " +
               std::to_string(h->CumulativeCount(i)) + "\n";
      }
      out += name + "_sum" + LabelText(labels) + " " + FormatValue(h->Sum()) + "\n";
      out += name + "_count" + LabelText(labels) + " " + std::to_string(h->Count()) + "\n";
    }
  }
  return out;
}

}  // namespace freshet
