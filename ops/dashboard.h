// Dashboard: the freshness dashboard the learner serves at /dashboard (DESIGN.md §7).
// A sampler thread scrapes every daemon's Prometheus metrics once per interval (the
// learner in-process, ingest and serving replicas over HTTP, so `freshet run` and the
// multi-process layout look the same), derives time series and keeps them in a
// bounded ring; the page (ops/dashboard/, embedded at build time) polls
// /dashboard/data and draws them with Chart.js from Debian's libjs-chart.js.
//
//   Dashboard dash({.sources = {LocalSource("learner", &registry), HttpSource("ingest", "127.0.0.1:9401")}});
//   dash.Register(&admin);  // before admin.Start()
//   dash.Start();
//   ... dash.RecentFreshness("trained", 5000) ...
//   dash.Stop();
//
// /dashboard/data (JSON; series are aligned with "t", null = no data at that point):
//   {"t": [ms, ...], "interval_ms": 1000, "window_ms": 5000,
//    "stages": ["joined", "trained", "published", "applied", "served"],
//    "series": {"freshness.<stage>.p50"|".p99": [s],        freshet_freshness_seconds{stage}
//               "rate.events" | "rate.samples" | "rate.trained": [/s],
//               "lag.<topic>": [messages],                   *_consumer_lag_messages
//               "auc.<task>": [..],                          freshet_learner_auc{task}
//               "version.published": [..],                   freshet_publisher_version
//               "version.<source>": [..]},                   freshet_serving_version per replica
//    "events": [{"t", "kind": "blocked"|"rollback", "detail", "count"}],   version timeline marks
//    "experts": {"zero_share": {expert: v}, "gates": {gate: {expert: w}}}, newest values
//    "sources": [{"name", "address", "ok", "error"}]}
// Freshness quantiles are over the last window_ms (difference of two scrapes), not
// since start. Stages the pipeline does not have yet (published, applied, served
// until the publisher and serving land) simply have no series; the page says "no
// data yet". Rollbacks come from freshet_publisher_rollbacks_total{reason} or a
// published version that goes down; gate blocks from freshet_publisher_blocked_total.
//
// Thread-safety: Register before the admin server starts; Start/Stop from one
// thread; DataJson, RecentFreshness and SampleOnce from any thread.
#pragma once

#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/admin_http.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "ops/metrics_scrape.h"

namespace freshet::ops {

// One daemon whose metrics the dashboard reads.
struct DashboardSource {
  std::string name;     // "learner", "ingest", "serving-0"
  std::string address;  // shown on the page; "" for in-process
  std::function<StatusOr<std::string>()> fetch;  // Prometheus text
};
DashboardSource LocalSource(const std::string& name, const MetricsRegistry* registry);
DashboardSource HttpSource(const std::string& name, const std::string& address, int timeout_ms = 500);

inline const std::vector<std::string>& FreshnessStages() {
  static const std::vector<std::string> kStages = {"joined", "trained", "published", "applied", "served"};
  return kStages;
}

class Dashboard {
 public:
  struct Options {
    std::vector<DashboardSource> sources;
    int64_t interval_ms = 1000;  // one scrape of every source per interval
    size_t capacity = 600;       // points kept (10 min at 1 s)
    int64_t window_ms = 5000;    // freshness quantiles over this window
    std::string chart_js_path = "/usr/share/javascript/chart.js/chart.min.js";
    Clock* clock = nullptr;      // nullptr: Clock::Real()
  };
  struct Quantiles {
    double p50 = std::nan("");
    double p99 = std::nan("");
    uint64_t count = 0;  // observations in the window
  };

  explicit Dashboard(Options options);
  ~Dashboard();  // Stop()
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // /dashboard (page), /dashboard/dashboard.js, /dashboard/chart.js, /dashboard/data.
  // The page is an error page naming the package when chart_js_path is missing.
  void Register(AdminServer* admin);
  void Start();
  void Stop();  // idempotent

  // Scrapes every source once and appends a point (the sampler thread calls this).
  void SampleOnce();
  std::string DataJson() const;
  // Freshness of `stage` over roughly the last window_ms, from the scrapes kept.
  Quantiles RecentFreshness(const std::string& stage, int64_t window_ms) const;

 private:
  // Cumulative state of one scrape, kept briefly to compute windows and rates.
  struct Snapshot {
    int64_t t_ms = 0;
    std::map<std::string, BucketCounts> freshness;  // "source|stage" → cumulative
    std::map<std::string, double> counters;        // "source|series" → cumulative
  };
  struct Event {
    int64_t t_ms;
    std::string kind, detail;
    double count;
  };

  void Run();
  // Quantiles of `stage` between `older` and `newer`, summed over sources.
  static Quantiles Window(const Snapshot& older, const Snapshot& newer, const std::string& stage);
  const Snapshot* SnapshotBefore(int64_t t_ms) const;  // REQUIRES: mu_ held
  void AppendPoint(const Snapshot& snap, std::map<std::string, double> values);  // REQUIRES: mu_ held

  Options options_;
  Clock* clock_;

  mutable std::mutex mu_;
  std::deque<int64_t> times_;                              // guarded by mu_
  std::map<std::string, std::deque<double>> series_;       // guarded by mu_, aligned with times_
  std::deque<Snapshot> history_;                           // guarded by mu_, the last ~window
  std::deque<Event> events_;                               // guarded by mu_
  std::map<std::string, double> zero_share_;               // guarded by mu_
  std::map<std::string, std::map<std::string, double>> gates_;  // guarded by mu_
  std::vector<std::pair<bool, std::string>> source_state_;      // guarded by mu_
  double last_published_ = std::nan("");                   // guarded by mu_

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;  // guarded by run_mu_
  std::thread thread_;
};

}  // namespace freshet::ops
