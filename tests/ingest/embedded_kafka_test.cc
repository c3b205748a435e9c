// Embedded Kafka over real loopback sockets: produce and consume back through a
// consumer group with manual commits; a second member of the group resumes exactly
// after the committed offsets; keys land on consistent partitions across topics.
#include "ingest/embedded_kafka.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/clock.h"
#include "ingest/kafka_client.h"

namespace freshet::ingest {
namespace {

constexpr int kPartitions = 3;

class EmbeddedKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = EmbeddedKafka::Start(3);
    ASSERT_TRUE(k.ok()) << k.status();
    kafka_ = std::move(k).value();
    ASSERT_TRUE(kafka_->CreateTopic("events", kPartitions).ok());
  }

  std::unique_ptr<KafkaProducer> Producer() {
    KafkaProducer::Options opt;
    opt.bootstrap_servers = kafka_->bootstrap();
    auto p = KafkaProducer::Create(opt);
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(p).value();
  }

  std::unique_ptr<KafkaConsumer> Consumer(const std::string& group, const std::vector<std::string>& topics = {"events"}) {
    KafkaConsumer::Options opt;
    opt.bootstrap_servers = kafka_->bootstrap();
    opt.group_id = group;
    auto c = KafkaConsumer::Create(opt);
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE((*c)->Subscribe(topics).ok());
    return std::move(c).value();
  }

  // Reads until `n` messages arrived or 30 s passed.
  std::vector<KafkaMessage> ReadN(KafkaConsumer* c, size_t n) {
    std::vector<KafkaMessage> out;
    const int64_t deadline = Clock::Real()->NowMs() + 30000;
    while (out.size() < n && Clock::Real()->NowMs() < deadline) {
      auto m = c->Poll(200);
      EXPECT_TRUE(m.ok()) << m.status();
      if (m.ok() && m->has_value()) out.push_back(std::move(**m));
    }
    return out;
  }

  std::unique_ptr<EmbeddedKafka> kafka_;
};

TEST_F(EmbeddedKafkaTest, BootstrapListsEveryBroker) {
  const std::string& b = kafka_->bootstrap();
  EXPECT_EQ(std::count(b.begin(), b.end(), ','), 2) << b;
  EXPECT_EQ(b.rfind("127.0.0.1:", 0), 0u) << b;
  auto p = Producer();
  EXPECT_TRUE(p->CheckReachable(5000).ok());
  EXPECT_EQ(*p->PartitionCount("events"), kPartitions);
  EXPECT_EQ(p->PartitionCount("nope", 2000).status().code(), StatusCode::kNotFound);
}

TEST_F(EmbeddedKafkaTest, ProduceConsumeCommitAndResume) {
  constexpr int kN = 300;
  {
    auto p = Producer();
    for (int i = 0; i < kN; ++i) {
      ASSERT_TRUE(p->Produce("events", "key-" + std::to_string(i), "value-" + std::to_string(i)).ok());
    }
    ASSERT_TRUE(p->Flush(10000).ok());
    EXPECT_EQ(p->delivered(), static_cast<uint64_t>(kN));
    EXPECT_EQ(p->failed(), 0u);
  }

  // First member reads 100 messages and commits exactly those.
  std::set<std::string> seen;
  {
    auto c = Consumer("g1");
    std::vector<KafkaMessage> first = ReadN(c.get(), 100);
    ASSERT_EQ(first.size(), 100u);
    std::map<int32_t, int64_t> next;
    for (const auto& m : first) {
      EXPECT_EQ(m.value, "value-" + m.key.substr(4));
      seen.insert(m.key);
      next[m.partition] = std::max(next[m.partition], m.offset + 1);
    }
    std::vector<TopicPartitionOffset> commit;
    for (auto [part, off] : next) commit.push_back({"events", part, off});
    ASSERT_TRUE(c->Commit(commit).ok());
    auto committed = c->Committed();
    ASSERT_TRUE(committed.ok()) << committed.status();
    for (const auto& tp : *committed) {
      if (next.count(tp.partition)) {
        EXPECT_EQ(tp.offset, next[tp.partition]);
      }
    }
    ASSERT_TRUE(c->Close().ok());
  }

  // A new member of the same group resumes after the committed offsets: together the
  // two read every message exactly once (per-partition reads are in offset order, so
  // committed prefixes never overlap with what follows).
  auto c2 = Consumer("g1");
  std::vector<KafkaMessage> rest = ReadN(c2.get(), kN - 100);
  ASSERT_EQ(rest.size(), static_cast<size_t>(kN - 100));
  for (const auto& m : rest) {
    EXPECT_TRUE(seen.insert(m.key).second) << "read twice: " << m.key;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kN));
  auto extra = c2->Poll(500);
  ASSERT_TRUE(extra.ok());
  EXPECT_FALSE(extra->has_value()) << "more messages than were produced";
}

TEST_F(EmbeddedKafkaTest, SameKeySamePartitionAcrossTopics) {
  ASSERT_TRUE(kafka_->CreateTopic("other", kPartitions).ok());
  auto p = Producer();
  for (int i = 0; i < 50; ++i) {
    std::string key = "req-" + std::to_string(i);
    ASSERT_TRUE(p->Produce("events", key, "a").ok());
    ASSERT_TRUE(p->Produce("other", key, "b").ok());
  }
  ASSERT_TRUE(p->Flush(10000).ok());
  auto c = Consumer("copart", {"events", "other"});
  const std::vector<KafkaMessage> read = ReadN(c.get(), 100);
  ASSERT_EQ(read.size(), 100u);
  std::map<std::string, std::map<std::string, int32_t>> where;  // key -> topic -> partition
  for (const KafkaMessage& m : read) where[m.key][m.topic] = m.partition;
  std::set<int32_t> partitions_used;
  for (auto& [key, topics] : where) {
    EXPECT_EQ(topics["events"], topics["other"]) << key;
    partitions_used.insert(topics["events"]);
  }
  EXPECT_EQ(partitions_used.size(), static_cast<size_t>(kPartitions));
}

// ProduceBatch: each key lands where Produce puts it, every message arrives once, a
// queue smaller than the batch is waited for, and a queue that stays full ends the
// call with RESOURCE_EXHAUSTED after a prefix of the batch.
TEST_F(EmbeddedKafkaTest, ProduceBatchPartitionsLikeProduceAndWaitsForRoom) {
  ASSERT_TRUE(kafka_->CreateTopic("single", kPartitions).ok());
  constexpr int kN = 400;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kN; ++i) {
    keys.push_back("req-" + std::to_string(i));
    values.push_back("v" + std::to_string(i));
  }
  std::vector<KafkaProducer::KeyValue> batch;
  for (int i = 0; i < kN; ++i) batch.push_back({keys[i], values[i]});
  {
    KafkaProducer::Options opt;
    opt.bootstrap_servers = kafka_->bootstrap();
    opt.properties["queue.buffering.max.messages"] = "50";  // the batch waits for room 8 times over
    auto p = KafkaProducer::Create(opt);
    ASSERT_TRUE(p.ok()) << p.status();
    size_t enqueued = 0;
    ASSERT_TRUE((*p)->ProduceBatch("events", batch, &enqueued).ok());
    EXPECT_EQ(enqueued, static_cast<size_t>(kN));
    for (int i = 0; i < kN; ++i) ASSERT_TRUE((*p)->Produce("single", keys[i], values[i]).ok());
    ASSERT_TRUE((*p)->Flush(10000).ok());
    EXPECT_EQ((*p)->delivered(), static_cast<uint64_t>(2 * kN));
  }
  auto c = Consumer("batch", {"events", "single"});
  const std::vector<KafkaMessage> read = ReadN(c.get(), 2 * kN);
  ASSERT_EQ(read.size(), static_cast<size_t>(2 * kN));
  std::map<std::string, std::map<std::string, int32_t>> where;  // key -> topic -> partition
  std::map<std::string, std::string> value_of;
  for (const KafkaMessage& m : read) {
    EXPECT_EQ(where[m.key].count(m.topic), 0u) << "twice: " << m.key;
    where[m.key][m.topic] = m.partition;
    if (m.topic == "events") value_of[m.key] = m.value;
  }
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(where[keys[i]]["events"], where[keys[i]]["single"]) << keys[i];
    EXPECT_EQ(value_of[keys[i]], values[i]);
  }

  // Nothing drains the queue (no broker answers): a prefix is enqueued, then the wait
  // gives up.
  KafkaProducer::Options dead;
  dead.bootstrap_servers = "127.0.0.1:1";
  dead.enqueue_timeout_ms = 200;
  dead.properties["queue.buffering.max.messages"] = "30";
  dead.properties["message.timeout.ms"] = "1000";
  auto stuck = KafkaProducer::Create(dead);
  ASSERT_TRUE(stuck.ok()) << stuck.status();
  size_t enqueued = 0;
  Status s = (*stuck)->ProduceBatch("events", batch, &enqueued);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(enqueued, 30u);
}

TEST_F(EmbeddedKafkaTest, BadPropertyNamesTheProperty) {
  KafkaProducer::Options opt;
  opt.bootstrap_servers = kafka_->bootstrap();
  opt.properties["linger.ms"] = "not-a-number";
  auto p = KafkaProducer::Create(opt);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("linger.ms=not-a-number"), std::string::npos) << p.status();
}

TEST(EmbeddedKafkaStartTest, RejectsZeroBrokers) {
  EXPECT_EQ(EmbeddedKafka::Start(0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace freshet::ingest
