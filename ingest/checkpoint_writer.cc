// CheckpointWriter: delivery wait and RocksDB write off the consumer thread; see
// checkpoint_writer.h.
#include "ingest/checkpoint_writer.h"

#include <chrono>
#include <utility>

#include "common/logging.h"

namespace freshet::ingest {
namespace {

// The delivery wait is cut in slices so an abandon or a stop is seen within one.
constexpr int kDeliverySliceMs = 1000;

}  // namespace

CheckpointWriter::CheckpointWriter(KafkaProducer* producer, store::KvStore* store, Clock* clock)
    : producer_(producer), store_(store), clock_(clock), thread_([this] { Loop(); }) {}

CheckpointWriter::~CheckpointWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (result_ && !result_->status.ok()) {
    LOG_WARNING("ingest_checkpoint_dropped").Kv("status", result_->status.ToString());
  }
}

void CheckpointWriter::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);
    in_flight_ = true;
    abandon_ = false;
  }
  cv_.notify_all();
}

bool CheckpointWriter::Busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

std::optional<CheckpointWriter::Result> CheckpointWriter::TakeIfDone() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!result_) return std::nullopt;
  std::optional<Result> r = std::move(result_);
  result_.reset();
  in_flight_ = false;
  return r;
}

std::optional<CheckpointWriter::Result> CheckpointWriter::Wait(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!in_flight_) return std::nullopt;
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return result_.has_value(); })) {
    abandon_ = true;  // seen by the writer within one delivery slice
    cv_.wait(lock, [&] { return result_.has_value(); });
  }
  std::optional<Result> r = std::move(result_);
  result_.reset();
  in_flight_ = false;
  return r;
}

void CheckpointWriter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || job_.has_value(); });
    if (!job_) return;
    Job job = std::move(*job_);
    job_.reset();
    lock.unlock();

    Result r;
    r.commits = std::move(job.commits);
    r.records = job.records;
    r.collect_us = job.collect_us;
    r.bytes = job.batch.bytes();
    const int64_t t0 = clock_->MonotonicUs();
    Status delivered;
    while (true) {
      delivered = producer_->WaitDelivered(job.delivery_mark, kDeliverySliceMs);
      if (delivered.code() != StatusCode::kDeadlineExceeded) break;
      lock.lock();
      const bool give_up = abandon_ || stop_;
      lock.unlock();
      if (give_up) break;
      LOG_WARNING("ingest_checkpoint_waiting").Kv("waited_s", (clock_->MonotonicUs() - t0) / 1000000)
          .Kv("detail", delivered.message()).Kv("effect", "state not written until its samples are in Kafka");
    }
    r.delivery_wait_us = clock_->MonotonicUs() - t0;
    if (delivered.ok()) {
      const int64_t t1 = clock_->MonotonicUs();
      r.status = job.batch.empty() ? Status::Ok() : store_->Write(job.batch);
      r.write_us = clock_->MonotonicUs() - t1;
    } else {
      r.status = delivered.Annotate("checkpoint not written (its samples were not delivered)");
    }

    lock.lock();
    result_ = std::move(r);
    cv_.notify_all();
  }
}

}  // namespace freshet::ingest
