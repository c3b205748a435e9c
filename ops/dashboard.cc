// Dashboard sampler: scrapes, derives series, keeps the ring, writes the JSON feed
// (see dashboard.h; the HTTP side and the page are in dashboard_page.cc).
#include "ops/dashboard.h"

#include <algorithm>

#include "common/json.h"

namespace freshet::ops {
namespace {

constexpr int64_t kHistoryMs = 65000;  // cumulative scrapes kept for windows (RecentFreshness)
constexpr size_t kMaxEvents = 200;

// The counters whose per-second rates the dashboard draws: series name → metric.
const std::vector<std::pair<std::string, std::string>>& RateCounters() {
  static const std::vector<std::pair<std::string, std::string>> kRates = {
      {"events", "freshet_ingest_events_total"},
      {"samples", "freshet_ingest_samples_total"},
      {"trained", "freshet_learner_samples_total"},
  };
  return kRates;
}

// Counters whose increments are marks on the version timeline: kind → metric.
const std::vector<std::pair<std::string, std::string>>& EventCounters() {
  static const std::vector<std::pair<std::string, std::string>> kEvents = {
      {"blocked", "freshet_publisher_blocked_total"},
      {"rollback", "freshet_publisher_rollbacks_total"},
  };
  return kEvents;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

DashboardSource LocalSource(const std::string& name, const MetricsRegistry* registry) {
  return {name, "", [registry]() -> StatusOr<std::string> { return registry->Render(); }};
}

DashboardSource HttpSource(const std::string& name, const std::string& address, int timeout_ms) {
  return {name, address, [address, timeout_ms] { return FetchMetricsText(address, timeout_ms); }};
}

Dashboard::Dashboard(Options options) : options_(std::move(options)), clock_(options_.clock ? options_.clock : Clock::Real()) {
  source_state_.assign(options_.sources.size(), {false, "not scraped yet"});
}

Dashboard::~Dashboard() { Stop(); }

void Dashboard::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Dashboard::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Dashboard::Run() {
  std::unique_lock<std::mutex> lock(run_mu_);
  while (!stop_) {
    lock.unlock();
    SampleOnce();
    lock.lock();
    run_cv_.wait_for(lock, std::chrono::milliseconds(options_.interval_ms), [this] { return stop_; });
  }
}

void Dashboard::SampleOnce() {
  Snapshot snap;
  snap.t_ms = clock_->NowMs();
  std::map<std::string, double> values;  // gauges of this point
  std::vector<std::pair<bool, std::string>> states;
  std::map<std::string, double> zero_share;
  std::map<std::string, std::map<std::string, double>> gates;
  for (const DashboardSource& src : options_.sources) {
    StatusOr<std::string> text = src.fetch();
    StatusOr<ScrapedMetrics> m = text.ok() ? ScrapedMetrics::Parse(*text) : StatusOr<ScrapedMetrics>(text.status());
    if (!m.ok()) {
      states.emplace_back(false, m.status().ToString());
      continue;
    }
    states.emplace_back(true, "");
    for (const std::string& stage : FreshnessStages())
      if (auto h = m->Histogram("freshet_freshness_seconds", {{"stage", stage}}))
        snap.freshness[src.name + "|" + stage] = std::move(*h);
    for (const auto& [series, metric] : RateCounters())
      if (auto v = m->Sum(metric)) snap.counters[src.name + "|" + series] = *v;
    for (const auto& [kind, metric] : EventCounters())
      for (const auto& [reason, v] : m->SumBy(metric, "reason")) snap.counters[src.name + "|" + kind + "|" + reason] = v;
    for (const MetricSample& s : m->samples())
      if (EndsWith(s.name, "_consumer_lag_messages")) values["lag." + s.Label("topic")] += s.value;
    // The learner reports AUC -1 (and 0 before its first refresh) while a task has
    // too few samples of both classes: no data, not a value.
    for (const auto& [task, auc] : m->SumBy("freshet_learner_auc", "task"))
      values["auc." + task] = auc > 0 ? auc : std::nan("");
    if (auto v = m->Sum("freshet_publisher_version")) values["version.published"] = *v;
    if (auto v = m->Sum("freshet_serving_version")) values["version." + src.name] = *v;
    for (const MetricSample& s : m->samples()) {
      if (s.name == "freshet_learner_expert_zero_share") zero_share[s.Label("expert")] = s.value;
      if (s.name == "freshet_learner_gate_weight_mean") gates[s.Label("gate")][s.Label("expert")] = s.value;
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  source_state_ = std::move(states);
  if (!zero_share.empty()) zero_share_ = std::move(zero_share);
  if (!gates.empty()) gates_ = std::move(gates);
  if (!history_.empty()) {
    const Snapshot& prev = history_.back();
    const double dt = (snap.t_ms - prev.t_ms) / 1000.0;
    for (const auto& [key, cur] : snap.counters) {
      auto it = prev.counters.find(key);
      if (it == prev.counters.end() || cur < it->second || dt <= 0) continue;  // new source or restart
      const size_t bar = key.find('|');
      const std::string rest = key.substr(bar + 1);
      const size_t bar2 = rest.find('|');
      if (bar2 == std::string::npos) {
        values["rate." + rest] += (cur - it->second) / dt;
      } else if (cur > it->second) {
        events_.push_back({snap.t_ms, rest.substr(0, bar2), rest.substr(bar2 + 1), cur - it->second});
      }
    }
  }
  if (auto it = values.find("version.published"); it != values.end()) {
    if (it->second < last_published_)
      events_.push_back({snap.t_ms, "rollback", "published version " + std::to_string(static_cast<int64_t>(last_published_)) +
                                                    " -> " + std::to_string(static_cast<int64_t>(it->second)), 1});
    last_published_ = it->second;
  }
  while (events_.size() > kMaxEvents) events_.pop_front();
  history_.push_back(std::move(snap));
  const Snapshot& newest = history_.back();
  if (history_.size() >= 2) {
    const Snapshot* older = SnapshotBefore(newest.t_ms - options_.window_ms);
    std::map<std::string, bool> present;  // stages some source exports
    for (const auto& [key, h] : newest.freshness) present[key.substr(key.find('|') + 1)] = true;
    for (const auto& [stage, unused] : present) {
      const Quantiles q = Window(*older, newest, stage);
      values["freshness." + stage + ".p50"] = q.p50;
      values["freshness." + stage + ".p99"] = q.p99;
    }
  }
  AppendPoint(newest, std::move(values));
  while (history_.size() > 2 && history_.front().t_ms < newest.t_ms - kHistoryMs) history_.pop_front();
}

Dashboard::Quantiles Dashboard::Window(const Snapshot& older, const Snapshot& newer, const std::string& stage) {
  BucketCounts sum;
  for (const auto& [key, h] : newer.freshness) {
    if (!EndsWith(key, "|" + stage)) continue;
    auto it = older.freshness.find(key);
    if (it == older.freshness.end()) continue;  // the source was not reachable then
    if (auto d = h.Minus(it->second)) sum.Add(*d);
  }
  Quantiles q;
  q.count = sum.Total();
  if (q.count > 0) {
    q.p50 = BucketQuantile(sum.bounds, sum.counts, 0.5);
    q.p99 = BucketQuantile(sum.bounds, sum.counts, 0.99);
  }
  return q;
}

const Dashboard::Snapshot* Dashboard::SnapshotBefore(int64_t t_ms) const {
  for (auto it = history_.rbegin(); it != history_.rend(); ++it)
    if (it->t_ms <= t_ms) return &*it;
  return &history_.front();
}

void Dashboard::AppendPoint(const Snapshot& snap, std::map<std::string, double> values) {
  const double kNone = std::nan("");
  times_.push_back(snap.t_ms);
  for (auto& [name, s] : series_) {
    auto it = values.find(name);
    s.push_back(it == values.end() ? kNone : it->second);
    if (it != values.end()) values.erase(it);
  }
  for (const auto& [name, v] : values) {  // series seen for the first time
    std::deque<double>& s = series_[name];
    s.assign(times_.size() - 1, kNone);
    s.push_back(v);
  }
  while (times_.size() > options_.capacity) {
    times_.pop_front();
    for (auto& [name, s] : series_) s.pop_front();
  }
}

Dashboard::Quantiles Dashboard::RecentFreshness(const std::string& stage, int64_t window_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (history_.size() < 2) return {};
  const Snapshot& newest = history_.back();
  const Snapshot* older = SnapshotBefore(newest.t_ms - window_ms);
  if (older == &newest) return {};
  return Window(*older, newest, stage);
}

std::string Dashboard::DataJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  JsonWriter w;
  w.BeginObject().Key("now_ms").Int(clock_->NowMs()).Key("interval_ms").Int(options_.interval_ms)
      .Key("window_ms").Int(options_.window_ms);
  w.Key("stages").BeginArray();
  for (const std::string& s : FreshnessStages()) w.String(s);
  w.EndArray().Key("t").BeginArray();
  for (int64_t t : times_) w.Int(t);
  w.EndArray().Key("series").BeginObject();
  for (const auto& [name, s] : series_) {
    w.Key(name).BeginArray();
    for (double v : s) w.Double(v);
    w.EndArray();
  }
  w.EndObject().Key("events").BeginArray();
  for (const Event& e : events_)
    w.BeginObject().Key("t").Int(e.t_ms).Key("kind").String(e.kind).Key("detail").String(e.detail)
        .Key("count").Double(e.count).EndObject();
  w.EndArray().Key("experts").BeginObject().Key("zero_share").BeginObject();
  for (const auto& [expert, v] : zero_share_) w.Key(expert).Double(v);
  w.EndObject().Key("gates").BeginObject();
  for (const auto& [gate, experts] : gates_) {
    w.Key(gate).BeginObject();
    for (const auto& [expert, v] : experts) w.Key(expert).Double(v);
    w.EndObject();
  }
  w.EndObject().EndObject().Key("sources").BeginArray();
  for (size_t i = 0; i < options_.sources.size() && i < source_state_.size(); ++i)
    w.BeginObject().Key("name").String(options_.sources[i].name).Key("address").String(options_.sources[i].address)
        .Key("ok").Bool(source_state_[i].first).Key("error").String(source_state_[i].second).EndObject();
  w.EndArray().EndObject();
  return w.str();
}

}  // namespace freshet::ops
