// `freshet run`: the whole pipeline in one process on an embedded default. Today it
// starts Kafka (embedded, or --kafka HOST:PORT), the traffic simulator and the admin
// server; ingest, learner, publisher and serving plug in here as they land. It prints
// the Kafka bootstrap string first (so kcat can attach), a progress line every few
// seconds, and a summary when it stops (Ctrl-C, SIGTERM or --duration).
#include <cinttypes>
#include <cstdio>

#include "common/admin_http.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/signals.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "learner/gpu.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "ops/flags.h"
#include "ops/kafka_event_sink.h"
#include "ops/simulator.h"

namespace freshet::ops {
namespace {

constexpr int64_t kProgressIntervalMs = 5000;
constexpr int64_t kTickMs = 20;

// Applies command-line overrides on top of the file config and re-validates.
StatusOr<FreshetConfig> ConfigFromFlags(const Flags& flags) {
  ASSIGN_OR_RETURN(FreshetConfig config, LoadEffectiveConfig(flags.Get("config")));
  ASSIGN_OR_RETURN(int64_t seed, flags.GetInt("seed", static_cast<int64_t>(config.simulator().seed()), 0, INT64_MAX));
  config.mutable_simulator()->set_seed(static_cast<uint64_t>(seed));
  ASSIGN_OR_RETURN(double rate, flags.GetDouble("rate", config.simulator().impressions_per_second(), 0.001, 1e6));
  config.mutable_simulator()->set_impressions_per_second(rate);
  if (flags.Has("kafka")) config.mutable_kafka()->set_bootstrap_servers(flags.Get("kafka"));
  if (flags.Has("admin-port")) {
    ASSIGN_OR_RETURN(int64_t port, flags.GetInt("admin-port", 0, 0, 65535));
    config.mutable_admin()->set_learner_port(static_cast<int>(port));
  }
  RETURN_IF_ERROR(Validate(config));
  return config;
}

struct Totals {
  uint64_t impressions = 0;
  uint64_t labels = 0;
};

std::string StatusJson(const FreshetConfig& config, const std::string& bootstrap, const TrafficSimulator& sim,
                       const ingest::KafkaProducer& producer, int64_t started_ms) {
  JsonWriter w;
  w.BeginObject()
      .Key("component").String("freshet-run")
      .Key("uptime_s").Double((Clock::Real()->NowMs() - started_ms) / 1000.0)
      .Key("kafka").BeginObject()
      .Key("bootstrap").String(bootstrap)
      .Key("embedded").Bool(config.kafka().bootstrap_servers().empty())
      .Key("delivered").Int(static_cast<int64_t>(producer.delivered()))
      .Key("failed").Int(static_cast<int64_t>(producer.failed()))
      .EndObject()
      .Key("simulator").BeginObject()
      .Key("impressions").Int(static_cast<int64_t>(sim.stats().impressions))
      .Key("labels").Int(static_cast<int64_t>(sim.stats().labels))
      .Key("pending_events").Int(static_cast<int64_t>(sim.pending_events()))
      .Key("seed").Int(static_cast<int64_t>(config.simulator().seed()))
      .EndObject()
      .EndObject();
  return w.str();
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"config", "duration", "seed", "kafka", "rate", "admin-port"}, {});
  if (!flags.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", flags.status().message().c_str());
    return 2;
  }
  auto duration_s = flags->GetDouble("duration", 0, 0, 1e9);
  auto loaded = ConfigFromFlags(*flags);
  if (!duration_s.ok() || !loaded.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", (!duration_s.ok() ? duration_s.status() : loaded.status()).message().c_str());
    return 2;
  }
  const FreshetConfig config = std::move(loaded).value();
  LogLevel level;
  if (ParseLogLevel(config.log_level(), &level)) SetMinLogLevel(level);

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  Clock* clock = Clock::Real();
  const int64_t started_ms = clock->NowMs();
  const KafkaConfig& kc = config.kafka();

  // 1. Kafka.
  std::unique_ptr<ingest::EmbeddedKafka> embedded;
  std::string bootstrap = kc.bootstrap_servers();
  const std::vector<std::string> topics = {kc.impressions_topic(), kc.labels_topic(), kc.samples_topic(),
                                           kc.deadletter_topic()};
  if (bootstrap.empty()) {
    auto k = ingest::EmbeddedKafka::Start(kc.embedded_brokers());
    if (!k.ok()) {
      std::fprintf(stderr, "freshet run: %s\n", k.status().ToString().c_str());
      return 1;
    }
    embedded = std::move(k).value();
    for (const auto& t : topics) {
      Status s = embedded->CreateTopic(t, kc.partitions());
      if (!s.ok()) {
        std::fprintf(stderr, "freshet run: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    bootstrap = embedded->bootstrap();
  } else {
    ingest::KafkaClientOptions opt;
    opt.bootstrap_servers = bootstrap;
    opt.properties.insert(kc.client_properties().begin(), kc.client_properties().end());
    Status s = ingest::EnsureTopics(opt, topics, kc.partitions(), std::min(3, kc.embedded_brokers()));
    if (!s.ok()) {
      std::fprintf(stderr, "freshet run: kafka at %s: %s\n(create the topics %s, %s, %s, %s with %d partitions, or check --kafka)\n",
                   bootstrap.c_str(), s.ToString().c_str(), topics[0].c_str(), topics[1].c_str(), topics[2].c_str(),
                   topics[3].c_str(), kc.partitions());
      return 1;
    }
  }
  std::printf("freshet: kafka bootstrap=%s (%s)\n", bootstrap.c_str(),
              embedded ? ("embedded, " + std::to_string(kc.embedded_brokers()) + " brokers").c_str() : "external");
  std::fflush(stdout);

  // 2. Producer for the simulator.
  ingest::KafkaProducer::Options popt;
  popt.bootstrap_servers = bootstrap;
  popt.client_id = "freshet-simulator";
  popt.linger_ms = kc.linger_ms();
  popt.enqueue_timeout_ms = 1000;  // the loop retries; this only bounds one attempt
  popt.properties.insert(kc.client_properties().begin(), kc.client_properties().end());
  auto producer = ingest::KafkaProducer::Create(popt);
  if (!producer.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", producer.status().ToString().c_str());
    return 1;
  }

  // 3. Admin server (the learner's port: the pipeline's front door and, later, the
  // dashboard).
  MetricsRegistry metrics;
  KafkaEventSink sink(producer->get(), kc.impressions_topic(), kc.labels_topic(), &metrics);
  TrafficSimulator sim(config.simulator(), started_ms);
  Gauge* pending = metrics.GetGauge("freshet_simulator_pending_events", "Labels (and held-back impressions) not yet due");
  Counter* produce_errors = metrics.GetCounter("freshet_simulator_produce_errors_total", "Produce calls that failed and were retried");
  AdminServer::Options aopt;
  aopt.component = "freshet-run";
  aopt.bind_address = config.admin().bind_address();
  aopt.port = config.admin().learner_port();
  AdminServer admin(aopt, &metrics);
  std::mutex sim_mu;  // the admin thread reads simulator stats
  admin.AddReadinessCheck("kafka", [&] { return (*producer)->CheckReachable(1000); });
  admin.AddReadinessCheck("producer", [&] { return (*producer)->first_error(); });
  admin.SetStatusProvider([&] {
    std::lock_guard<std::mutex> lock(sim_mu);
    return StatusJson(config, bootstrap, sim, **producer, started_ms);
  });
  admin.SetConfigText(ConfigToText(config));
  metrics.AddCollector([&] {
    std::lock_guard<std::mutex> lock(sim_mu);
    pending->Set(static_cast<double>(sim.pending_events()));
  });
  Status s = admin.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("freshet: admin %s (/metrics /status /readyz /config)\n", admin.url().c_str());
  std::printf("freshet: %s\n", learner::DescribeGpu(learner::QueryGpu()).c_str());
  std::printf("freshet: simulator seed=%" PRIu64 " rate=%.0f impressions/s users=%d items=%d\n",
              config.simulator().seed(), config.simulator().impressions_per_second(), config.simulator().num_users(),
              config.simulator().num_items());
  std::fflush(stdout);

  // 4. Main loop: advance the simulator to the wall clock, report progress.
  const int64_t end_ms = *duration_s > 0 ? started_ms + static_cast<int64_t>(*duration_s * 1000) : INT64_MAX;
  int64_t next_progress = started_ms + kProgressIntervalMs;
  Totals last;
  RateLimiter error_log(5000);
  while (!stop.requested()) {
    const int64_t now = clock->NowMs();
    if (now >= end_ms) {
      stop.Request("duration reached");
      break;
    }
    {
      std::lock_guard<std::mutex> lock(sim_mu);
      Status adv = sim.AdvanceTo(now, &sink);
      if (!adv.ok()) {
        produce_errors->Inc();
        int64_t suppressed = 0;
        if (error_log.Allow(now, &suppressed)) {
          LOG_WARNING("simulator_produce_failed").Kv("status", adv.ToString()).Kv("suppressed", suppressed)
              .Kv("action", "retrying; events wait in the simulator");
        }
      }
    }
    if (now >= next_progress) {
      const auto& st = sim.stats();
      const double secs = kProgressIntervalMs / 1000.0;
      std::printf("progress t=%.0fs impressions/s=%.0f labels/s=%.0f impressions=%" PRIu64 " labels=%" PRIu64
                  " delivered=%" PRIu64 " failed=%" PRIu64 " pending_labels=%zu\n",
                  (now - started_ms) / 1000.0, (st.impressions - last.impressions) / secs,
                  (st.labels - last.labels) / secs, st.impressions, st.labels, (*producer)->delivered(),
                  (*producer)->failed(), sim.pending_events());
      std::fflush(stdout);
      last = {st.impressions, st.labels};
      next_progress += kProgressIntervalMs;
    }
    stop.WaitForMs(kTickMs);
  }

  // 5. Stop in reverse order: intake first, then flush what is in flight.
  LOG_INFO("run_stopping").Kv("reason", stop.reason());
  Status flushed = (*producer)->Flush(5000);
  admin.Stop();
  const auto& st = sim.stats();
  std::string kinds;
  for (const auto& [kind, n] : st.labels_by_kind) kinds += " " + LabelKind_Name(kind) + "=" + std::to_string(n);
  std::printf("summary reason=\"%s\" duration_s=%.1f impressions=%" PRIu64 " labels=%" PRIu64 " delivered=%" PRIu64
              " failed=%" PRIu64 " flush=%s\nsummary labels_by_kind:%s\n",
              stop.reason().c_str(), (clock->NowMs() - started_ms) / 1000.0, st.impressions, st.labels,
              (*producer)->delivered(), (*producer)->failed(), flushed.ok() ? "ok" : flushed.ToString().c_str(),
              kinds.c_str());
  std::fflush(stdout);
  return flushed.ok() ? 0 : 1;
}

}  // namespace freshet::ops
