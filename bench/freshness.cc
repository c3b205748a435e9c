// Freshness benchmark: runs the real `freshet run` (embedded Kafka, simulator,
// ingest, learner with its publisher, two serving replicas) at several simulator
// rates, and per rate reports throughput and freshness p50/p99 of every stage the
// pipeline exports (joined, trained, published on the learner; applied and served
// on the replicas), measured over a fixed interval after a warm-up from the
// difference of two /metrics scrapes of each daemon.
//
// Under the default `wait` policy a sample is emitted only when the longest task
// window closes (minutes), so `joined` would measure the window; the benchmark uses
// `ingest { policy: POLICY_IMMEDIATE }` so every stage is measured within seconds.
// The goal (issue 7) is on the stages after joining: sample joined → applied on
// every replica, p99 < 2 s at the default rate. The headline is the `applied` p99 of
// the slowest replica (each replica's own histogram); `served` is the age of what a
// replica serves, sampled each second, so its p99 also counts the time between
// versions (publisher.publish_interval_ms).
//
//   bench_freshness [--binary PATH (default: the built freshet)] [--rates 250,500,1000] [--warmup S] [--seconds S]
//
// Last line: {"bench":"freshness","metric":"applied_all_replicas_p99_s","value":N,"unit":"s",
//             "rate":<the default rate, or the last one>,"rates":[{per rate}...]}.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/metrics.h"
#include "ops/dashboard.h"
#include "ops/metrics_scrape.h"

namespace {

using freshet::BucketQuantile;
using freshet::JsonWriter;
using freshet::ops::BucketCounts;
using freshet::ops::ScrapedMetrics;
using freshet::ops::ScrapeMetrics;

constexpr double kDefaultRate = 2000;  // simulator.impressions_per_second's default

struct Scrape {
  std::chrono::steady_clock::time_point at;
  std::vector<ScrapedMetrics> daemons;  // ingest, serving replicas, learner (start-up order)
};

std::string After(const std::string& line, const std::string& marker) {
  const size_t at = line.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  const size_t end = line.find_first_of(" /\n", start);
  return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::optional<Scrape> ScrapeAll(const std::vector<std::string>& addresses) {
  Scrape s{std::chrono::steady_clock::now(), {}};
  for (const std::string& a : addresses) {
    auto m = ScrapeMetrics(a, 2000);
    if (!m.ok()) {
      std::fprintf(stderr, "bench_freshness: %s\n", m.status().ToString().c_str());
      return std::nullopt;
    }
    s.daemons.push_back(std::move(m).value());
  }
  return s;
}

double CounterRate(const Scrape& a, const Scrape& b, const std::string& name) {
  double before = 0, after = 0;
  for (const auto& m : a.daemons) before += m.Sum(name).value_or(0);
  for (const auto& m : b.daemons) after += m.Sum(name).value_or(0);
  return (after - before) / std::chrono::duration<double>(b.at - a.at).count();
}

std::optional<BucketCounts> Window(const Scrape& a, const Scrape& b, size_t d, const std::string& stage) {
  auto now = b.daemons[d].Histogram("freshet_freshness_seconds", {{"stage", stage}});
  auto then = a.daemons[d].Histogram("freshet_freshness_seconds", {{"stage", stage}});
  if (!now || !then) return std::nullopt;
  return now->Minus(*then);
}

// Writes one rate's object into `w`; returns the slowest replica's applied p99 (or -1).
double Measure(const Scrape& a, const Scrape& b, double rate, JsonWriter* w) {
  w->BeginObject().Key("rate").Double(rate);
  w->Key("events_per_s").Double(CounterRate(a, b, "freshet_ingest_events_total"));
  w->Key("samples_per_s").Double(CounterRate(a, b, "freshet_ingest_samples_total"));
  w->Key("trained_per_s").Double(CounterRate(a, b, "freshet_learner_samples_total"));
  std::printf("rate=%.0f", rate);
  for (const std::string& stage : freshet::ops::FreshnessStages()) {
    BucketCounts window;  // every daemon's observations of the stage together
    for (size_t d = 0; d < b.daemons.size(); ++d)
      if (auto diff = Window(a, b, d, stage)) window.Add(*diff);
    if (window.Total() == 0) continue;
    const double p50 = BucketQuantile(window.bounds, window.counts, 0.5);
    const double p99 = BucketQuantile(window.bounds, window.counts, 0.99);
    w->Key(stage + "_p50_s").Double(p50).Key(stage + "_p99_s").Double(p99);
    std::printf(" %s=%.3f/%.3fs", stage.c_str(), p50, p99);
  }
  // "On every replica": the worst replica's own p99.
  double applied_all_p99 = -1;
  for (size_t d = 0; d < b.daemons.size(); ++d) {
    auto diff = Window(a, b, d, "applied");
    if (!diff || diff->Total() == 0) continue;
    applied_all_p99 = std::max(applied_all_p99, BucketQuantile(diff->bounds, diff->counts, 0.99));
  }
  w->Key("applied_all_replicas_p99_s").Double(applied_all_p99);
  std::printf(" applied(slowest replica) p99=%.3fs", applied_all_p99);
  std::printf(" events/s=%.0f trained/s=%.0f\n", CounterRate(a, b, "freshet_ingest_events_total"),
              CounterRate(a, b, "freshet_learner_samples_total"));
  std::fflush(stdout);
  w->EndObject();
  return applied_all_p99;
}

}  // namespace

int main(int argc, char** argv) {
  std::string binary = FRESHET_BINARY_PATH;
  std::vector<double> rates = {250, 500, 1000, kDefaultRate};
  double warmup = 8, seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--binary")) binary = argv[i + 1];
    else if (!std::strcmp(argv[i], "--warmup")) warmup = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rates")) {
      rates.clear();
      for (std::string r = argv[i + 1]; !r.empty();) {
        const size_t comma = r.find(',');
        rates.push_back(std::stod(r.substr(0, comma)));
        r = comma == std::string::npos ? "" : r.substr(comma + 1);
      }
    } else {
      std::fprintf(stderr, "usage: bench_freshness [--binary PATH] [--rates R,R,...] [--warmup S] [--seconds S]\n");
      return 2;
    }
  }
  const std::string data_dir = "/tmp/bench_freshness_" + std::to_string(getpid());
  const std::string config = data_dir + ".pbtxt";
  std::ofstream(config) << "ingest { policy: POLICY_IMMEDIATE }\n";
  std::printf("bench_freshness: %s, immediate policy, warm-up %.0f s, measured %.0f s per rate\n", binary.c_str(),
              warmup, seconds);

  JsonWriter rows;
  rows.BeginArray();
  double headline = -1, headline_rate = 0;
  for (double rate : rates) {
    const int duration = static_cast<int>(warmup + seconds + 3);
    const std::string cmd = binary + " run --admin-port 0 --config " + config + " --rate " + std::to_string(rate) +
                            " --duration " + std::to_string(duration) + " --data-dir " + data_dir + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return 1;
    std::vector<std::string> addresses;  // ingest, serving replicas, learner: in the order run prints them
    bool learner_seen = false;
    char buf[4096];
    while (!learner_seen && fgets(buf, sizeof buf, p) != nullptr) {
      const std::string line = buf;
      learner_seen = line.rfind("freshet: admin ", 0) == 0;
      if (learner_seen || line.rfind("freshet: ingest admin ", 0) == 0 || line.rfind("freshet: serving replica ", 0) == 0)
        addresses.push_back(After(line, "http://"));
    }
    std::optional<Scrape> a, b;
    if (learner_seen) {
      std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
      a = ScrapeAll(addresses);
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      b = ScrapeAll(addresses);
    }
    while (fgets(buf, sizeof buf, p) != nullptr) {
    }
    const int rc = pclose(p);
    if (!a || !b || rc != 0) {
      std::fprintf(stderr, "bench_freshness: `%s` failed (exit %d)\n", cmd.c_str(), rc);
      return 1;
    }
    const double applied_p99 = Measure(*a, *b, rate, &rows);
    if (headline_rate != kDefaultRate) {
      headline = applied_p99;
      headline_rate = rate;
    }
  }
  rows.EndArray();
  std::remove(config.c_str());
  std::filesystem::remove_all(data_dir);
  JsonWriter w;
  w.BeginObject().Key("bench").String("freshness").Key("metric").String("applied_all_replicas_p99_s").Key("value").Double(headline)
      .Key("unit").String("s").Key("rate").Double(headline_rate).Key("rates").Raw(rows.str()).EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
