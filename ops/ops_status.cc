// `freshet ops status`: one table with every component's health, readiness, model
// version, lag and freshness, read from the daemons' admin endpoints (/healthz,
// /readyz, /metrics) the way Prometheus would, so it works the same against
// `freshet run` and against separate daemons. Addresses default to the config's
// admin ports (--config FILE, else the defaults 9401, 9402, 9410+i).
//
//   freshet ops status [--ingest HOST:PORT] [--learner HOST:PORT]
//                      [--serving HOST:PORT,...] [--window S] [--config FILE]
//
// --serving "" checks no replica (a pipeline without serving).
// Freshness is p50/p99 over --window seconds (two scrapes that far apart; default
// 1). Exit 0 when every component is up and ready, 1 when any is unreachable or not
// ready (one line per problem after the table says which and what to check), 2 on
// bad flags.
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>
#include <thread>

#include "common/http_client.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "ops/dashboard.h"
#include "ops/flags.h"
#include "ops/metrics_scrape.h"

namespace freshet::ops {
namespace {

constexpr int kTimeoutMs = 2000;

struct Component {
  Component(std::string name, std::string kind, std::string address, std::string hint)
      : name(std::move(name)), kind(std::move(kind)), address(std::move(address)), hint(std::move(hint)) {}

  std::string name;  // "ingest", "learner", "serving-0"
  std::string kind;  // "ingest", "learner", "serving"
  std::string address;
  std::string hint;  // what to check when it is unreachable
  // Filled by Probe.
  bool up = false;
  bool ready = false;
  std::string problem;
  std::optional<ScrapedMetrics> first, second;  // /metrics at the window's start and end
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

// REQUIRES: c->address parses as HOST:PORT.
void Probe(Component* c) {
  auto hp = ParseHostPort(c->address, "--" + c->kind);
  auto health = HttpGet(hp->first, hp->second, "/healthz", kTimeoutMs);
  if (!health.ok() || health->status != 200) {
    c->problem = "unreachable: " + (health.ok() ? "/healthz answered " + std::to_string(health->status)
                                                : health.status().ToString()) + "; " + c->hint;
    return;
  }
  c->up = true;
  auto ready = HttpGet(hp->first, hp->second, "/readyz", kTimeoutMs);
  c->ready = ready.ok() && ready->status == 200;
  if (!c->ready) {
    std::string why = ready.ok() ? ready->body : ready.status().ToString();
    for (char& ch : why)
      if (ch == '\n') ch = ' ';
    c->problem = "not ready: " + why;
  }
  auto m = ScrapeMetrics(c->address, kTimeoutMs);
  if (m.ok()) {
    c->first = std::move(m).value();
  } else if (c->problem.empty()) {
    c->problem = "metrics unreadable: " + m.status().ToString();
  }
}

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string VersionOf(const Component& c) {
  if (!c.second) return "-";
  const ScrapedMetrics& m = *c.second;
  if (auto v = m.Sum("freshet_serving_version")) return Format("v%.0f", *v);
  if (auto v = m.Sum("freshet_publisher_version")) return Format("v%.0f", *v);
  if (auto v = m.Sum("freshet_learner_checkpoint_version"); v && *v > 0) return Format("ckpt %.0f", *v);
  return "-";
}

std::string LagOf(const Component& c, std::optional<double> published) {
  if (!c.second) return "-";
  if (c.kind == "serving") {
    auto served = c.second->Sum("freshet_serving_version");
    if (served && published) return Format("%.0f versions", *published - *served);
    return "-";
  }
  std::optional<double> lag;
  for (const MetricSample& s : c.second->samples())
    if (s.name.size() > 22 && s.name.compare(s.name.size() - 22, 22, "_consumer_lag_messages") == 0)
      lag = lag.value_or(0) + s.value;
  return lag ? Format("%.0f msgs", *lag) : "-";
}

std::string FreshnessOf(const Component& c) {
  if (!c.first || !c.second) return "-";
  std::string out;
  for (const std::string& stage : FreshnessStages()) {
    auto now = c.second->Histogram("freshet_freshness_seconds", {{"stage", stage}});
    if (!now) continue;
    auto before = c.first->Histogram("freshet_freshness_seconds", {{"stage", stage}});
    std::optional<BucketCounts> window = before ? now->Minus(*before) : std::nullopt;
    if (!out.empty()) out += " ";
    if (!window || window->Total() == 0) {
      out += stage + " -";
    } else {
      out += stage + " " + Format("%.2f", BucketQuantile(window->bounds, window->counts, 0.5)) + "/" +
             Format("%.2fs", BucketQuantile(window->bounds, window->counts, 0.99));
    }
  }
  return out.empty() ? "-" : out;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i)
      line += i + 1 == row.size() ? row[i] : row[i] + std::string(width[i] - row[i].size() + 2, ' ');
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

int OpsStatusCommand(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"ingest", "learner", "serving", "window", "config"}, {});
  if (!flags.ok()) {
    std::fprintf(stderr, "freshet ops status: %s\n", flags.status().message().c_str());
    return 2;
  }
  auto config = LoadEffectiveConfig(flags->Get("config"));
  auto window_s = flags->GetDouble("window", 1.0, 0.0, 60.0);
  if (!config.ok() || !window_s.ok()) {
    std::fprintf(stderr, "freshet ops status: %s\n",
                 (config.ok() ? window_s.status() : config.status()).message().c_str());
    return 2;
  }
  const AdminConfig& admin = config->admin();
  const std::string host = admin.bind_address() == "0.0.0.0" ? "127.0.0.1" : admin.bind_address();
  std::vector<Component> components;
  components.emplace_back("ingest", "ingest", flags->Get("ingest", host + ":" + std::to_string(admin.ingest_port())),
                          "is `freshet ingest` running? --ingest HOST:PORT names its admin address");
  components.emplace_back("learner", "learner",
                          flags->Get("learner", host + ":" + std::to_string(admin.learner_port())),
                          "is `freshet learn` (or `freshet run`) running? --learner HOST:PORT");
  std::vector<std::string> serving;
  if (flags->Has("serving")) {
    serving = Split(flags->Get("serving"), ',');
  } else {
    for (int i = 0; i < config->serving().replicas(); ++i)
      serving.push_back(host + ":" + std::to_string(admin.serving_base_port() + i));
  }
  for (size_t i = 0; i < serving.size(); ++i)
    components.emplace_back("serving-" + std::to_string(i), "serving", serving[i],
                            "is `freshet serve` replica " + std::to_string(i) + " running? --serving HOST:PORT,...");

  for (const Component& c : components) {
    if (auto hp = ParseHostPort(c.address, "--" + c.kind); !hp.ok()) {
      std::fprintf(stderr, "freshet ops status: %s\n", hp.status().message().c_str());
      return 2;
    }
  }
  bool any_up = false;
  for (Component& c : components) {
    Probe(&c);
    any_up = any_up || c.first.has_value();
  }
  if (any_up) std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(*window_s * 1000)));
  std::optional<double> published;
  for (Component& c : components) {
    if (!c.first) continue;
    auto m = ScrapeMetrics(c.address, kTimeoutMs);
    c.second = m.ok() ? std::move(m).value() : *c.first;
    if (auto v = c.second->Sum("freshet_publisher_version")) published = *v;
  }

  std::vector<std::vector<std::string>> rows = {
      {"COMPONENT", "ADDRESS", "HEALTH", "READY", "VERSION", "LAG", "FRESHNESS p50/p99 over " + Format("%gs", *window_s)}};
  for (const Component& c : components)
    rows.push_back({c.name, c.address, c.up ? "up" : "DOWN", c.up ? (c.ready ? "ready" : "NOT READY") : "-",
                    VersionOf(c), LagOf(c, published), FreshnessOf(c)});
  PrintTable(rows);
  for (const Component& c : components) {
    if (c.kind != "learner" || !c.second) continue;
    auto twin = c.second->Sum("freshet_learner_twin_consistency");
    if (!twin) continue;
    if (*twin < 0) {
      std::printf("learner TWIN: GSU/ESU top-k overlap not measured yet (every consistency_interval_steps)\n");
    } else {
      std::printf("learner TWIN: GSU/ESU top-k overlap %.2f (1 = the cached projections pick what live weights "
                  "would; low: refresh the projection cache more often)\n", *twin);
    }
  }
  int problems = 0;
  for (const Component& c : components) {
    if (c.problem.empty()) continue;
    ++problems;
    std::printf("freshet ops status: %s at %s %s\n", c.name.c_str(), c.address.c_str(), c.problem.c_str());
  }
  std::fflush(stdout);
  return problems == 0 ? 0 : 1;
}

}  // namespace freshet::ops
