// Thin, typed wrappers over librdkafka's C API: an idempotent producer and a
// consumer-group consumer with manual offset control. Used by ingest, the learner,
// the simulator and tests, against the embedded cluster or a real one alike.
// librdkafka types stay out of this header so that widely included code does not pay
// for its headers.
//
// Thread-safety: KafkaProducer::Produce/Flush may be called from several threads.
// A KafkaConsumer is used from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace freshet::ingest {

struct KafkaClientOptions {
  std::string bootstrap_servers;                   // "host:port[,host:port]"
  std::string client_id = "freshet";
  std::map<std::string, std::string> properties;   // extra librdkafka properties
};

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;  // next offset to read; < 0 means "the group's committed offset"
};

struct KafkaMessage {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // producer create time
};

class KafkaProducer {
 public:
  struct Options : KafkaClientOptions {
    int linger_ms = 5;
    // Produce() waits this long for room in librdkafka's local queue before failing
    // with RESOURCE_EXHAUSTED (backpressure, never a silent drop).
    int enqueue_timeout_ms = 30000;
  };

  // Idempotent (enable.idempotence=true, acks=all), murmur2 partitioner so keys land
  // where Java clients would put them.
  static StatusOr<std::unique_ptr<KafkaProducer>> Create(const Options& options);
  ~KafkaProducer();  // flushes for up to 10 s, logs what could not be delivered

  // Enqueues one message keyed by `key`. partition < 0: chosen by key.
  Status Produce(const std::string& topic, std::string_view key, std::string_view value,
                 int32_t partition = -1);
  // Enqueues messages[0, n) to `topic`, each keyed and partitioned as by Produce, in
  // one call to librdkafka (one topic lock and one clock read for all of them, where
  // Produce pays them per message). Waits for room as Produce does. Returns how many
  // were enqueued: all of them, or, with RESOURCE_EXHAUSTED or another error, the
  // first `*enqueued` (the rest are not, except after an error other than a full
  // queue, which leaves the producer unusable for the caller anyway).
  struct KeyValue {
    std::string_view key;
    std::string_view value;
  };
  Status ProduceBatch(const std::string& topic, std::span<const KeyValue> messages, size_t* enqueued);
  // Waits until every enqueued message is delivered or failed. Returns the first
  // delivery error seen since creation (sticky), or DEADLINE_EXCEEDED.
  Status Flush(int timeout_ms);
  // Delivery marks: Mark() returns a mark covering every message whose Produce
  // returned before the call; WaitDelivered(mark) waits until all of those are
  // delivered or failed, without waiting for messages produced after the mark (unlike
  // Flush, it does not stall a producer that keeps producing). Returns the sticky
  // first delivery error, or DEADLINE_EXCEEDED (the mark can be waited for again).
  // Wait for marks in the order taken: a wait for a mark whose predecessor was never
  // waited for to the end falls back to a full Flush.
  uint64_t Mark();
  Status WaitDelivered(uint64_t mark, int timeout_ms);
  // Serves delivery reports; call regularly from a producing loop.
  void Poll(int timeout_ms = 0);
  // Asks the cluster for metadata: UNAVAILABLE when no broker answers in time.
  Status CheckReachable(int timeout_ms) const;
  // Partition count of `topic`, from cluster metadata.
  StatusOr<int> PartitionCount(const std::string& topic, int timeout_ms = 5000) const;

  uint64_t delivered() const;
  uint64_t failed() const;
  Status first_error() const;

 private:
  struct Impl;
  explicit KafkaProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Consumer lag of one assigned partition (KafkaConsumer::Lag).
struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t position = -1;        // next offset the application will read; -1 unknown
  int64_t high_watermark = -1;  // librdkafka's cached high watermark; -1 unknown
  int64_t lag = -1;             // high_watermark - position; -1 when either is unknown
};

class KafkaConsumer {
 public:
  struct Options : KafkaClientOptions {
    std::string group_id;
    int session_timeout_ms = 6000;
    // Where to start when the group has no committed offset.
    bool from_beginning = true;
    // Called on each partition assignment, before consuming starts: may overwrite
    // each entry's offset (e.g. with offsets stored atomically with local state).
    std::function<void(std::vector<TopicPartitionOffset>*)> on_assign;
    // Called with the partitions being taken away (rebalance or close).
    std::function<void(const std::vector<TopicPartitionOffset>&)> on_revoke;
  };

  static StatusOr<std::unique_ptr<KafkaConsumer>> Create(const Options& options);
  ~KafkaConsumer();  // leaves the group

  Status Subscribe(const std::vector<std::string>& topics);
  // Reads one message. nullopt on timeout. Transient broker errors are logged
  // (rate-limited) and read as a timeout; fatal ones return an error.
  StatusOr<std::optional<KafkaMessage>> Poll(int timeout_ms);
  // The same into `*out`, whose strings keep their capacity (a loop reading many
  // messages allocates nothing per message). false on timeout.
  StatusOr<bool> PollInto(int timeout_ms, KafkaMessage* out);
  // Commits `offsets` (each the next offset to read). Synchronous by default: it
  // waits for the group coordinator, and must not be called before this consumer has
  // an assignment (during a group join it would wait on the join, which waits on
  // this thread's next Poll). async: returns at once; errors are only logged.
  Status Commit(const std::vector<TopicPartitionOffset>& offsets, bool async = false);
  // Commits message.offset + 1 for its partition.
  Status CommitMessage(const KafkaMessage& message);
  // The group's committed offsets for the current assignment.
  StatusOr<std::vector<TopicPartitionOffset>> Committed(int timeout_ms = 5000);
  std::vector<TopicPartitionOffset> Assignment() const;
  // Per assigned partition: high watermark minus position, in messages. Cheap and
  // non-blocking: it reads librdkafka's cached high watermark (rd_kafka_get_watermark_
  // offsets, refreshed by every fetch response, so as fresh as the last fetch) and
  // the application position (rd_kafka_position), never querying the brokers
  // (rd_kafka_query_watermark_offsets would block for a round trip per partition).
  // A partition nothing was read from yet has no position: its lag is 0 when its
  // cached watermarks show it empty, otherwise unknown (-1).
  std::vector<PartitionLag> Lag() const;
  // Stops (Resume: restarts) fetching from these assigned partitions without leaving
  // the group: backpressure. Offsets in the arguments are ignored.
  Status Pause(const std::vector<TopicPartitionOffset>& partitions);
  Status Resume(const std::vector<TopicPartitionOffset>& partitions);
  // Leaves the group (revoking partitions). Idempotent.
  Status Close();

 private:
  struct Impl;
  explicit KafkaConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates topics on a real cluster through the Admin API; topics that already exist
// are fine (their partition count is checked against `partitions`).
Status EnsureTopics(const KafkaClientOptions& options, const std::vector<std::string>& topics,
                    int partitions, int replication_factor, int timeout_ms = 15000);

}  // namespace freshet::ingest
