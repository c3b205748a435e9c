// Delivery marks (KafkaProducer::Mark/WaitDelivered) and the CheckpointWriter, on the
// embedded cluster over real sockets and RocksDB on a temporary directory. A broker
// taken down holds messages undelivered: a mark waits for the messages produced
// before it and not for those after, and a checkpoint whose samples are undelivered
// never reaches the store.
#include "ingest/checkpoint_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/clock.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

constexpr int kBroker = 1;  // the single broker's id

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = EmbeddedKafka::Start(1);
    ASSERT_TRUE(k.ok()) << k.status();
    kafka_ = std::move(k).value();
    ASSERT_TRUE(kafka_->CreateTopic("samples", 2).ok());
    KafkaProducer::Options opt;
    opt.bootstrap_servers = kafka_->bootstrap();
    opt.linger_ms = 1;
    auto p = KafkaProducer::Create(opt);
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = std::move(p).value();
    dir_ = std::filesystem::temp_directory_path() / ("freshet_ckpt_writer_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    store::KvStore::Options sopt;
    sopt.path = dir_;
    sopt.families = {"join"};
    auto s = store::KvStore::Open(sopt);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    if (kafka_) (void)kafka_->SetBrokerDown(kBroker, false);
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void ProduceN(int n, const std::string& tag) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(producer_->Produce("samples", tag + std::to_string(i), "sample " + tag).ok());
    }
  }
  std::optional<std::string> Stored(const std::string& key) {
    auto v = store_->Get("join", key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }
  CheckpointWriter::Job JobPutting(const std::string& key) {
    CheckpointWriter::Job job;
    job.batch.Put("join", key, "state");
    job.records = 1;
    job.delivery_mark = producer_->Mark();
    return job;
  }

  std::unique_ptr<EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaProducer> producer_;
  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> store_;
};

TEST_F(DeliveryTest, MarkWaitsForEarlierMessagesOnly) {
  ProduceN(200, "a");
  ASSERT_TRUE(producer_->Flush(30000).ok());
  const uint64_t before_outage = producer_->Mark();
  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, true).ok());
  ProduceN(50, "b");  // held: the broker is down
  // Everything before the mark is delivered: no wait for the 50 held ones, which a
  // full flush would have to wait for.
  EXPECT_TRUE(producer_->WaitDelivered(before_outage, 2000).ok());
  EXPECT_EQ(producer_->Flush(300).code(), StatusCode::kDeadlineExceeded);

  const uint64_t after_outage = producer_->Mark();
  Status held = producer_->WaitDelivered(after_outage, 500);
  EXPECT_EQ(held.code(), StatusCode::kDeadlineExceeded) << held;
  EXPECT_LT(producer_->delivered(), 250u);

  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, false).ok());
  Status delivered = producer_->WaitDelivered(after_outage, 60000);  // the same mark, waited for again
  EXPECT_TRUE(delivered.ok()) << delivered;
  EXPECT_EQ(producer_->delivered(), 250u);
  EXPECT_EQ(producer_->failed(), 0u);
}

TEST_F(DeliveryTest, SkippedMarkFallsBackToAFullFlush) {
  ProduceN(20, "a");
  (void)producer_->Mark();  // never waited for
  ProduceN(20, "b");
  const uint64_t second = producer_->Mark();
  ASSERT_TRUE(producer_->WaitDelivered(second, 30000).ok());
  EXPECT_EQ(producer_->delivered(), 40u);  // the first mark's messages too
}

TEST_F(DeliveryTest, WriterWritesOnlyAfterTheSamplesAreDelivered) {
  CheckpointWriter writer(producer_.get(), store_.get(), Clock::Real());
  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, true).ok());
  ProduceN(30, "s");
  writer.Submit(JobPutting("record-1"));
  EXPECT_TRUE(writer.Busy());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // longer than a delivery slice
  EXPECT_FALSE(writer.TakeIfDone().has_value());
  EXPECT_FALSE(Stored("record-1").has_value()) << "state written before its samples were delivered";

  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, false).ok());
  std::optional<CheckpointWriter::Result> r = writer.Wait(60000);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->status.ok()) << r->status;
  EXPECT_EQ(producer_->delivered(), 30u);
  EXPECT_EQ(Stored("record-1"), "state");
  EXPECT_EQ(r->records, 1u);
  EXPECT_GT(r->bytes, 0u);
  EXPECT_GE(r->delivery_wait_us, 1'000'000);
  EXPECT_FALSE(writer.Busy());
  EXPECT_FALSE(writer.Wait(10).has_value());  // nothing in flight
}

TEST_F(DeliveryTest, WaitThatTimesOutAbandonsTheCheckpointUnwritten) {
  CheckpointWriter writer(producer_.get(), store_.get(), Clock::Real());
  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, true).ok());
  ProduceN(5, "s");
  writer.Submit(JobPutting("record-2"));
  std::optional<CheckpointWriter::Result> r = writer.Wait(300);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), StatusCode::kDeadlineExceeded) << r->status;
  EXPECT_NE(r->status.message().find("not written"), std::string::npos) << r->status;
  EXPECT_FALSE(writer.Busy());
  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker, false).ok());
  ASSERT_TRUE(producer_->Flush(60000).ok());
  EXPECT_FALSE(Stored("record-2").has_value());  // abandoned means never written, even later
}

TEST_F(DeliveryTest, EmptyBatchStillWaitsAndSucceeds) {
  CheckpointWriter writer(producer_.get(), store_.get(), Clock::Real());
  ProduceN(10, "s");
  CheckpointWriter::Job job;
  job.delivery_mark = producer_->Mark();
  writer.Submit(std::move(job));
  std::optional<CheckpointWriter::Result> r = writer.Wait(30000);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->status.ok()) << r->status;
  EXPECT_EQ(producer_->delivered(), 10u);
}

}  // namespace
}  // namespace freshet::ingest
