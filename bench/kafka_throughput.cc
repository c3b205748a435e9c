// Embedded Kafka throughput with real Freshet events: the simulator's impressions and
// labels (serialized protobufs, keyed by request_id) produced with the idempotent
// producer into the embedded 3-broker cluster, then consumed back through a consumer
// group. Measures what the ingest path can expect from the default `freshet run`.
//
//   build/bench/bench_kafka_throughput [--events N]
//
// The embedded (mock) cluster keeps a bounded log per partition (about 100k messages
// or 5 MB): the default sizes stay well inside it with 8 partitions, and a consumer
// that stops receiving for 30 s fails with that explanation instead of hanging.
// Last line: one JSON object (docs/benchmarks.md).
#include <chrono>
#include <cstdio>
#include <string>

#include "bench/bench_util.h"
#include "common/json.h"
#include "common/logging.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "ops/config.h"
#include "ops/simulator.h"

namespace {

using freshet::bench::Collector;
using freshet::bench::Fail;
using freshet::bench::Seconds;

constexpr int kPartitions = 8;

using freshet::Impression;
using freshet::Label;
using freshet::Status;


}  // namespace

int main(int argc, char** argv) {
  int64_t n = 100'000;
  if (argc == 3 && std::string(argv[1]) == "--events") n = std::stoll(argv[2]);
  freshet::SetMinLogLevel(freshet::LogLevel::kWarning);

  // Events: n impressions and all their labels.
  freshet::SimulatorConfig sc = freshet::ops::DefaultConfig().simulator();
  sc.set_max_impressions(n);
  sc.set_impressions_per_second(10'000);
  Collector events;
  auto t_gen = std::chrono::steady_clock::now();
  freshet::ops::TrafficSimulator sim(sc, 1'700'000'000'000);
  if (Status s = sim.AdvanceTo(1'700'000'000'000 + n / 10 + 3'600'000, &events); !s.ok()) return Fail("bench_kafka_throughput", s);
  const double gen_s = Seconds(t_gen);
  const size_t total = events.impressions.size() + events.labels.size();
  size_t bytes = 0;
  for (auto* v : {&events.impressions, &events.labels}) for (auto& [k, m] : *v) bytes += m.size();
  std::printf("generated impressions=%zu labels=%zu avg_bytes=%.0f in %.2fs (%.0f events/s)\n", events.impressions.size(),
              events.labels.size(), static_cast<double>(bytes) / total, gen_s, total / gen_s);

  auto kafka = freshet::ingest::EmbeddedKafka::Start(3);
  if (!kafka.ok()) return Fail("bench_kafka_throughput", kafka.status());
  for (const char* t : {"impressions", "labels"}) {
    if (Status s = (*kafka)->CreateTopic(t, kPartitions); !s.ok()) return Fail("bench_kafka_throughput", s);
  }
  freshet::ingest::KafkaProducer::Options popt;
  popt.bootstrap_servers = (*kafka)->bootstrap();
  auto producer = freshet::ingest::KafkaProducer::Create(popt);
  if (!producer.ok()) return Fail("bench_kafka_throughput", producer.status());

  auto t_produce = std::chrono::steady_clock::now();
  for (auto& [k, v] : events.impressions) if (Status s = (*producer)->Produce("impressions", k, v); !s.ok()) return Fail("bench_kafka_throughput", s);
  for (auto& [k, v] : events.labels) if (Status s = (*producer)->Produce("labels", k, v); !s.ok()) return Fail("bench_kafka_throughput", s);
  if (Status s = (*producer)->Flush(60'000); !s.ok()) return Fail("bench_kafka_throughput", s);
  const double produce_s = Seconds(t_produce);
  std::printf("produced %zu events in %.2fs: %.0f events/s, %.1f MB/s (idempotent, acks=all, 3 brokers, 8 partitions)\n", total,
              produce_s, total / produce_s, bytes / produce_s / 1e6);

  freshet::ingest::KafkaConsumer::Options copt;
  copt.bootstrap_servers = (*kafka)->bootstrap();
  copt.group_id = "bench";
  auto consumer = freshet::ingest::KafkaConsumer::Create(copt);
  if (!consumer.ok()) return Fail("bench_kafka_throughput", consumer.status());
  if (Status s = (*consumer)->Subscribe({"impressions", "labels"}); !s.ok()) return Fail("bench_kafka_throughput", s);
  size_t got = 0;
  // The first group join takes ~3 s; time from the first message on.
  std::chrono::steady_clock::time_point t_consume;
  auto last_message = std::chrono::steady_clock::now();
  while (got < total) {
    auto m = (*consumer)->Poll(1000);
    if (!m.ok()) return Fail("bench_kafka_throughput", m.status());
    if (!m->has_value()) {
      if (Seconds(last_message) > 30) {
        return Fail("bench_kafka_throughput", freshet::DataLossError(
            "consumed " + std::to_string(got) + " of " + std::to_string(total) +
            " events, then nothing for 30 s: the embedded cluster trimmed its per-partition log; use fewer --events"));
      }
      continue;
    }
    last_message = std::chrono::steady_clock::now();
    if (got++ == 0) t_consume = last_message;
  }
  const double consume_s = Seconds(t_consume);
  std::printf("consumed %zu events in %.2fs: %.0f events/s (after the group join)\n", total, consume_s, total / consume_s);

  freshet::JsonWriter w;
  w.BeginObject()
      .Key("bench").String("kafka_throughput")
      .Key("metric").String("produce_events_per_s")
      .Key("value").Double(total / produce_s)
      .Key("unit").String("events/s")
      .Key("consume_events_per_s").Double(total / consume_s)
      .Key("events").Int(static_cast<int64_t>(total))
      .Key("avg_event_bytes").Double(static_cast<double>(bytes) / total)
      .Key("simulator_events_per_s").Double(total / gen_s)
      .EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
