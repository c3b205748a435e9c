// Consumer lag per partition against the embedded cluster: KafkaConsumer::Lag equals
// the messages not yet read (from librdkafka's cached watermarks, so the test waits,
// bounded, for them to catch up), and the joiner exports it as
// freshet_ingest_consumer_lag_messages{topic,partition} and in StatusJson.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "common/clock.h"
#include "common/metrics.h"
#include "ingest/embedded_kafka.h"
#include "ingest/joiner.h"
#include "ingest/kafka_client.h"
#include "ops/config.h"
#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

// Polls `f` (returns true when satisfied) for up to `timeout_ms`.
template <typename F>
bool Eventually(int timeout_ms, F f) {
  const int64_t deadline = Clock::Real()->NowMs() + timeout_ms;
  while (Clock::Real()->NowMs() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

TEST(ConsumerLagTest, LagIsTheCountOfUnreadMessagesPerPartition) {
  auto kafka = EmbeddedKafka::Start(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  ASSERT_TRUE((*kafka)->CreateTopic("lag", 2).ok());
  KafkaProducer::Options po;
  po.bootstrap_servers = (*kafka)->bootstrap();
  auto producer = KafkaProducer::Create(po);
  ASSERT_TRUE(producer.ok()) << producer.status();
  const std::map<int32_t, int64_t> produced = {{0, 300}, {1, 120}};
  for (const auto& [p, n] : produced) {
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE((*producer)->Produce("lag", "k" + std::to_string(i), "v", p).ok());
  }
  ASSERT_TRUE((*producer)->Flush(10000).ok());

  KafkaConsumer::Options co;
  co.bootstrap_servers = (*kafka)->bootstrap();
  co.group_id = "lag-test";
  auto consumer = KafkaConsumer::Create(co);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Subscribe({"lag"}).ok());
  // Read 150 messages, at least 10 from each partition.
  std::map<int32_t, int64_t> consumed;
  const int64_t deadline = Clock::Real()->NowMs() + 30000;
  while ((consumed[0] + consumed[1] < 150 || consumed[0] < 10 || consumed[1] < 10) &&
         Clock::Real()->NowMs() < deadline) {
    auto m = (*consumer)->Poll(200);
    ASSERT_TRUE(m.ok()) << m.status();
    if (!m->has_value()) continue;
    EXPECT_EQ((*m)->offset, consumed[(*m)->partition]);
    ++consumed[(*m)->partition];
  }
  ASSERT_GE(consumed[0], 10);
  ASSERT_GE(consumed[1], 10);

  std::vector<PartitionLag> lags;
  const bool caught_up = Eventually(10000, [&] {
    lags = (*consumer)->Lag();
    if (lags.size() != 2) return false;
    for (const PartitionLag& l : lags) {
      if (l.lag != produced.at(l.partition) - consumed[l.partition]) return false;
    }
    return true;
  });
  ASSERT_TRUE(caught_up) << "lags did not converge";
  for (const PartitionLag& l : lags) {
    EXPECT_EQ(l.topic, "lag");
    EXPECT_EQ(l.position, consumed[l.partition]);
    EXPECT_EQ(l.high_watermark, produced.at(l.partition));
  }
  // More messages arrive: the cached watermark follows without any Poll.
  for (int i = 0; i < 25; ++i) ASSERT_TRUE((*producer)->Produce("lag", "more", "v", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10000).ok());
  EXPECT_TRUE(Eventually(10000, [&] {
    for (const PartitionLag& l : (*consumer)->Lag()) {
      if (l.partition == 1) return l.lag == produced.at(1) + 25 - consumed[1];
    }
    return false;
  }));
  ASSERT_TRUE((*consumer)->Close().ok());
}

TEST(ConsumerLagTest, JoinerExportsLagGaugeAndStatus) {
  constexpr int kPartitions = 2;
  auto kafka = EmbeddedKafka::Start(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  for (const char* t : {"impressions", "labels", "samples", "deadletter"}) {
    ASSERT_TRUE((*kafka)->CreateTopic(t, kPartitions).ok());
  }
  FreshetConfig config = ops::DefaultConfig();
  config.mutable_kafka()->set_bootstrap_servers((*kafka)->bootstrap());
  config.mutable_kafka()->set_partitions(kPartitions);
  const auto dir = std::filesystem::temp_directory_path() / ("freshet_lag_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  store::KvStore::Options so;
  so.path = dir.string();
  so.families = Joiner::StoreFamilies();
  auto store = store::KvStore::Open(so);
  ASSERT_TRUE(store.ok()) << store.status();
  KafkaProducer::Options po;
  po.bootstrap_servers = (*kafka)->bootstrap();
  auto producer = KafkaProducer::Create(po);
  ASSERT_TRUE(producer.ok());
  // Undecodable impressions: consumed (and dead-lettered) all the same.
  for (int i = 0; i < 40; ++i) ASSERT_TRUE((*producer)->Produce("impressions", "k", "junk", i % kPartitions).ok());
  ASSERT_TRUE((*producer)->Flush(10000).ok());

  MetricsRegistry metrics;
  Joiner::Options jo;
  jo.config = config;
  jo.store = store->get();
  jo.metrics = &metrics;
  auto joiner = Joiner::Create(jo);
  ASSERT_TRUE(joiner.ok()) << joiner.status();
  ASSERT_TRUE((*joiner)->Start().ok());
  auto gauge = [&](const std::string& topic, int p) {
    return metrics.GetGauge("freshet_ingest_consumer_lag_messages", "", {{"topic", topic}, {"partition", std::to_string(p)}});
  };
  for (int p = 0; p < kPartitions; ++p) gauge("impressions", p)->Set(-1);  // so 0 means "refreshed"
  const int64_t deadline = Clock::Real()->NowMs() + 30000;
  auto done = [&] {
    if ((*joiner)->stats().events < 40) return false;
    for (int p = 0; p < kPartitions; ++p) {
      if (gauge("impressions", p)->Value() != 0) return false;
    }
    return true;
  };
  while (!done() && Clock::Real()->NowMs() < deadline) ASSERT_TRUE((*joiner)->RunOnce(100).ok());
  EXPECT_EQ((*joiner)->stats().events, 40u);
  for (int p = 0; p < kPartitions; ++p) EXPECT_EQ(gauge("impressions", p)->Value(), 0) << p;
  const std::string status = (*joiner)->StatusJson();
  EXPECT_NE(status.find("\"impressions_lag\":0"), std::string::npos) << status;
  EXPECT_NE(metrics.Render().find("freshet_ingest_consumer_lag_messages{"), std::string::npos);
  ASSERT_TRUE((*joiner)->Stop().ok());
  joiner->reset();
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace freshet::ingest
