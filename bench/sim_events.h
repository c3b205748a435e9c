// Simulator traffic for the benchmarks that start at the input topics (bench_ingest,
// bench_online): GenerateSimEvents draws n impressions (10k/s of event time unless told) with all
// their labels, ending well before now (the decoder rejects event times in the future)
// with room for the longest window; PrefillEvents writes them into the impressions
// and labels topics and then one watermark-flush event per partition and input, so
// the joiner closes every window and emits exactly one sample per impression.
//
//   Collector events;  int64_t now_ms;
//   RETURN_IF_ERROR(GenerateSimEvents(config, 150'000, &events, &now_ms));
//   RETURN_IF_ERROR(PrefillEvents(bootstrap, config.kafka(), kPartitions, events, now_ms));
//
// The embedded (mock) cluster keeps at most ~5 MB or 100k messages per partition and
// drops older segments past that: callers spread the events over enough partitions.
// Thread-safety: functions of their arguments.
#pragma once

#include <cstdint>
#include <string>

#include "bench/bench_util.h"
#include "common/clock.h"
#include "ingest/kafka_client.h"
#include "ingest/watermark_flush.h"
#include "ops/simulator.h"
#include "schemas/config.pb.h"

namespace freshet::bench {

// Impressions and labels of config.simulator() with max_impressions = n, at
// `per_second` impressions per second of event time; *now_ms is the wall time the
// event times were placed against (PrefillEvents flushes to it).
inline Status GenerateSimEvents(const FreshetConfig& config, int64_t n, Collector* events, int64_t* now_ms,
                                double per_second = 10'000) {
  *now_ms = Clock::Real()->NowMs();
  const int64_t span_ms = static_cast<int64_t>(n * 1000.0 / per_second) + 3'600'000;
  const int64_t start = *now_ms - span_ms - 600'000;
  SimulatorConfig sc = config.simulator();
  sc.set_max_impressions(n);
  sc.set_impressions_per_second(per_second);
  ops::TrafficSimulator sim(sc, start);
  return sim.AdvanceTo(start + span_ms, events);
}

// Produces `events` to kafka.impressions_topic()/labels_topic() (keyed by request_id)
// and the watermark flush at now_ms - 60 s over `partitions`; waits for delivery.
inline Status PrefillEvents(const std::string& bootstrap, const KafkaConfig& kafka, int partitions,
                            const Collector& events, int64_t now_ms) {
  ingest::KafkaProducer::Options popt;
  popt.bootstrap_servers = bootstrap;
  ASSIGN_OR_RETURN(std::unique_ptr<ingest::KafkaProducer> producer, ingest::KafkaProducer::Create(popt));
  for (const auto& [k, v] : events.impressions) RETURN_IF_ERROR(producer->Produce(kafka.impressions_topic(), k, v));
  for (const auto& [k, v] : events.labels) RETURN_IF_ERROR(producer->Produce(kafka.labels_topic(), k, v));
  RETURN_IF_ERROR(producer->Flush(120'000));
  return ingest::ProduceWatermarkFlush(producer.get(), kafka, partitions, now_ms - 60'000);
}

}  // namespace freshet::bench
