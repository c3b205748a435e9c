// Ingest throughput: simulator impressions and labels pre-filled into the embedded
// 3-broker cluster, then (1) the raw consume rate of `impressions` + `labels` through
// a plain KafkaConsumer doing nothing with the messages, (1b) Kafka's share of the
// joiner's work: the same topics read and every impression produced unchanged to a
// topic (no decode, join or state; reported as pass_through_events_per_s, a bound
// on the joiner), and (2) the Joiner (decode,
// join, default `wait` policy, RocksDB checkpoints, samples produced to `samples`)
// reading the same topics with its own group. One watermark-flush event per
// partition and input at the end closes every window, so the joiner emits exactly
// one sample per impression within the run. Both rates are timed from the moment the
// consumer got its partitions (the group join is excluded, and so is nothing that was
// read ahead before it): raw until the last event is read, joiner until every event
// is consumed, every impression has its sample and the samples are delivered (a
// checkpoint flushes the producer). Also reported: the joiner thread's CPU seconds
// (a figure that load from other processes disturbs less than wall time) and what
// checkpoints cost on the joiner thread and on the checkpoint writer's.
//
//   build/bench/bench_ingest [--impressions N] [--brokers B] [--event-rate R] [--join-threads T]
//                            [--checkpoint-interval-ms MS] [--join-alone-runs K]
//
// --join-alone-runs K: only phase (3), K times, one line each (no cluster, no group
// joins, no JSON): a figure in seconds while working on the join itself. Compare two
// builds by alternating their runs: on the 2-core VM of docs/benchmarks.md the same
// binary moves by up to a third from one process to the next.
//
// Last line: one JSON object (docs/benchmarks.md).
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "bench/bench_util.h"
#include "bench/sim_events.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/worker_pool.h"
#include "common/metrics.h"
#include "ingest/embedded_kafka.h"
#include "ingest/event_decoder.h"
#include "ingest/ingest_probe.h"
#include "ingest/joiner.h"
#include "ingest/kafka_client.h"
#include "ingest/partition_join.h"
#include "ingest/task_rules.h"
#include "ingest/watermark_flush.h"
#include "ops/config.h"
#include "ops/simulator.h"
#include "store/kv_store.h"

namespace {

using freshet::bench::Collector;
using freshet::bench::Fail;
using freshet::bench::Seconds;

using freshet::Impression;
using freshet::Label;
using freshet::Status;
using Steady = std::chrono::steady_clock;

// The embedded (mock) cluster keeps at most ~5 MB or 100k messages per partition
// and drops older segments past that: spread the events so nothing is dropped.
constexpr int kPartitions = 8;

double SecondsSinceUs(int64_t monotonic_us) {
  return (freshet::Clock::Real()->MonotonicUs() - monotonic_us) / 1e6;
}

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}
double ThreadCpuSeconds() { return CpuSeconds(CLOCK_THREAD_CPUTIME_ID); }
// Every thread of the process: the joiner, librdkafka's and the embedded brokers'.
double ProcessCpuSeconds() { return CpuSeconds(CLOCK_PROCESS_CPUTIME_ID); }
// Minor page faults of the calling thread so far (first touches of fresh heap pages).
long ThreadMinorFaults() {
  rusage u{};
  return getrusage(RUSAGE_THREAD, &u) == 0 ? u.ru_minflt : -1;
}

// How long the calling thread has been runnable but not running (waiting for a CPU
// that other threads held): the second field of /proc/thread-self/schedstat. -1
// where the kernel does not keep it.
double ThreadRunQueueSeconds() {
  std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
  if (f == nullptr) return -1;
  unsigned long long ran_ns = 0, waited_ns = 0;
  const bool read = std::fscanf(f, "%llu %llu", &ran_ns, &waited_ns) == 2;
  std::fclose(f);
  return read ? static_cast<double>(waited_ns) / 1e9 : -1;
}

// Reads `total` events of `impressions` and `labels` in group `group`, printing
// progress each second under `what`; with pass_through, also produces each
// impression's bytes unchanged to topic `pass_through` (created here) and waits for
// their delivery. *seconds runs from the assignment to the end.
Status ReadAll(freshet::ingest::EmbeddedKafka& kafka, const std::string& group, const char* what, size_t total,
               bool pass_through, int linger_ms, double* seconds, double* process_cpu_seconds) {
  freshet::ingest::KafkaConsumer::Options copt;
  copt.bootstrap_servers = kafka.bootstrap();
  copt.group_id = group;
  int64_t assigned_us = 0;
  copt.on_assign = [&](std::vector<freshet::ingest::TopicPartitionOffset>*) {
    assigned_us = freshet::Clock::Real()->MonotonicUs();
  };
  ASSIGN_OR_RETURN(auto consumer, freshet::ingest::KafkaConsumer::Create(copt));
  std::unique_ptr<freshet::ingest::KafkaProducer> producer;
  if (pass_through) {
    RETURN_IF_ERROR(kafka.CreateTopic("pass_through", kPartitions));
    freshet::ingest::KafkaProducer::Options popt;
    popt.bootstrap_servers = kafka.bootstrap();
    popt.linger_ms = linger_ms;
    ASSIGN_OR_RETURN(producer, freshet::ingest::KafkaProducer::Create(popt));
  }
  RETURN_IF_ERROR(consumer->Subscribe({"impressions", "labels"}));
  const double cpu0 = ProcessCpuSeconds();  // the group join's few ms of CPU included
  const auto deadline = Steady::now() + std::chrono::minutes(2);
  Steady::time_point last_print = Steady::now();
  freshet::ingest::KafkaMessage m;
  for (size_t got = 0; got < total;) {
    if (Steady::now() > deadline) {
      return freshet::DeadlineExceededError(std::string(what) + " read " + std::to_string(got) + " of " +
                                            std::to_string(total) + " events in 2 min (partition too big for the "
                                            "embedded cluster's retention?)");
    }
    ASSIGN_OR_RETURN(bool read, consumer->PollInto(1000, &m));
    if (!read) continue;
    ++got;
    if (producer && m.topic == "impressions") RETURN_IF_ERROR(producer->Produce("pass_through", m.key, m.value));
    if (Seconds(last_print) >= 1.0) {
      last_print = Steady::now();
      std::printf("  %s: %zu/%zu events, %.0f events/s\n", what, got, total, got / SecondsSinceUs(assigned_us));
      std::fflush(stdout);
    }
  }
  if (producer) RETURN_IF_ERROR(producer->Flush(60000));
  *seconds = SecondsSinceUs(assigned_us);
  *process_cpu_seconds = ProcessCpuSeconds() - cpu0;
  return Status::Ok();
}

// Decodes, joins (one PartitionJoin per partition, the config's policy) and
// serializes as samples every event, with no Kafka and no store: what the joiner's
// own work costs. Split over config.ingest().join_threads threads as the joiner
// splits it (partition p on thread p % threads); as in the joiner, the joins' clock
// is read once per batch of Joiner::Options::max_batch events. Per partition: its impressions,
// then its labels, then one flush event at flush_ms, so every window closes.
// *seconds for all of it.
Status JoinAlone(const freshet::FreshetConfig& config, const Collector& events, int64_t flush_ms, double* seconds,
                 size_t* samples) {
  namespace ingest = freshet::ingest;
  ASSIGN_OR_RETURN(ingest::TaskRules rules, ingest::TaskRules::Create(config));
  freshet::MetricsRegistry metrics;
  ingest::IngestProbe probe(&metrics, config.ingest().policy());
  std::vector<std::unique_ptr<ingest::PartitionJoin>> joins;
  std::vector<std::vector<const std::pair<std::string, std::string>*>> impressions(kPartitions), labels(kPartitions);
  const int threads = config.ingest().join_threads();
  std::vector<std::unique_ptr<freshet::BatchClock>> clocks;  // one per thread: its partitions'
  for (int k = 0; k < threads; ++k) clocks.push_back(std::make_unique<freshet::BatchClock>(freshet::Clock::Real()));
  for (int p = 0; p < kPartitions; ++p) {
    joins.push_back(
        std::make_unique<ingest::PartitionJoin>(p, &rules, config.ingest(), &probe, clocks[p % threads].get()));
  }
  auto part = [](const std::string& key) { return std::hash<std::string>()(key) % kPartitions; };
  for (const auto& e : events.impressions) impressions[part(e.first)].push_back(&e);
  for (const auto& e : events.labels) labels[part(e.first)].push_back(&e);
  ingest::DecodeLimits limits;
  limits.max_message_bytes = config.kafka().max_message_bytes();
  limits.now_ms = freshet::Clock::Real()->NowMs();
  limits.feature_headroom = freshet::ingest::SampleHeaderBound(static_cast<size_t>(rules.size()));
  const size_t batch = static_cast<size_t>(ingest::Joiner::Options().max_batch);
  freshet::WorkerPool pool(threads);
  std::vector<size_t> emitted(static_cast<size_t>(threads), 0);
  std::vector<Status> failed(static_cast<size_t>(threads));
  const auto t0 = Steady::now();
  pool.Run(threads, [&](int k) {
    std::vector<ingest::JoinedSample> out;
    size_t handled = 0;
    auto serialize = [&] {
      for (const ingest::JoinedSample& s : out) emitted[k] += !s.bytes.empty();
      out.clear();
      if (++handled % batch == 0) clocks[k]->Tick();
    };
    freshet::Label label;
    for (int p = k; p < kPartitions; p += threads) {
      ingest::PartitionJoin* join = joins[p].get();
      // As the joiner does: each event's lookup prefetched a few events ahead.
      const auto& imps = impressions[p];
      const auto& labs = labels[p];
      auto join_of = [&](size_t) { return join; };
      auto add_impression = [&](size_t i) {
        ingest::ImpressionEvent imp;
        const ingest::Rejection r = ingest::DecodeImpression(imps[i]->first, imps[i]->second, limits, &imp);
        if (!r.ok()) {
          if (failed[k].ok()) failed[k] = freshet::InternalError("impression rejected: " + r.detail);
          return;
        }
        join->AddImpression(std::move(imp), &out);
        serialize();
      };
      auto add_label = [&](size_t i) {
        const ingest::Rejection r = ingest::DecodeLabel(labs[i]->first, labs[i]->second, limits, &label);
        if (!r.ok()) {
          if (failed[k].ok()) failed[k] = freshet::InternalError("label rejected: " + r.detail);
          return;
        }
        join->AddLabel(label, &out);
        serialize();
      };
      ingest::ForEachPrefetched(imps.size(), [&](size_t i) -> std::string_view { return imps[i]->first; }, join_of,
                                add_impression);
      ingest::ForEachPrefetched(labs.size(), [&](size_t i) -> std::string_view { return labs[i]->first; }, join_of,
                                add_label);
      if (!failed[k].ok()) return;
      freshet::Impression flush_impression;
      freshet::Label flush_label;
      ingest::MakeWatermarkFlush(p, flush_ms, &flush_impression, &flush_label);
      join->AddImpression(std::move(flush_impression), &out);
      join->AddLabel(flush_label, &out);
      serialize();
    }
  });
  *seconds = Seconds(t0);
  for (const Status& f : failed) RETURN_IF_ERROR(f);
  *samples = 0;
  for (size_t e : emitted) *samples += e;
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 150'000;
  int brokers = 3;
  double event_rate = 10'000;
  int join_threads = 0;  // 0: the config's default
  int64_t checkpoint_interval_ms = 0;  // 0: the config's default
  int join_alone_runs = 0;
  const auto usage = freshet::InvalidArgumentError(
      "usage: bench_ingest [--impressions N] [--brokers B] [--event-rate R] [--join-threads T] "
      "[--checkpoint-interval-ms MS] [--join-alone-runs K]");
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Fail("bench_ingest", usage.Annotate(flag + " needs a value"));
    try {
      if (flag == "--impressions") n = std::stoll(argv[i + 1]);
      else if (flag == "--brokers") brokers = std::stoi(argv[i + 1]);
      else if (flag == "--event-rate") event_rate = std::stod(argv[i + 1]);
      else if (flag == "--join-threads") join_threads = std::stoi(argv[i + 1]);
      else if (flag == "--checkpoint-interval-ms") checkpoint_interval_ms = std::stoll(argv[i + 1]);
      else if (flag == "--join-alone-runs") join_alone_runs = std::stoi(argv[i + 1]);
      else return Fail("bench_ingest", usage);
    } catch (const std::exception&) {  // std::stoi and friends: not a number, or out of range
      return Fail("bench_ingest", usage.Annotate(flag + " " + argv[i + 1] + ": not a number"));
    }
  }
  if (!(event_rate > 0)) return Fail("bench_ingest", freshet::InvalidArgumentError("--event-rate must be > 0"));
  freshet::SetMinLogLevel(freshet::LogLevel::kWarning);
  freshet::FreshetConfig config = freshet::ops::DefaultConfig();
  if (join_threads > 0) config.mutable_ingest()->set_join_threads(join_threads);
  if (checkpoint_interval_ms > 0) config.mutable_ingest()->set_checkpoint_interval_ms(checkpoint_interval_ms);

  // Events: n impressions at event_rate per second of event time and all their labels
  // (bench/sim_events.h). At the default 10k/s the 150k impressions span 15 s, less than
  // the longest task window (120 s): no window closes before the flush events at the
  // end, so every sample is produced after the last input event (a backlog catch-up).
  // At 250/s they span 10 min and windows close all along, as in a live stream.
  Collector events;
  int64_t now = 0;
  if (Status s = freshet::bench::GenerateSimEvents(config, n, &events, &now, event_rate); !s.ok()) {
    return Fail("bench_ingest", s);
  }
  const size_t impressions = events.impressions.size();
  const size_t total = impressions + events.labels.size() + 2 * kPartitions;
  std::printf("generated impressions=%zu labels=%zu (+%d flush events)\n", impressions, events.labels.size(),
              2 * kPartitions);

  for (int run = 0; run < join_alone_runs; ++run) {
    double alone_s = 0;
    size_t alone_samples = 0;
    if (Status s = JoinAlone(config, events, now - 60'000, &alone_s, &alone_samples); !s.ok()) {
      return Fail("bench_ingest", s);
    }
    std::printf("join alone, run %d: %zu events -> %zu samples in %.3fs: %.0f events/s\n", run + 1, total,
                alone_samples, alone_s, total / alone_s);
  }
  if (join_alone_runs > 0) return 0;

  auto kafka = freshet::ingest::EmbeddedKafka::Start(brokers);
  if (!kafka.ok()) return Fail("bench_ingest", kafka.status());
  for (const char* t : {"impressions", "labels", "samples", "deadletter"}) {
    if (Status s = (*kafka)->CreateTopic(t, kPartitions); !s.ok()) return Fail("bench_ingest", s);
  }
  {
    auto t_fill = Steady::now();
    if (Status s = freshet::bench::PrefillEvents((*kafka)->bootstrap(), config.kafka(), kPartitions, events, now);
        !s.ok()) {
      return Fail("bench_ingest", s);
    }
    std::printf("pre-filled %zu events in %.2fs\n", total, Seconds(t_fill));
  }

  // (1) Raw consume: the same topics, no processing.
  double raw_s = 0, raw_cpu_s = 0;
  if (Status s = ReadAll(**kafka, "bench-raw", "raw", total, false, 0, &raw_s, &raw_cpu_s); !s.ok()) {
    return Fail("bench_ingest", s);
  }
  std::printf("raw consume: %zu events in %.2fs: %.0f events/s; whole process %.2f CPU-s\n", total, raw_s,
              total / raw_s, raw_cpu_s);

  // (1b) Kafka's share: the same topics read, and each impression passed through
  // unchanged to a topic of its own (no decode, join or state). The joiner cannot be
  // faster than this; it says how much of its time the cluster and clients take.
  double pass_s = 0, pass_cpu_s = 0;
  if (Status s = ReadAll(**kafka, "bench-pass-through", "pass-through", total, true, config.kafka().linger_ms(),
                         &pass_s, &pass_cpu_s);
      !s.ok()) {
    return Fail("bench_ingest", s);
  }
  std::printf("pass-through (consume, produce each impression): %zu events in %.2fs: %.0f events/s; "
              "whole process %.2f CPU-s\n", total, pass_s, total / pass_s, pass_cpu_s);

  // (2) The joiner, its own group and store.
  const auto dir = std::filesystem::temp_directory_path() / ("freshet_bench_ingest_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  double joiner_s = 0, joiner_cpu_s = 0, process_cpu_s = 0, checkpoint_s = 0, checkpoint_mb = 0;
  double joiner_wait_cpu_s = 0, read_all_s = 0;
  long joiner_faults = 0;
  uint64_t samples = 0, deadletters = 0, checkpoints = 0;
  {
    freshet::store::KvStore::Options sopt;
    sopt.path = dir.string();
    sopt.families = freshet::ingest::Joiner::StoreFamilies();
    sopt.sync_writes = config.store().sync_writes();
    auto store = freshet::store::KvStore::Open(sopt);
    if (!store.ok()) return Fail("bench_ingest", store.status());
    config.mutable_kafka()->set_partitions(kPartitions);
    freshet::MetricsRegistry metrics;
    freshet::ingest::Joiner::Options jopt;
    jopt.config = config;
    jopt.bootstrap_servers = (*kafka)->bootstrap();
    jopt.store = store->get();
    jopt.metrics = &metrics;
    auto joiner = freshet::ingest::Joiner::Create(jopt);
    if (!joiner.ok()) return Fail("bench_ingest", joiner.status());
    if (Status s = (*joiner)->Start(); !s.ok()) return Fail("bench_ingest", s);
    Steady::time_point last_print = Steady::now();
    double cpu0 = 0, process_cpu0 = 0, run_queue0 = 0;
    long faults0 = 0;
    const auto deadline = Steady::now() + std::chrono::minutes(10);
    while (true) {
      // The assignment happens inside RunOnce's poll: the CPU clock starts one call
      // early (the group join, a few ms of CPU), the wall clock at the assignment.
      const bool assigned = (*joiner)->stats().assigned_us != 0;
      if (!assigned) {
        cpu0 = ThreadCpuSeconds();
        process_cpu0 = ProcessCpuSeconds();
        run_queue0 = ThreadRunQueueSeconds();
        faults0 = ThreadMinorFaults();
      }
      if (Status s = (*joiner)->RunOnce(assigned ? 100 : 10); !s.ok()) return Fail("bench_ingest", s);
      const auto st = (*joiner)->stats();
      if (st.events >= total && read_all_s == 0) read_all_s = SecondsSinceUs(st.assigned_us);
      if (st.events >= total && st.samples >= impressions) break;
      if (Steady::now() > deadline) return Fail("bench_ingest", freshet::DeadlineExceededError("joiner did not finish in 10 min"));
      if (st.assigned_us != 0 && Seconds(last_print) >= 1.0) {
        last_print = Steady::now();
        std::printf("  joiner: %lu/%zu events, %lu/%zu samples, %.0f events/s\n", st.events, total, st.samples,
                    impressions, st.events / SecondsSinceUs(st.assigned_us));
        std::fflush(stdout);
      }
    }
    if (Status s = (*joiner)->Checkpoint(); !s.ok()) return Fail("bench_ingest", s);  // flushes: samples delivered
    const auto st = (*joiner)->stats();
    joiner_s = SecondsSinceUs(st.assigned_us);
    joiner_cpu_s = ThreadCpuSeconds() - cpu0;
    joiner_faults = ThreadMinorFaults() - faults0;
    joiner_wait_cpu_s = run_queue0 < 0 ? -1 : ThreadRunQueueSeconds() - run_queue0;
    process_cpu_s = ProcessCpuSeconds() - process_cpu0;
    samples = st.samples;
    deadletters = st.deadletters;
    checkpoints = st.checkpoints;
    checkpoint_s = st.checkpoint_us / 1e6;
    checkpoint_mb = st.checkpoint_bytes / 1e6;
    std::printf("joiner: %zu events -> %lu samples (%lu dead letters) in %.2fs: %.0f events/s; joiner thread CPU "
                "%.2fs (%.0f events per CPU-second); whole process %.2f CPU-s (cluster and client threads too)\n",
                total, samples, deadletters, joiner_s, total / joiner_s, joiner_cpu_s, total / joiner_cpu_s,
                process_cpu_s);
    std::printf("joiner thread: every event read at %.2fs (the rest: producing and the final checkpoint's delivery "
                "and write); %.2fs runnable but waiting for a CPU held by other threads; %ld minor page faults\n",
                read_all_s, joiner_wait_cpu_s, joiner_faults);
    std::printf("checkpoints: %lu, %lu records, %.1f MB; joiner thread %.2fs in them (%.2fs collecting changes); "
                "writer thread %.2fs waiting for sample delivery, %.2fs RocksDB write\n",
                checkpoints, st.checkpoint_records, checkpoint_mb, checkpoint_s, st.checkpoint_collect_us / 1e6,
                st.checkpoint_flush_us / 1e6, st.checkpoint_write_us / 1e6);
    if (Status s = (*joiner)->Stop(); !s.ok()) return Fail("bench_ingest", s);
  }
  std::filesystem::remove_all(dir);

  // (3) The joiner's own work, in one thread: no Kafka, no store. Last, so that it
  // does not warm the heap for the joiner (first-touch page faults are part of the
  // joiner's figure, as in a fresh daemon).
  double alone_s = 0;
  size_t alone_samples = 0;
  if (Status s = JoinAlone(config, events, now - 60'000, &alone_s, &alone_samples); !s.ok()) {
    return Fail("bench_ingest", s);
  }
  std::printf("join alone (decode, join, serialize on %d thread(s); no Kafka, no store): %zu events -> %zu samples "
              "in %.2fs: %.0f events/s\n", config.ingest().join_threads(), total, alone_samples, alone_s,
              total / alone_s);
  const double rate = total / joiner_s, raw = total / raw_s;
  freshet::JsonWriter w;
  w.BeginObject()
      .Key("bench").String("ingest")
      .Key("metric").String("events_per_s")
      .Key("value").Double(rate)
      .Key("unit").String("events/s")
      .Key("baseline").String("raw_consume")
      .Key("baseline_value").Double(raw)
      .Key("ratio").Double(rate / raw)
      .Key("raw_process_cpu_s").Double(raw_cpu_s)
      .Key("pass_through_events_per_s").Double(total / pass_s)
      .Key("pass_through_process_cpu_s").Double(pass_cpu_s)
      .Key("join_alone_events_per_s").Double(total / alone_s)
      .Key("events").Int(static_cast<int64_t>(total))
      .Key("event_rate").Double(event_rate)
      .Key("join_threads").Int(config.ingest().join_threads())
      .Key("impressions").Int(static_cast<int64_t>(impressions))
      .Key("samples").Int(static_cast<int64_t>(samples))
      .Key("joiner_cpu_s").Double(joiner_cpu_s)
      .Key("process_cpu_s").Double(process_cpu_s)
      .Key("joiner_read_all_s").Double(read_all_s)
      .Key("joiner_run_queue_s").Double(joiner_wait_cpu_s)
      .Key("joiner_minor_faults").Int(joiner_faults)
      .Key("checkpoints").Int(static_cast<int64_t>(checkpoints))
      .Key("checkpoint_s").Double(checkpoint_s)
      .Key("checkpoint_mb").Double(checkpoint_mb)
      .Key("checkpoint_bytes_per_impression").Double(checkpoint_mb * 1e6 / static_cast<double>(impressions))
      .Key("checkpoint_interval_ms").Int(config.ingest().checkpoint_interval_ms())
      .EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
