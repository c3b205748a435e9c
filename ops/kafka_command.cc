// `freshet kafka`: the embedded Kafka cluster as a process of its own, so separate
// daemons and crash tests can share one cluster. Prints `bootstrap=...` as its first
// stdout line, creates the configured topics, and runs until SIGINT/SIGTERM.
#include <cstdio>

#include "common/logging.h"
#include "common/signals.h"
#include "ingest/embedded_kafka.h"
#include "ops/command_util.h"
#include "ops/commands.h"

namespace freshet::ops {

int KafkaCommand(const std::vector<std::string>& args) {
  auto setup = SetUpCommand("kafka", args, {"brokers", "partitions"}, {});
  if (!setup) return 2;
  const FreshetConfig& config = setup->config;
  auto brokers = setup->flags.GetInt("brokers", config.kafka().embedded_brokers(), 1, 16);
  auto partitions = setup->flags.GetInt("partitions", config.kafka().partitions(), 1, 1024);
  if (!brokers.ok() || !partitions.ok()) {
    std::fprintf(stderr, "freshet kafka: %s\n", (!brokers.ok() ? brokers.status() : partitions.status()).message().c_str());
    return 2;
  }
  StopFlag stop;
  SignalWatcher watcher(&stop);
  auto kafka = ingest::EmbeddedKafka::Start(static_cast<int>(*brokers));
  if (!kafka.ok()) {
    std::fprintf(stderr, "freshet kafka: %s\n", kafka.status().ToString().c_str());
    return 1;
  }
  const KafkaConfig& k = config.kafka();
  for (const std::string& topic : {k.impressions_topic(), k.labels_topic(), k.samples_topic(), k.deadletter_topic()}) {
    Status s = (*kafka)->CreateTopic(topic, static_cast<int>(*partitions));
    if (!s.ok()) {
      std::fprintf(stderr, "freshet kafka: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("bootstrap=%s\n", (*kafka)->bootstrap().c_str());
  std::printf("topics=%s,%s,%s,%s partitions=%lld brokers=%lld\n", k.impressions_topic().c_str(),
              k.labels_topic().c_str(), k.samples_topic().c_str(), k.deadletter_topic().c_str(),
              static_cast<long long>(*partitions), static_cast<long long>(*brokers));
  std::fflush(stdout);
  while (!stop.WaitForMs(1000)) {
  }
  LOG_INFO("embedded_kafka_stopping").Kv("reason", stop.reason());
  return 0;
}

}  // namespace freshet::ops
