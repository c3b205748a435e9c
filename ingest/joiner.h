// Joiner: the ingest component. Consumes `impressions` and `labels` in one consumer
// group, validates each message (bad ones go to `deadletter` with a reason), joins
// them per partition with PartitionJoin, produces the resulting Samples to `samples`
// (idempotent producer, keyed by user_id) and checkpoints join state together with
// the consumed input offsets in one RocksDB WriteBatch. Used by `freshet ingest` and
// `freshet run`.
//
// Nothing joined is lost (DESIGN.md §4): a checkpoint collects the state's changes
// after handing every pending sample to the producer, and a writer thread
// (ingest/checkpoint_writer.h) writes them only once those samples are delivered, so
// every sample the state no longer holds is in Kafka before the state that forgot it
// is written. The consumer thread goes on meanwhile; one checkpoint is in flight at a
// time, and Checkpoint(), Stop and revocations wait for theirs. After a crash the joiner reloads each assigned partition's state and
// seeks to the offsets stored with it; events after those offsets are read again and
// re-emit the same sample_ids (exact replays, which the learner dedupes).
//
// Rebalance: on assignment a partition's state is loaded and the consumer seeks to
// its stored offsets; on revocation the partition is checkpointed and dropped, so
// another instance can take it over.
//
// Thread-safety: Start/RunOnce/Run/Stop/Checkpoint from one thread (the consumer's).
// StatusJson, Ready and stats may be called from any thread (the admin server's).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "common/status.h"
#include "common/worker_pool.h"
#include "ingest/checkpoint_writer.h"
#include "ingest/kafka_client.h"
#include "ingest/sample_wire.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"

namespace freshet::store {
class KvStore;
}

namespace freshet::ingest {

class KafkaProducer;
class KafkaConsumer;
class PartitionJoin;
class IngestProbe;
class TaskRules;
struct TopicPartitionOffset;

class Joiner {
 public:
  struct Options {
    FreshetConfig config;             // effective and validated
    std::string bootstrap_servers;    // "" = config.kafka().bootstrap_servers()
    store::KvStore* store = nullptr;  // opened with StoreFamilies(); outlives the Joiner
    MetricsRegistry* metrics = nullptr;  // outlives the Joiner
    Clock* clock = nullptr;           // nullptr = Clock::Real()
    std::string client_id = "freshet-ingest";
    int max_batch = 5000;             // messages handled per RunOnce
  };
  struct Stats {
    uint64_t events = 0;
    uint64_t samples = 0;
    uint64_t deadletters = 0;
    uint64_t checkpoints = 0;
    uint64_t checkpoint_records = 0;  // join records and orphan entries written or deleted
    uint64_t checkpoint_bytes = 0;    // keys + values of those writes
    // Checkpoints: the consumer thread's time in them (collecting changes; for
    // synchronous ones such as Checkpoint() also waiting for the write) ...
    uint64_t checkpoint_us = 0;
    uint64_t checkpoint_collect_us = 0;  // ... of which collecting changes into the batch
    // ... and the writer thread's (CheckpointWriter): waiting for the samples'
    // delivery, then the RocksDB write.
    uint64_t checkpoint_flush_us = 0;
    uint64_t checkpoint_write_us = 0;
    int64_t assigned_us = 0;          // clock MonotonicUs of the latest assignment; 0 = none yet
  };

  // The column families the store must be opened with.
  static std::vector<std::string> StoreFamilies();

  // Creates the producer and consumer (no network yet). INVALID_ARGUMENT for a bad
  // task list or missing store/metrics.
  static StatusOr<std::unique_ptr<Joiner>> Create(Options options);
  ~Joiner();
  Joiner(const Joiner&) = delete;
  Joiner& operator=(const Joiner&) = delete;

  // Subscribes to the input topics.
  Status Start();
  // Reads up to max_batch messages (waiting up to poll_ms for the first), joins,
  // produces, applies backpressure and checkpoints when the interval has passed.
  // A non-OK result is sticky: the process should exit and restart, replaying from
  // the last checkpoint.
  Status RunOnce(int poll_ms = 100);
  // RunOnce until `stop`, then Stop(). Returns the first error.
  Status Run(StopFlag* stop);
  // Stops intake: flushes, checkpoints, leaves the group. Idempotent.
  Status Stop();
  // Flush the producer, then write every changed record and each partition's offsets
  // in one WriteBatch.
  Status Checkpoint();

  // OK while Kafka answers, the store is healthy and no sticky error occurred.
  Status Ready() const;
  // JSON object for /status: per-partition watermark, state sizes, offsets, pauses.
  std::string StatusJson() const;
  Stats stats() const;

 private:
  explicit Joiner(Options options);
  // What one join thread works with during a batch: its messages, its scratch, and
  // what it queues for the producer (merged into pending_ after the batch).
  struct Lane {
    struct Queued {
      const KafkaMessage* message;
      PartitionJoin* join;
    };
    std::vector<Queued> messages;
    std::vector<JoinedSample> emitted;  // scratch: what the joins just emitted
    Label label;                        // scratch: the label being decoded (its storage is reused)
    std::vector<std::pair<std::string, std::string>> pending;  // (key, bytes); \x01 key: dead letter
    uint64_t events = 0, samples = 0;
    uint64_t impressions = 0, labels = 0;  // decoded, not dead-lettered: freshet_ingest_events_total
  };
  // Decodes and joins batch_[0, n) and queues what it yields: on the consumer thread
  // alone, or, for a large batch with join_threads > 1, on join_threads lanes that
  // each own the partitions p with p % lanes == lane. Messages of batch_[0,
  // stale_before) whose partition a rebalance inside the polls assigned or revoked
  // are skipped: the state was checkpointed (revoke) or loaded and the consumer
  // rewound (assign) without them, so they are read again, by this joiner or the
  // partition's next owner. REQUIRES: mu_ held.
  void ProcessBatch(size_t n, size_t stale_before);
  // Process()es the lane's messages in order, their lookups prefetched ahead
  // (ForEachPrefetched).
  void JoinLane(Lane* lane);
  void Process(const KafkaMessage& m, PartitionJoin* join, Lane* lane);
  void DeadLetter(const KafkaMessage& m, const std::string& reason, const std::string& detail, Lane* lane);
  // Moves lane->emitted to lane->pending as (user id key, Sample bytes).
  void QueueEmitted(Lane* lane);
  // Appends every lane's pending to pending_ and counts its events and samples.
  void MergeLanes();
  PartitionJoin* StateFor(int32_t partition);  // REQUIRES: mu_ held
  Status ProducePending();
  void ApplyBackpressure();
  // Synchronous checkpoint of `only` (nullptr: every partition), after the one in
  // flight; commit: also commit the group offsets (not inside a revocation).
  Status CheckpointPartitions(const std::vector<int32_t>* only, bool commit);
  // Produces what is pending, collects the changes of `only` (nullptr: all) and hands
  // them to the writer. REQUIRES: !writer_->Busy().
  Status SubmitCheckpoint(const std::vector<int32_t>* only);
  // Accounts a written checkpoint and commits its offsets (commit), or makes its
  // error sticky.
  Status FinishCheckpoint(CheckpointWriter::Result result, bool commit);
  void OnAssign(std::vector<TopicPartitionOffset>* tps);
  void OnRevoke(const std::vector<TopicPartitionOffset>& tps);
  void UpdateGauges();  // REQUIRES: mu_ held
  void RefreshLag();    // at most once per kLagRefreshUs; consumer thread, takes mu_

  Options options_;
  // The options' clock, read once per RunOnce batch (after its first poll) and per
  // checkpoint: every event of a batch sees the same wall time (emit times, idle
  // inputs, decode limits), instead of a clock read per event and per sample.
  BatchClock batch_clock_;
  std::unique_ptr<TaskRules> rules_;
  size_t feature_headroom_ = 0;  // DecodeLimits.feature_headroom: a sample header's bound for rules_
  std::unique_ptr<IngestProbe> probe_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::unique_ptr<CheckpointWriter> writer_;  // after producer_: destroyed before it

  mutable std::mutex mu_;
  std::map<int32_t, std::unique_ptr<PartitionJoin>> partitions_;  // guarded by mu_
  std::map<int32_t, std::pair<bool, bool>> paused_;  // (impressions, labels); guarded by mu_
  std::vector<std::pair<std::string, std::string>> pending_;  // (key, sample bytes) to produce
  std::vector<KafkaProducer::KeyValue> produce_scratch_;      // ProducePending's views of a run of pending_
  std::vector<KafkaMessage> batch_;  // scratch: the messages of one RunOnce (consumer thread)
  // Partitions assigned or revoked by callbacks inside the current RunOnce's polls
  // (consumer thread).
  std::vector<int32_t> rebalanced_;
  std::vector<Lane> lanes_;          // join_threads of them; guarded by mu_
  std::unique_ptr<WorkerPool> pool_;  // join_threads − 1 threads besides the consumer thread
  Status error_;                                              // sticky; guarded by mu_
  int64_t next_checkpoint_ms_ = 0;
  int64_t last_checkpoint_ms_ = 0;  // guarded by mu_
  // (topic, partition) -> messages behind the high watermark, -1 unknown; guarded by mu_
  std::map<std::pair<std::string, int32_t>, int64_t> lag_;
  int64_t next_lag_refresh_us_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<uint64_t> events_{0}, samples_{0}, deadletters_{0}, checkpoints_{0};
  std::atomic<uint64_t> checkpoint_records_{0}, checkpoint_bytes_{0}, checkpoint_us_{0};
  std::atomic<uint64_t> checkpoint_collect_us_{0}, checkpoint_flush_us_{0}, checkpoint_write_us_{0};
  std::atomic<int64_t> assigned_us_{0};
};

}  // namespace freshet::ingest
