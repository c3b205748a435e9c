// CheckpointWriter: finishes the joiner's checkpoints on a thread of its own, so the
// consumer thread does not stop while samples are delivered and RocksDB writes.
//
// A checkpoint is the WriteBatch of the join state's changes and offsets, collected on
// the consumer thread, plus a delivery mark (KafkaProducer::Mark) taken right after
// every sample the state no longer holds was handed to the producer. The writer waits
// until the mark's samples are delivered, and only then writes the batch: the state
// that forgot a sample never reaches the store before the sample reaches Kafka
// (DESIGN.md §4). One checkpoint is in flight at a time, and batches are written in
// the order submitted, so the changelog in the store has no gaps.
//
// A batch, once collected, cannot be dropped without a gap: if delivery fails, the
// result is an error and the joiner must restart from the previous checkpoint. While
// the cluster is only slow, the writer keeps waiting (and says so in the log).
//
// Thread-safety: Submit, Busy, TakeIfDone and Wait from the consumer thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "ingest/kafka_client.h"
#include "store/kv_store.h"

namespace freshet::ingest {

class CheckpointWriter {
 public:
  struct Job {
    store::WriteBatch batch;
    uint64_t delivery_mark = 0;
    std::vector<TopicPartitionOffset> commits;  // the group offsets to commit once written
    size_t records = 0;                         // changed records in the batch
    int64_t collect_us = 0;                     // consumer-thread time spent collecting
  };
  struct Result {
    Status status;  // OK, the delivery error, the write error, or DEADLINE_EXCEEDED from Wait
    std::vector<TopicPartitionOffset> commits;
    size_t records = 0;
    size_t bytes = 0;
    int64_t collect_us = 0;
    int64_t delivery_wait_us = 0;
    int64_t write_us = 0;
  };

  // REQUIRES: producer, store and clock outlive this object.
  CheckpointWriter(KafkaProducer* producer, store::KvStore* store, Clock* clock);
  // Waits for the checkpoint in flight (its result is logged, not returned).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // REQUIRES: !Busy().
  void Submit(Job job);
  // A checkpoint was submitted and its result not yet taken.
  bool Busy() const;
  // The result of the checkpoint in flight if it is finished; nullopt while it runs
  // or when none was submitted.
  std::optional<Result> TakeIfDone();
  // Waits up to timeout_ms for the checkpoint in flight (nullopt when none). On
  // timeout the checkpoint is abandoned, unwritten: the result is DEADLINE_EXCEEDED,
  // and the state it carried reaches the store only after a restart replays it.
  std::optional<Result> Wait(int timeout_ms);

 private:
  void Loop();

  KafkaProducer* producer_;
  store::KvStore* store_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Job> job_;        // submitted, not yet picked up; guarded by mu_
  std::optional<Result> result_;  // finished, not yet taken; guarded by mu_
  bool in_flight_ = false;        // between Submit and the take of its result; guarded by mu_
  bool abandon_ = false;          // Wait timed out: stop waiting for delivery; guarded by mu_
  bool stop_ = false;             // guarded by mu_
  std::thread thread_;
};

}  // namespace freshet::ingest
