// `freshet replay kuairand`: replays the KuaiRand-Pure exposure log
// (ingest/kuairand_replay.h) into the impressions and labels topics of a running
// Kafka cluster, keyed by request_id, at --speed seconds of event time per wall
// second (0: as fast as the producer takes them). Prints progress every few seconds
// and a summary with per-kind label counts. SIGINT/SIGTERM: flush and summarize.
// At the end of the log it writes a watermark flush (ingest/watermark_flush.h) past
// the longest task window, so the joiner closes the last windows instead of holding
// them until newer events arrive; --no-flush leaves them open (to append another log).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "ingest/kafka_client.h"
#include "ingest/kuairand_replay.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/event_source.h"
#include "ops/kafka_event_sink.h"

namespace freshet::ops {
namespace {

constexpr int64_t kProgressIntervalMs = 5000;
constexpr int64_t kFastStepMs = 10 * 60 * 1000;  // event time per AdvanceTo at --speed 0
constexpr const char* kReplayUsage =
    "usage: freshet replay kuairand --log PATH [--speed N] [--no-flush] [--kafka HOST:PORT] [--config FILE]\n"
    "  --log    log_standard_*_pure.csv.gz; user_features_pure.csv.gz and\n"
    "           video_features_basic_pure.csv.gz are read from the same folder\n"
    "  --speed  seconds of event time per wall second; 0 (default) = as fast as possible\n"
    "  --no-flush  at the end of the log, do not move the watermark past the last windows\n";

std::string FormatEventTime(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int ReplayCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "kuairand") {
    std::fprintf(stderr, "freshet replay: %s\n%s",
                 args.empty() ? "missing dataset" : ("unknown dataset '" + args[0] + "'").c_str(), kReplayUsage);
    return 2;
  }
  auto setup = SetUpCommand("replay", {args.begin() + 1, args.end()}, {"kafka", "log", "speed"}, {"no-flush"});
  if (!setup) return 2;
  const FreshetConfig& config = setup->config;
  const KafkaConfig& kc = config.kafka();
  auto speed = setup->flags.GetDouble("speed", 0, 0, 1e9);
  if (!speed.ok()) {
    std::fprintf(stderr, "freshet replay: %s\n", speed.status().message().c_str());
    return 2;
  }
  const std::string log_path = setup->flags.Get("log");
  if (log_path.empty()) {
    std::fprintf(stderr, "freshet replay: --log PATH is required\n%s", kReplayUsage);
    return 2;
  }
  if (kc.bootstrap_servers().empty()) {
    std::fprintf(stderr, "freshet replay: kafka.bootstrap_servers is empty; pass --kafka HOST:PORT (e.g. the "
                         "bootstrap= line of `freshet kafka`)\n");
    return 2;
  }
  ApplyLogLevel(config);

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  Clock* clock = Clock::Real();

  auto replay = ingest::KuaiRandReplay::Open({log_path, "", ""});
  if (!replay.ok()) {
    std::fprintf(stderr, "freshet replay: %s\n", replay.status().ToString().c_str());
    return 1;
  }
  ingest::KuaiRandReplay& r = **replay;

  ingest::KafkaClientOptions topt;
  topt.bootstrap_servers = kc.bootstrap_servers();
  topt.properties.insert(kc.client_properties().begin(), kc.client_properties().end());
  Status topics = ingest::EnsureTopics(topt, {kc.impressions_topic(), kc.labels_topic()}, kc.partitions(),
                                       std::min(3, kc.embedded_brokers()));
  if (!topics.ok()) {
    std::fprintf(stderr, "freshet replay: kafka at %s: %s\n", topt.bootstrap_servers.c_str(),
                 topics.ToString().c_str());
    return 1;
  }
  ingest::KafkaProducer::Options popt;
  popt.bootstrap_servers = topt.bootstrap_servers;
  popt.client_id = "freshet-replay";
  popt.linger_ms = kc.linger_ms();
  popt.enqueue_timeout_ms = 1000;  // the loop retries; this only bounds one attempt
  popt.properties = topt.properties;
  auto producer = ingest::KafkaProducer::Create(popt);
  if (!producer.ok()) {
    std::fprintf(stderr, "freshet replay: %s\n", producer.status().ToString().c_str());
    return 1;
  }
  MetricsRegistry metrics;
  KafkaEventSink sink(producer->get(), kc.impressions_topic(), kc.labels_topic(), &metrics);

  const int64_t first_event = r.NextEventMs().value_or(0);
  char speed_text[32];
  std::snprintf(speed_text, sizeof(speed_text), "%g", *speed);
  std::printf("freshet replay: %s users=%" PRIu64 " videos=%" PRIu64 " starts at %s, speed=%s -> %s (%s, %s)\n",
              log_path.c_str(), r.stats().users_with_features, r.stats().videos_with_features,
              FormatEventTime(first_event).c_str(),
              *speed == 0 ? "max" : speed_text, topt.bootstrap_servers.c_str(),
              kc.impressions_topic().c_str(), kc.labels_topic().c_str());
  std::fflush(stdout);

  const int64_t wall_start_us = clock->MonotonicUs();
  int64_t next_progress_us = wall_start_us + kProgressIntervalMs * 1000;
  uint64_t last_events = 0;
  int64_t position = first_event;
  RateLimiter error_log(5000);
  auto events = [&] { return r.stats().impressions + r.stats().labels; };
  while (!stop.requested()) {
    const std::optional<int64_t> next = r.NextEventMs();
    if (!next) break;
    const int64_t now_us = clock->MonotonicUs();
    int64_t target = *next + kFastStepMs;
    if (*speed > 0) {
      target = first_event + static_cast<int64_t>((now_us - wall_start_us) / 1000.0 * *speed);
    }
    Status s = r.AdvanceTo(target, &sink);
    (*producer)->Poll(0);
    position = std::max(position, std::min(target, r.NextEventMs().value_or(target)));
    if (!s.ok()) {
      int64_t suppressed = 0;
      if (error_log.Allow(clock->NowMs(), &suppressed)) {
        LOG_WARNING("replay_produce_failed").Kv("status", s.ToString()).Kv("suppressed", suppressed)
            .Kv("action", "retrying the same event");
      }
      (*producer)->Poll(100);
    } else if (*speed > 0 && r.NextEventMs() && *r.NextEventMs() > target) {
      const double wait_ms = (*r.NextEventMs() - target) / *speed;
      stop.WaitForMs(std::clamp<int64_t>(static_cast<int64_t>(wait_ms), 1, 100));
    }
    if (now_us >= next_progress_us) {
      const auto& st = r.stats();
      std::printf("progress rows=%" PRIu64 " impressions=%" PRIu64 " labels=%" PRIu64 " events/s=%.0f event_time=%s"
                  " malformed=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64 "\n",
                  st.rows, st.impressions, st.labels, (events() - last_events) / (kProgressIntervalMs / 1000.0),
                  FormatEventTime(position).c_str(), st.malformed_rows, (*producer)->delivered(),
                  (*producer)->failed());
      std::fflush(stdout);
      last_events = events();
      next_progress_us += kProgressIntervalMs * 1000;
    }
  }
  Status flushed = (*producer)->Flush(30000);
  const bool complete = !stop.requested() && !r.NextEventMs();
  std::string watermark = "not flushed";
  if (flushed.ok() && complete && !setup->flags.Has("no-flush")) {
    // Past the newest event by the longest window and the allowed lateness, so every
    // window of the log closes and emits its sample.
    int64_t t = 0;
    flushed = FlushWindowsAfter(position, config, producer->get(), &t);
    if (flushed.ok()) watermark = "flushed to " + FormatEventTime(t);
  }
  const double secs = std::max(1e-6, (clock->MonotonicUs() - wall_start_us) / 1e6);
  const auto& st = r.stats();
  std::printf("summary rows=%" PRIu64 " impressions=%" PRIu64 " labels=%" PRIu64 " malformed=%" PRIu64
              " out_of_order=%" PRIu64 " seconds=%.1f rows/s=%.0f events/s=%.0f delivered=%" PRIu64
              " failed=%" PRIu64 " watermark=\"%s\" %s\n",
              st.rows, st.impressions, st.labels, st.malformed_rows, st.out_of_order_rows, secs, st.rows / secs,
              events() / secs, (*producer)->delivered(), (*producer)->failed(), watermark.c_str(),
              stop.requested() ? ("stopped: " + stop.reason()).c_str() : "complete");
  std::printf("summary labels:");
  for (const auto& [kind, n] : st.labels_by_kind) std::printf(" %s=%" PRIu64, LabelKind_Name(kind).c_str(), n);
  std::printf("\n");
  for (const auto& e : st.errors) std::printf("summary malformed: %s\n", e.c_str());
  std::fflush(stdout);
  if (!flushed.ok()) {
    std::fprintf(stderr, "freshet replay: flush: %s\n", flushed.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace freshet::ops
