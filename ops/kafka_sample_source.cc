// KafkaSampleSource: learner::SampleSource over the samples topic; see
// kafka_sample_source.h.
#include "ops/kafka_sample_source.h"

#include <set>

#include "ingest/kafka_client.h"

namespace freshet::ops {
namespace {

// The samples topic through a KafkaConsumer in a consumer group (manual commits only)
// plus a producer handle used only to ask for metadata (readiness).
class KafkaSampleSource : public learner::SampleSource {
 public:
  KafkaSampleSource(const FreshetConfig& config, std::string bootstrap, std::string client_id)
      : config_(config), bootstrap_(std::move(bootstrap)), client_id_(std::move(client_id)) {}

  Status Start(std::function<void(std::vector<learner::SourceOffset>*)> on_assign) override {
    ingest::KafkaConsumer::Options o;
    o.bootstrap_servers = bootstrap_;
    o.client_id = client_id_;
    o.properties.insert(config_.kafka().client_properties().begin(), config_.kafka().client_properties().end());
    o.group_id = config_.learner().consumer_group();
    o.session_timeout_ms = config_.kafka().session_timeout_ms();
    o.from_beginning = true;
    const std::string topic = config_.kafka().samples_topic();
    o.on_assign = [on_assign, topic](std::vector<ingest::TopicPartitionOffset>* tps) {
      std::vector<learner::SourceOffset> mine;
      for (const auto& tp : *tps)
        if (tp.topic == topic) mine.push_back({tp.partition, tp.offset});
      on_assign(&mine);
      for (auto& tp : *tps)
        for (const auto& m : mine)
          if (tp.topic == topic && tp.partition == m.partition) tp.offset = m.offset;
    };
    ASSIGN_OR_RETURN(consumer_, ingest::KafkaConsumer::Create(o));
    RETURN_IF_ERROR(consumer_->Subscribe({topic}));
    ingest::KafkaProducer::Options po;
    po.bootstrap_servers = bootstrap_;
    po.client_id = client_id_ + "-probe";
    po.properties = o.properties;
    ASSIGN_OR_RETURN(probe_, ingest::KafkaProducer::Create(po));
    return Status::Ok();
  }

  StatusOr<std::optional<learner::SourceRecord>> Poll(int timeout_ms) override {
    ASSIGN_OR_RETURN(std::optional<ingest::KafkaMessage> m, consumer_->Poll(timeout_ms));
    if (!m) return std::optional<learner::SourceRecord>();
    learner::SourceRecord r;
    r.partition = m->partition;
    r.offset = m->offset;
    r.value = std::move(m->value);
    return std::optional<learner::SourceRecord>(std::move(r));
  }

  // Advisory (lag tools read it; resuming uses the checkpoint's offsets), so it only
  // covers partitions this member holds, and never blocks the polling thread: a
  // synchronous commit issued while the group is still joining waits on the join,
  // which waits on this thread's next Poll, and the member never gets its partitions.
  Status Commit(const std::vector<learner::SourceOffset>& offsets) override {
    if (!consumer_) return Status::Ok();
    std::set<int32_t> assigned;
    for (const auto& tp : consumer_->Assignment()) assigned.insert(tp.partition);
    std::vector<ingest::TopicPartitionOffset> tps;
    for (const auto& o : offsets)
      if (assigned.count(o.partition) > 0) tps.push_back({config_.kafka().samples_topic(), o.partition, o.offset});
    return consumer_->Commit(tps, /*async=*/true);
  }

  Status CheckReachable(int timeout_ms) override {
    if (!probe_) return UnavailableError("Kafka source not started");
    return probe_->CheckReachable(timeout_ms);
  }

  Status Close() override { return consumer_ ? consumer_->Close() : Status::Ok(); }

 private:
  FreshetConfig config_;
  std::string bootstrap_, client_id_;
  std::unique_ptr<ingest::KafkaConsumer> consumer_;
  std::unique_ptr<ingest::KafkaProducer> probe_;
};

}  // namespace

std::unique_ptr<learner::SampleSource> NewKafkaSampleSource(const FreshetConfig& config, const std::string& bootstrap,
                                                            const std::string& client_id) {
  return std::make_unique<KafkaSampleSource>(config, bootstrap.empty() ? config.kafka().bootstrap_servers() : bootstrap,
                                             client_id);
}

}  // namespace freshet::ops
