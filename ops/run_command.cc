// `freshet run`: the whole pipeline in one process on an embedded default: Kafka
// (embedded, or --kafka HOST:PORT), the traffic simulator or a data-set replay
// (--replay kuairand / replay.dataset, ops/event_source.h), ingest, the learner with
// its publisher and dashboard, and the serving replicas. It prints the Kafka
// bootstrap string first (so kcat can attach), a progress line every few seconds, and
// a summary when it stops (Ctrl-C, SIGTERM or --duration).
#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "common/clock.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/signals.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "learner/gpu.h"
#include "ops/commands.h"
#include "ops/command_util.h"
#include "ops/config.h"
#include "ops/flags.h"
#include "ops/ingest_component.h"
#include "ops/learner_component.h"
#include "ops/serving_fleet.h"
#include "ops/event_source.h"
#include "ops/kafka_event_sink.h"

namespace freshet::ops {
namespace {

constexpr int64_t kProgressIntervalMs = 5000;
constexpr int64_t kTickMs = 20;

// Applies run's own overrides on top of the effective config and re-validates.
// --admin-port 0 puts every admin server on a free port (tests); another value moves
// the front door (the learner's port).
Status ApplyRunFlags(const Flags& flags, FreshetConfig* config) {
  ASSIGN_OR_RETURN(int64_t seed, flags.GetInt("seed", static_cast<int64_t>(config->simulator().seed()), 0, INT64_MAX));
  config->mutable_simulator()->set_seed(static_cast<uint64_t>(seed));
  ASSIGN_OR_RETURN(double rate, flags.GetDouble("rate", config->simulator().impressions_per_second(), 0.001, 1e6));
  config->mutable_simulator()->set_impressions_per_second(rate);
  // --replay itself was applied before the defaults (SetUpCommand).
  if (flags.Has("rate") && !config->replay().dataset().empty())
    config->mutable_replay()->set_impressions_per_second(rate);
  if (flags.Has("admin-port")) {
    ASSIGN_OR_RETURN(int64_t port, flags.GetInt("admin-port", 0, 0, 65535));
    config->mutable_admin()->set_learner_port(static_cast<int>(port));
    if (port == 0) {
      config->mutable_admin()->set_ingest_port(0);
      config->mutable_admin()->set_serving_base_port(0);
      config->mutable_serving()->set_push_base_port(0);
    }
  }
  return Validate(*config);
}

std::string DescribeModel(const FreshetConfig& config) {
  const ModelConfig& m = config.learner().model();
  return ModelFamily_Name(m.family()) + " tasks=" + std::to_string(config.tasks_size()) +
         " batch=" + std::to_string(config.learner().batch_size()) + " backend=cpu";
}

int64_t LongestWindowMs(const FreshetConfig& config) {
  int64_t longest = 0;
  for (const auto& t : config.tasks()) longest = std::max(longest, t.window_ms());
  return longest;
}

// " joined=0.41/1.20s trained=0.08/0.35s" over the last window_ms; "-" for a stage
// without observations in the window.
std::string FreshnessSummary(const Dashboard& dashboard, int64_t window_ms) {
  std::string out;
  for (const char* stage : {"joined", "trained"}) {
    const Dashboard::Quantiles q = dashboard.RecentFreshness(stage, window_ms);
    char buf[96];
    if (q.count == 0) {
      std::snprintf(buf, sizeof buf, " %s=-", stage);
    } else {
      std::snprintf(buf, sizeof buf, " %s=%.2f/%.2fs", stage, q.p50, q.p99);
    }
    out += buf;
  }
  return out;
}

struct Totals {
  uint64_t impressions = 0;
  uint64_t labels = 0;
  uint64_t samples = 0;
};

std::string StatusJson(const FreshetConfig& config, const std::string& bootstrap, const EventSource& source,
                       const ingest::KafkaProducer& producer, int64_t started_ms, const std::string& learner_json) {
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
      .Key(source.kind()).BeginObject()
      .Key("impressions").Int(static_cast<int64_t>(source.stats().impressions))
      .Key("labels").Int(static_cast<int64_t>(source.stats().labels))
      .Key("pending_events").Int(static_cast<int64_t>(source.pending_events()))
      .Key("seed").Int(static_cast<int64_t>(config.simulator().seed()))
      .EndObject()
      .Key("learner").Raw(learner_json)
      .EndObject();
  return w.str();
}

// "served=v12,v12 freshness=1.8s,1.9s published=v13": what each replica acked and
// how old the newest sample trained into that version is.
std::string ServedProgress(publisher::Publisher* pub, int64_t now_ms) {
  if (pub == nullptr) return "publisher=off";
  std::string versions, freshness;
  for (const auto& r : pub->replicas()) {
    versions += (versions.empty() ? "" : ",") + (r.connected ? "v" + std::to_string(r.acked_version) : "down");
    auto m = r.acked_version ? pub->snapshots().Manifest(r.acked_version) : StatusOr<ModelManifest>(NotFoundError(""));
    char f[32] = "-";
    if (m.ok() && m->newest_sample_emit_time_ms() > 0)
      std::snprintf(f, sizeof f, "%.1fs", (now_ms - m->newest_sample_emit_time_ms()) / 1000.0);
    freshness += (freshness.empty() ? "" : ",") + std::string(f);
  }
  const auto pin = pub->pinned();
  return "served=" + (versions.empty() ? "none" : versions) + " freshness=" + (freshness.empty() ? "-" : freshness) +
         " published=v" + std::to_string(pub->published_version()) + (pin ? " pinned=v" + std::to_string(*pin) : "");
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  auto setup = SetUpCommand("run", args, {"duration", "seed", "kafka", "rate", "admin-port", "data-dir", "replay"}, {});
  if (!setup) return 2;
  auto duration_s = setup->flags.GetDouble("duration", 0, 0, 1e9);
  Status applied = duration_s.ok() ? ApplyRunFlags(setup->flags, &setup->config) : duration_s.status();
  if (!applied.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", applied.message().c_str());
    return 2;
  }
  const FreshetConfig config = std::move(setup->config);
  ApplyLogLevel(config);

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  Clock* clock = Clock::Real();
  const int64_t started_ms = clock->NowMs();
  const KafkaConfig& kc = config.kafka();

  // 0. What feeds the pipeline; a missing data set fails before anything starts.
  std::unique_ptr<EventSource> source;
  if (config.replay().dataset() == "kuairand") {
    auto log = FindKuaiRandLog(config.replay(), DataDir());
    auto opened = log.ok() ? OpenKuaiRandSource(config.replay(), *log, started_ms) : log.status();
    if (!opened.ok()) {
      std::fprintf(stderr, "freshet run: --replay kuairand: %s\n", opened.status().message().c_str());
      return 2;
    }
    source = std::move(opened).value();
  } else {
    source = NewSimulatorSource(config.simulator(), started_ms);
  }

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

  // 2. Ingest. State only means something with the cluster it was read from: an
  // embedded cluster lives as long as this process, so its state goes in a fresh
  // directory that is removed at a clean exit; against a real cluster the state
  // persists and a restart resumes from it.
  const std::string data_dir = embedded ? config.store().data_dir() + "/run-" + std::to_string(started_ms)
                                        : config.store().data_dir();
  auto ingest = IngestComponent::Start(config, bootstrap, data_dir + "/ingest");
  if (!ingest.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", ingest.status().ToString().c_str());
    return 1;
  }
  if (config.ingest().policy() == POLICY_IMMEDIATE) {
    std::printf("freshet: ingest admin %s policy=POLICY_IMMEDIATE: samples at once, positives as labels arrive\n",
                (*ingest)->admin_url().c_str());
  } else {
    std::printf("freshet: ingest admin %s policy=%s: first samples after the longest task window, %.0f s "
                "(ingest { policy: POLICY_IMMEDIATE } emits at once)\n",
                (*ingest)->admin_url().c_str(), LabelPolicy_Name(config.ingest().policy()).c_str(),
                (LongestWindowMs(config) + config.ingest().allowed_lateness_ms()) / 1000.0);
  }
  std::fflush(stdout);

  // 3. Producer for the simulator.
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

  // 4. Serving replicas (child processes), which the learner's publisher pushes to
  // with a per-run key.
  FreshetConfig learner_config = config;
  std::unique_ptr<ServingFleet> fleet;
  if (config.publisher().enabled() && config.serving().replicas() > 0 && config.publisher().replicas_size() == 0) {
    auto f = ServingFleet::Start(config, data_dir + "/serving", config.serving().replicas());
    if (!f.ok()) {
      std::fprintf(stderr, "freshet run: %s\n", f.status().ToString().c_str());
      return 1;
    }
    fleet = std::move(f).value();
    learner_config.mutable_publisher()->set_hmac_key_file(fleet->key_file());
    for (const std::string& a : fleet->push_addresses()) learner_config.mutable_publisher()->add_replicas(a);
    for (const auto& r : fleet->replicas())
      std::printf("freshet: serving replica %d admin %s (POST /v1/score) push port %d log %s\n", r.index,
                  r.admin_url.c_str(), r.push_port, r.log_path.c_str());
    std::fflush(stdout);
  }

  // 5. The learner, whose admin server (the learner's port) is the pipeline's front
  // door: it also carries the simulator's metrics, checks and status.
  std::mutex sim_mu;  // the admin thread reads the source's stats
  LearnerComponent::Options lopt;
  lopt.config = learner_config;
  lopt.bootstrap = bootstrap;
  lopt.store_path = data_dir + "/learner";
  lopt.component = "freshet-run";
  // The dashboard reads ingest at its actual address (--admin-port 0 picks ports);
  // serving replicas join this list when `freshet run` starts them.
  const std::string ingest_url = (*ingest)->admin_url();
  auto host_port = [](const std::string& url) { return url.substr(url.find("://") + 3); };
  lopt.dashboard_peers = std::vector<DashboardSource>{HttpSource("ingest", host_port(ingest_url))};
  if (fleet)
    for (const auto& r : fleet->replicas())
      lopt.dashboard_peers->push_back(HttpSource("serving-" + std::to_string(r.index), host_port(r.admin_url)));
  LearnerComponent* learner_ptr = nullptr;  // set once Start returns; the status reads it
  lopt.configure_admin = [&](AdminServer* admin, MetricsRegistry* metrics) {
    admin->AddReadinessCheck("kafka", [&] { return (*producer)->CheckReachable(1000); });
    admin->AddReadinessCheck("simulator_producer", [&] { return (*producer)->first_error(); });
    admin->SetStatusProvider([&] {
      std::lock_guard<std::mutex> lock(sim_mu);
      return StatusJson(config, bootstrap, *source, **producer, started_ms,
                        learner_ptr ? learner_ptr->StatusJson() : std::string("null"));
    });
    Gauge* pending = metrics->GetGauge("freshet_simulator_pending_events", "Labels (and held-back impressions) not yet due");
    metrics->AddCollector([&sim_mu, &source, pending] {
      std::lock_guard<std::mutex> lock(sim_mu);
      pending->Set(static_cast<double>(source->pending_events()));
    });
  };
  auto learner = LearnerComponent::Start(lopt);
  if (!learner.ok()) {
    std::fprintf(stderr, "freshet run: %s\n", learner.status().ToString().c_str());
    return 1;
  }
  learner_ptr = learner->get();
  MetricsRegistry& metrics = *(*learner)->metrics();
  KafkaEventSink sink(producer->get(), kc.impressions_topic(), kc.labels_topic(), &metrics);
  Counter* produce_errors = metrics.GetCounter("freshet_simulator_produce_errors_total", "Produce calls that failed and were retried");
  std::printf("freshet: admin %s (/metrics /status /readyz /config), learner %s\n", (*learner)->admin_url().c_str(),
              DescribeModel(config).c_str());
  std::printf("freshet: dashboard %s\n", (*learner)->dashboard_url().c_str());
  std::printf("freshet: %s\n", learner::DescribeGpu(learner::QueryGpu()).c_str());
  std::printf("freshet: %s\n", source->Describe().c_str());
  std::fflush(stdout);

  // 6. Main loop: advance the simulator to the wall clock, report progress.
  const int64_t end_ms = *duration_s > 0 ? started_ms + static_cast<int64_t>(*duration_s * 1000) : INT64_MAX;
  int64_t next_progress = started_ms + kProgressIntervalMs;
  Totals last;
  RateLimiter error_log(5000);
  bool source_finished = false;
  while (!stop.requested()) {
    const int64_t now = clock->NowMs();
    if (!(*ingest)->running() || !(*learner)->running()) {
      stop.Request(!(*ingest)->running() ? "ingest failed" : "learner failed");
      break;
    }
    if (now >= end_ms) {
      stop.Request("duration reached");
      break;
    }
    {
      std::lock_guard<std::mutex> lock(sim_mu);
      Status adv = source->AdvanceTo(now, &sink);
      if (!adv.ok()) {
        produce_errors->Inc();
        int64_t suppressed = 0;
        if (error_log.Allow(now, &suppressed)) {
          LOG_WARNING("simulator_produce_failed").Kv("status", adv.ToString()).Kv("suppressed", suppressed)
              .Kv("action", "retrying; events wait in the source");
        }
      } else if (!source_finished && source->finished()) {
        // The end of a replayed log: close its last windows, keep the pipeline up.
        source_finished = true;
        int64_t flushed_to = 0;
        Status f = FlushWindowsAfter(source->newest_event_ms(), config, producer->get(), &flushed_to);
        std::printf("freshet: replay finished: impressions=%" PRIu64 " labels=%" PRIu64 " watermark %s; the pipeline "
                    "keeps running (Ctrl-C or --duration stops it)\n",
                    source->stats().impressions, source->stats().labels,
                    f.ok() ? ("flushed to " + std::to_string(flushed_to) + " ms").c_str() : f.ToString().c_str());
        std::fflush(stdout);
      }
    }
    if (now >= next_progress) {
      const EventSource::Stats st = source->stats();
      const double secs = kProgressIntervalMs / 1000.0;
      const auto joined = (*ingest)->stats();
      std::printf("progress t=%.0fs impressions/s=%.0f labels/s=%.0f samples/s=%.0f impressions=%" PRIu64
                  " labels=%" PRIu64 " samples=%" PRIu64 " deadletters=%" PRIu64 " failed=%" PRIu64
                  " pending_labels=%zu\n",
                  (now - started_ms) / 1000.0, (st.impressions - last.impressions) / secs,
                  (st.labels - last.labels) / secs, (joined.samples - last.samples) / secs, st.impressions, st.labels,
                  joined.samples, joined.deadletters, (*producer)->failed(), source->pending_events());
      const learner::LearnerProgress trained = (*learner)->Progress();
      std::string auc;
      for (const auto& t : trained.tasks) {
        if (t.auc >= 0) auc += " " + t.task + "=" + std::to_string(t.auc).substr(0, 5);
      }
      std::printf("progress   trained/s=%.0f trained=%lld duplicates=%lld skipped_batches=%lld auc:%s\n",
                  trained.samples_per_s, static_cast<long long>(trained.samples_trained),
                  static_cast<long long>(trained.duplicates_skipped), static_cast<long long>(trained.skipped_batches),
                  auc.empty() ? " (none yet)" : auc.c_str());
      std::printf("progress   freshness p50/p99 over %.0fs:%s\n", secs,
                  FreshnessSummary((*learner)->dashboard(), kProgressIntervalMs).c_str());
      std::printf("progress   %s\n", ServedProgress((*learner)->publisher(), now).c_str());
      std::fflush(stdout);
      last = {st.impressions, st.labels, joined.samples};
      next_progress += kProgressIntervalMs;
    }
    stop.WaitForMs(kTickMs);
  }

  // 7. Stop in reverse order: intake first, then flush what is in flight; the
  // replicas after the publisher that pushes to them, last-started-first.
  LOG_INFO("run_stopping").Kv("reason", stop.reason());
  Status flushed = (*producer)->Flush(5000);
  Status ingest_result = (*ingest)->Stop();
  Status learner_result = (*learner)->Stop();
  const std::string served = ServedProgress((*learner)->publisher(), clock->NowMs());
  if (fleet) fleet->Stop();
  const learner::LearnerProgress trained = (*learner)->Progress();
  const auto joined = (*ingest)->stats();
  if (embedded && ingest_result.ok() && learner_result.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  }
  const EventSource::Stats st = source->stats();
  std::string kinds;
  for (const auto& [kind, n] : st.labels_by_kind) kinds += " " + LabelKind_Name(kind) + "=" + std::to_string(n);
  std::printf("summary reason=\"%s\" duration_s=%.1f impressions=%" PRIu64 " labels=%" PRIu64 " delivered=%" PRIu64
              " failed=%" PRIu64 " samples=%" PRIu64 " deadletters=%" PRIu64 " trained=%lld flush=%s ingest=%s"
              " learner=%s\nsummary labels_by_kind:%s\nsummary %s\n",
              stop.reason().c_str(), (clock->NowMs() - started_ms) / 1000.0, st.impressions, st.labels,
              (*producer)->delivered(), (*producer)->failed(), joined.samples, joined.deadletters,
              static_cast<long long>(trained.samples_trained), flushed.ok() ? "ok" : flushed.ToString().c_str(),
              ingest_result.ok() ? "ok" : ingest_result.ToString().c_str(),
              learner_result.ok() ? "ok" : learner_result.ToString().c_str(), kinds.c_str(), served.c_str());
  std::fflush(stdout);
  return flushed.ok() && ingest_result.ok() && learner_result.ok() ? 0 : 1;
}

}  // namespace freshet::ops
