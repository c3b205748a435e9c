// Prometheus text parsing and scraping for ops tools; see metrics_scrape.h.
#include "ops/metrics_scrape.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "common/http_client.h"

namespace freshet::ops {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

StatusOr<double> ParseValue(std::string_view v) {
  if (v == "+Inf" || v == "Inf") return std::numeric_limits<double>::infinity();
  if (v == "-Inf") return -std::numeric_limits<double>::infinity();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  const std::string s(v);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return InvalidArgumentError("bad value '" + s + "'");
  return d;
}

// Parses `{a="x",b="y"}` starting at text[*pos] == '{'; leaves *pos after '}'.
Status ParseLabels(std::string_view text, size_t* pos, Labels* out) {
  size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    const size_t key_start = i;
    while (i < text.size() && NameChar(text[i])) ++i;
    std::string key(text.substr(key_start, i - key_start));
    if (key.empty() || i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"')
      return InvalidArgumentError("bad label near '" + std::string(text.substr(key_start, 20)) + "'");
    i += 2;
    std::string value;
    for (; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        ++i;
        value += text[i] == 'n' ? '\n' : text[i];
      } else {
        value += text[i];
      }
    }
    if (i >= text.size()) return InvalidArgumentError("unterminated label value of '" + key + "'");
    ++i;  // closing quote
    out->emplace_back(std::move(key), std::move(value));
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return InvalidArgumentError("unterminated label set");
  *pos = i + 1;
  return Status::Ok();
}

StatusOr<MetricSample> ParseLine(std::string_view line) {
  MetricSample s;
  size_t i = 0;
  while (i < line.size() && NameChar(line[i])) ++i;
  s.name = std::string(line.substr(0, i));
  if (s.name.empty()) return InvalidArgumentError("no metric name");
  if (i < line.size() && line[i] == '{') RETURN_IF_ERROR(ParseLabels(line, &i, &s.labels));
  while (i < line.size() && line[i] == ' ') ++i;
  size_t end = line.find(' ', i);  // an optional timestamp follows the value
  ASSIGN_OR_RETURN(s.value, ParseValue(line.substr(i, end == std::string_view::npos ? end : end - i)));
  return s;
}

}  // namespace

const std::string& MetricSample::Label(const std::string& key) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : labels)
    if (k == key) return v;
  return kEmpty;
}

bool MetricSample::Matches(const Labels& match) const {
  for (const auto& [k, v] : match) {
    bool found = false;
    for (const auto& [lk, lv] : labels) found = found || (lk == k && lv == v);
    if (!found) return false;
  }
  return true;
}

uint64_t BucketCounts::Total() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

std::optional<BucketCounts> BucketCounts::Minus(const BucketCounts& older) const {
  if (older.bounds != bounds || older.counts.size() != counts.size()) return std::nullopt;
  BucketCounts d{bounds, counts};
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < older.counts[i]) return std::nullopt;
    d.counts[i] = counts[i] - older.counts[i];
  }
  return d;
}

bool BucketCounts::Add(const BucketCounts& other) {
  if (bounds.empty() && counts.empty()) {
    *this = other;
    return true;
  }
  if (other.bounds != bounds || other.counts.size() != counts.size()) return false;
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  return true;
}

StatusOr<ScrapedMetrics> ScrapedMetrics::Parse(std::string_view text) {
  ScrapedMetrics m;
  size_t start = 0;
  for (int line_no = 1; start < text.size(); ++line_no) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto s = ParseLine(line);
    if (!s.ok()) return s.status().Annotate("metrics line " + std::to_string(line_no));
    m.samples_.push_back(std::move(s).value());
  }
  return m;
}

std::optional<double> ScrapedMetrics::Sum(const std::string& name, const Labels& match) const {
  std::optional<double> sum;
  for (const MetricSample& s : samples_)
    if (s.name == name && s.Matches(match)) sum = sum.value_or(0) + s.value;
  return sum;
}

std::map<std::string, double> ScrapedMetrics::SumBy(const std::string& name, const std::string& label,
                                                    const Labels& match) const {
  std::map<std::string, double> out;
  for (const MetricSample& s : samples_)
    if (s.name == name && s.Matches(match)) out[s.Label(label)] += s.value;
  return out;
}

std::vector<std::string> ScrapedMetrics::LabelValues(const std::string& name, const std::string& label) const {
  std::set<std::string> seen;
  for (const MetricSample& s : samples_)
    if (s.name == name) seen.insert(s.Label(label));
  return {seen.begin(), seen.end()};
}

std::optional<BucketCounts> ScrapedMetrics::Histogram(const std::string& name, const Labels& match) const {
  // Group the _bucket samples by their label set without `le`; each group is one
  // cumulative series, turned into per-bucket counts and added to the result.
  const std::string bucket = name + "_bucket";
  std::map<Labels, std::vector<std::pair<double, double>>> series;  // labels → (le, cumulative)
  for (const MetricSample& s : samples_) {
    if (s.name != bucket || !s.Matches(match)) continue;
    Labels key;
    double le = std::numeric_limits<double>::quiet_NaN();
    for (const auto& [k, v] : s.labels) {
      if (k == "le") {
        auto parsed = ParseValue(v);
        if (parsed.ok()) le = *parsed;
      } else {
        key.emplace_back(k, v);
      }
    }
    if (!std::isnan(le)) series[key].emplace_back(le, s.value);
  }
  std::optional<BucketCounts> out;
  for (auto& [labels, points] : series) {
    std::sort(points.begin(), points.end());
    if (points.empty() || !std::isinf(points.back().first)) continue;  // no +Inf bucket: not a histogram
    BucketCounts h;
    double prev = 0;
    for (const auto& [le, cum] : points) {
      if (!std::isinf(le)) h.bounds.push_back(le);
      h.counts.push_back(static_cast<uint64_t>(std::max(0.0, cum - prev)));
      prev = std::max(prev, cum);
    }
    if (!out) {
      out = std::move(h);
    } else {
      out->Add(h);  // series with other bounds are left out rather than mixed
    }
  }
  return out;
}

StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& address, const std::string& what) {
  const size_t colon = address.rfind(':');
  const std::string hint = what + " takes HOST:PORT, e.g. 127.0.0.1:9401; got '" + address + "'";
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return InvalidArgumentError(hint);
  const std::string port_text = address.substr(colon + 1);
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535) return InvalidArgumentError(hint);
  return std::make_pair(address.substr(0, colon), static_cast<int>(port));
}

StatusOr<std::string> FetchMetricsText(const std::string& address, int timeout_ms) {
  ASSIGN_OR_RETURN(auto hp, ParseHostPort(address, "address"));
  ASSIGN_OR_RETURN(HttpResult r, HttpGet(hp.first, hp.second, "/metrics", timeout_ms));
  if (r.status != 200) return UnavailableError("http://" + address + "/metrics answered " + std::to_string(r.status));
  return std::move(r.body);
}

StatusOr<ScrapedMetrics> ScrapeMetrics(const std::string& address, int timeout_ms) {
  ASSIGN_OR_RETURN(std::string text, FetchMetricsText(address, timeout_ms));
  auto parsed = ScrapedMetrics::Parse(text);
  if (!parsed.ok()) return parsed.status().Annotate("http://" + address + "/metrics");
  return parsed;
}

}  // namespace freshet::ops
