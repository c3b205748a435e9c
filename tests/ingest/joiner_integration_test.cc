// Joiner against the embedded Kafka cluster over real sockets: a simulated stream
// yields exactly one sample per impression with the labels the simulator generated;
// a corpus of bad messages lands in `deadletter` with the right reasons while good
// traffic keeps flowing; a rebalance mid-stream (with two join threads) changes none
// of the samples.
#include "ingest/joiner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include "ingest/embedded_kafka.h"
#include "ops/config.h"
#include "store/kv_store.h"
#include "tests/ingest/ingest_test_util.h"

namespace freshet::ingest {
namespace {

constexpr int kPartitions = 4;

class JoinerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = EmbeddedKafka::Start(1);
    ASSERT_TRUE(k.ok()) << k.status();
    kafka_ = std::move(k).value();
    config_ = ops::DefaultConfig();
    config_.mutable_kafka()->set_bootstrap_servers(kafka_->bootstrap());
    config_.mutable_kafka()->set_partitions(kPartitions);
    config_.mutable_ingest()->set_checkpoint_interval_ms(200);
    config_.mutable_simulator()->set_impressions_per_second(100);
    for (const char* t : {"impressions", "labels", "samples", "deadletter"}) {
      ASSERT_TRUE(kafka_->CreateTopic(t, kPartitions).ok());
    }
    dir_ = std::filesystem::temp_directory_path() / ("freshet_joiner_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    store::KvStore::Options so;
    so.path = dir_.string();
    so.families = Joiner::StoreFamilies();
    store_ = std::move(store::KvStore::Open(so)).value();
    KafkaProducer::Options po;
    po.bootstrap_servers = kafka_->bootstrap();
    producer_ = std::move(KafkaProducer::Create(po)).value();
  }
  void TearDown() override {
    joiner_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartJoiner() {
    Joiner::Options jo;
    jo.config = config_;
    jo.store = store_.get();
    jo.metrics = &metrics_;
    jo.max_batch = max_batch_;
    auto j = Joiner::Create(jo);
    ASSERT_TRUE(j.ok()) << j.status();
    joiner_ = std::move(j).value();
    ASSERT_TRUE(joiner_->Start().ok());
  }
  // Runs the joiner until `samples` samples are out or 60 s passed.
  void RunUntilSamples(uint64_t samples) {
    const int64_t deadline = Clock::Real()->NowMs() + 60000;
    while (joiner_->stats().samples < samples && Clock::Real()->NowMs() < deadline) {
      Status s = joiner_->RunOnce(100);
      ASSERT_TRUE(s.ok()) << s;
    }
  }

  // Two minutes of simulated traffic, then the watermark flush, into the input
  // topics; the sink holds what was produced.
  std::unique_ptr<testutil::RecordingSink> ProduceStream() {
    const int64_t start = Clock::Real()->NowMs() - 600000;
    auto sink = std::make_unique<testutil::RecordingSink>(producer_.get(), config_.kafka());
    ops::TrafficSimulator sim(config_.simulator(), start);
    EXPECT_TRUE(sim.AdvanceTo(start + 120000, sink.get()).ok());
    EXPECT_TRUE(sink->FlushWatermarks(kPartitions, start + 120000 + 200000).ok());
    return sink;
  }
  void ExpectOneExactSamplePerImpression(testutil::RecordingSink& sink);

  std::unique_ptr<EmbeddedKafka> kafka_;
  FreshetConfig config_;
  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<KafkaProducer> producer_;
  MetricsRegistry metrics_;
  std::unique_ptr<Joiner> joiner_;
  int max_batch_ = 5000;
};

TEST_F(JoinerIntegrationTest, SimulatedStreamGivesOneExactSamplePerImpression) {
  std::unique_ptr<testutil::RecordingSink> stream = ProduceStream();
  testutil::RecordingSink& sink = *stream;
  const size_t n = sink.impressions.size();
  ASSERT_GT(n, 10000u);

  StartJoiner();
  const int64_t t0 = Clock::Real()->MonotonicUs();
  RunUntilSamples(n);
  const double secs = (Clock::Real()->MonotonicUs() - t0) / 1e6;
  ASSERT_TRUE(joiner_->Stop().ok());
  EXPECT_EQ(joiner_->stats().samples, n);
  EXPECT_EQ(joiner_->stats().deadletters, 0u);
  std::printf("joined %zu impressions + %zu labels into %zu samples in %.2f s (incl. group join)\n", n,
              sink.label_count, n, secs);

  ExpectOneExactSamplePerImpression(sink);
  // Metrics contract.
  EXPECT_EQ(metrics_.GetCounter("freshet_ingest_events_total", "", {{"topic", "impressions"}})->Value(),
            n + kPartitions);
  EXPECT_EQ(metrics_.GetCounter("freshet_ingest_samples_total", "", {{"policy", "wait"}})->Value(), n);
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("freshet_freshness_seconds_bucket{stage=\"joined\""), std::string::npos);
  EXPECT_NE(text.find("freshet_ingest_label_delay_seconds_bucket{kind=\"click\""), std::string::npos);
}

// The samples topic holds exactly one sample per impression of `sink`, with the
// labels and masks the `wait` policy must give it.
void JoinerIntegrationTest::ExpectOneExactSamplePerImpression(testutil::RecordingSink& sink) {
  const size_t n = sink.impressions.size();
  auto messages = testutil::ReadTopic(kafka_->bootstrap(), "samples", 30000,
                                      [&](const std::vector<KafkaMessage>& m) { return m.size() >= n; });
  ASSERT_EQ(messages.size(), n);
  std::map<std::string, Sample> by_id;
  for (const KafkaMessage& m : messages) {
    Sample s;
    ASSERT_TRUE(s.ParseFromString(m.value));
    EXPECT_EQ(m.key, std::to_string(s.user_id()));
    EXPECT_TRUE(by_id.emplace(s.sample_id(), s).second) << "duplicate " << s.sample_id();
  }
  size_t positives = 0;
  for (const Impression& imp : sink.impressions) {
    auto it = by_id.find(imp.request_id());
    ASSERT_NE(it, by_id.end()) << imp.request_id();
    const Sample& s = it->second;
    const testutil::Expected e = testutil::ExpectedWait(config_, imp, sink.labels[imp.request_id()]);
    ASSERT_EQ(s.label_size(), config_.tasks_size());
    for (int t = 0; t < config_.tasks_size(); ++t) {
      ASSERT_EQ(s.mask(t), e.mask[t]) << imp.request_id() << " task " << config_.tasks(t).name();
      ASSERT_FLOAT_EQ(s.label(t), e.label[t]) << imp.request_id() << " task " << config_.tasks(t).name();
    }
    positives += s.label(0) > 0;
    EXPECT_EQ(s.sparse_size(), imp.sparse_size());
    EXPECT_EQ(s.event_time_ms(), imp.event_time_ms());
  }
  EXPECT_GT(positives, n / 20);  // the simulator's click rate is far above 5%
}

// Two join threads, and a second member joining the group mid-stream and leaving
// again: the joiner checkpoints and drops every partition at the revocation, takes
// half back, then all, reloading each from its store and reading on from the stored
// offsets (messages it had read but not joined before a rebalance are read again).
// The samples are still exactly one per impression, with the right labels.
TEST_F(JoinerIntegrationTest, RebalancesMidStreamKeepEverySampleExact) {
  config_.mutable_ingest()->set_join_threads(2);
  max_batch_ = 300;  // above the lanes' minimum; paced below so the rebalance lands mid-stream
  std::unique_ptr<testutil::RecordingSink> stream = ProduceStream();
  testutil::RecordingSink& sink = *stream;
  const size_t n = sink.impressions.size();
  const uint64_t total = n + sink.label_count + 2 * kPartitions;

  StartJoiner();
  const int64_t deadline = Clock::Real()->NowMs() + 60000;
  while (joiner_->stats().events < total / 10 && Clock::Real()->NowMs() < deadline) {
    ASSERT_TRUE(joiner_->RunOnce(100).ok());
  }

  KafkaConsumer::Options co;
  co.bootstrap_servers = kafka_->bootstrap();
  co.group_id = config_.ingest().consumer_group();
  std::atomic<int> other_assigned{0};
  co.on_assign = [&](std::vector<TopicPartitionOffset>* tps) { other_assigned += static_cast<int>(tps->size()); };
  auto other = KafkaConsumer::Create(co);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Subscribe({config_.kafka().impressions_topic(), config_.kafka().labels_topic()}).ok());
  // Both members poll until the second one holds partitions (it reads, joins nothing).
  // The joiner keeps polling (it must, to take part in the rebalance) but is paced,
  // more slowly past half the stream, so the stream outlasts a slow group join:
  // at most 300 events per 50 ms, then per 300 ms.
  while (other_assigned.load() == 0 && Clock::Real()->NowMs() < deadline) {
    ASSERT_TRUE(joiner_->RunOnce(20).ok());
    ASSERT_TRUE((*other)->Poll(20).ok());
    const bool past_half = joiner_->stats().events > total / 2;
    std::this_thread::sleep_for(std::chrono::milliseconds(past_half ? 300 : 50));
  }
  ASSERT_GT(other_assigned.load(), 0) << "no rebalance within 60 s";
  ASSERT_LT(joiner_->stats().events, total * 9 / 10) << "the rebalance came too late to test a handover mid-stream";
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(joiner_->RunOnce(20).ok());
    ASSERT_TRUE((*other)->Poll(20).ok());
  }
  ASSERT_TRUE((*other)->Close().ok());  // leaves: the joiner takes every partition back
  RunUntilSamples(n);
  ASSERT_TRUE(joiner_->Stop().ok());
  EXPECT_EQ(joiner_->stats().samples, n);
  ExpectOneExactSamplePerImpression(sink);
}

TEST_F(JoinerIntegrationTest, BadInputGoesToDeadLetterWhileGoodTrafficFlows) {
  config_.mutable_kafka()->set_max_message_bytes(4096);
  config_.mutable_ingest()->set_max_impression_age_ms(60000);
  const int64_t now = Clock::Real()->NowMs();
  const int64_t start = now - 600000;
  testutil::RecordingSink sink(producer_.get(), config_.kafka());
  ops::TrafficSimulator sim(config_.simulator(), start);
  ASSERT_TRUE(sim.AdvanceTo(start + 60000, &sink).ok());
  ASSERT_TRUE(producer_->Flush(10000).ok());

  auto imp = [&](const std::string& rid, std::function<void(Impression*)> edit) {
    Impression i = sink.impressions[0];
    i.set_request_id(rid);
    edit(&i);
    return i.SerializeAsString();
  };
  auto label = [&](const std::string& rid, std::function<void(Label*)> edit) {
    Label l;
    l.set_request_id(rid);
    l.set_user_id(1);
    l.set_item_id(1);
    l.set_event_time_ms(start + 50000);
    l.set_kind(LABEL_CLICK);
    l.set_value(1);
    edit(&l);
    return l.SerializeAsString();
  };
  struct Bad {
    std::string topic, key, value, reason;
  };
  std::vector<Bad> corpus = {
      {"impressions", "b1", std::string("\x0a\xff\xff\xff\xff\x0f", 6), "malformed_protobuf"},
      {"labels", "b2", "garbage that is not a protobuf \xff\xff", "malformed_protobuf"},
      {"impressions", "", imp("", [](Impression*) {}), "missing_request_id"},
      {"impressions", "b4", imp("b4", [](Impression* i) { i->set_user_id(0); }), "missing_user_id"},
      {"labels", "b5", label("b5", [](Label* l) { l->set_item_id(0); }), "missing_item_id"},
      {"impressions", "b6", imp("b6", [](Impression* i) { i->mutable_dense(0)->set_values(0, NAN); }), "non_finite_value"},
      {"labels", "b7", label("b7", [](Label* l) { l->set_value(INFINITY); }), "non_finite_value"},
      {"labels", "b8", label("b8", [](Label* l) { l->set_kind(static_cast<LabelKind>(99)); }), "unknown_label_kind"},
      {"labels", "b9", label("b9", [](Label* l) { l->set_kind(LABEL_KIND_UNSPECIFIED); }), "unknown_label_kind"},
      {"impressions", "b10", imp("b10", [](Impression* i) { i->add_sparse()->mutable_ids()->Resize(1000, 1ULL << 60); }),
       "oversized"},
      {"impressions", "b11", imp("b11", [&](Impression* i) { i->set_event_time_ms(start - 3600000); }),
       "impression_too_old"},
      {"labels", "b12", label("b12", [&](Label* l) { l->set_event_time_ms(now + 3600000); }), "event_time_in_future"},
      {"impressions", "other-key", imp("b13", [](Impression*) {}), "key_mismatch"},
  };
  for (const Bad& b : corpus) ASSERT_TRUE(producer_->Produce(b.topic, b.key, b.value).ok());
  ASSERT_TRUE(sim.AdvanceTo(start + 120000, &sink).ok());  // good traffic after the bad
  ASSERT_TRUE(sink.FlushWatermarks(kPartitions, start + 120000 + 200000).ok());
  const size_t good = sink.impressions.size();

  StartJoiner();
  RunUntilSamples(good);
  EXPECT_EQ(joiner_->stats().samples, good);
  EXPECT_TRUE(joiner_->Ready().ok()) << joiner_->Ready();
  ASSERT_TRUE(joiner_->Stop().ok());

  auto dead = testutil::ReadTopic(kafka_->bootstrap(), "deadletter", 20000,
                                  [&](const std::vector<KafkaMessage>& m) { return m.size() >= corpus.size(); });
  ASSERT_EQ(dead.size(), corpus.size());
  std::multiset<std::string> reasons, expected;
  for (const Bad& b : corpus) expected.insert(b.reason);
  for (const KafkaMessage& m : dead) {
    DeadLetter d;
    ASSERT_TRUE(d.ParseFromString(m.value));
    reasons.insert(d.reason());
    EXPECT_EQ(d.component(), "ingest");
    EXPECT_FALSE(d.detail().empty());
    bool found = false;
    for (const Bad& b : corpus) found = found || (b.value == d.payload() && b.topic == d.source_topic() && b.reason == d.reason());
    EXPECT_TRUE(found) << d.reason() << " payload not matched";
  }
  EXPECT_EQ(reasons, expected);
  EXPECT_EQ(metrics_.GetCounter("freshet_ingest_deadletter_total", "", {{"reason", "non_finite_value"}})->Value(), 2);
  EXPECT_EQ(metrics_.GetCounter("freshet_ingest_deadletter_total", "", {{"reason", "oversized"}})->Value(), 1);
}

}  // namespace
}  // namespace freshet::ingest
