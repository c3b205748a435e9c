// Joiner checkpoints: collected on the consumer thread, finished by the
// CheckpointWriter (delivery wait, RocksDB write); and the rebalance callbacks, which
// load a partition's state on assignment and checkpoint it on revocation. See
// joiner.h.
#include <algorithm>

#include "common/logging.h"
#include "ingest/ingest_probe.h"
#include "ingest/joiner.h"
#include "ingest/partition_join.h"
#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

// How long a synchronous checkpoint (stop, revocation) waits for its samples.
constexpr int kFlushTimeoutMs = 10000;

}  // namespace

Status Joiner::Checkpoint() { return CheckpointPartitions(nullptr, /*commit=*/true); }

Status Joiner::CheckpointPartitions(const std::vector<int32_t>* only, bool commit) {
  batch_clock_.Tick();
  const int64_t t0 = batch_clock_.MonotonicUs();
  // The one in flight first: batches reach the store in the order collected.
  if (auto earlier = writer_->Wait(kFlushTimeoutMs)) RETURN_IF_ERROR(FinishCheckpoint(std::move(*earlier), commit));
  RETURN_IF_ERROR(SubmitCheckpoint(only));
  std::optional<CheckpointWriter::Result> result = writer_->Wait(kFlushTimeoutMs);
  checkpoint_us_.fetch_add(static_cast<uint64_t>(batch_clock_.MonotonicUs() - t0));
  return FinishCheckpoint(std::move(*result), commit);
}

Status Joiner::SubmitCheckpoint(const std::vector<int32_t>* only) {
  const int64_t t0 = batch_clock_.MonotonicUs();
  Status produced = ProducePending();
  if (!produced.ok()) return produced.Annotate("checkpoint postponed: samples could not be queued");
  std::lock_guard<std::mutex> lock(mu_);
  CheckpointWriter::Job job;
  const KafkaConfig& kc = options_.config.kafka();
  for (auto& [p, join] : partitions_) {
    if (only && std::find(only->begin(), only->end(), p) == only->end()) continue;
    job.records += join->CollectChanges(kc.impressions_topic(), kc.labels_topic(), &job.batch);
    if (join->next_offset(true) >= 0) job.commits.push_back({kc.impressions_topic(), p, join->next_offset(true)});
    if (join->next_offset(false) >= 0) job.commits.push_back({kc.labels_topic(), p, join->next_offset(false)});
  }
  // Every sample the collected state no longer holds was handed to the producer above
  // (pending_ is empty and nothing is processed under mu_): the mark covers them all.
  job.delivery_mark = producer_->Mark();
  job.collect_us = batch_clock_.MonotonicUs() - t0;
  checkpoint_collect_us_.fetch_add(static_cast<uint64_t>(job.collect_us));
  writer_->Submit(std::move(job));
  return Status::Ok();
}

Status Joiner::FinishCheckpoint(CheckpointWriter::Result r, bool commit) {
  checkpoint_flush_us_.fetch_add(static_cast<uint64_t>(r.delivery_wait_us));
  checkpoint_write_us_.fetch_add(static_cast<uint64_t>(r.write_us));
  if (!r.status.ok()) {
    // The collected changes are gone from memory's dirty lists: a later checkpoint
    // would leave a gap in the store's changelog. Restart replays from the last one.
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = r.status.Annotate("restart to replay from the last checkpoint");
    return r.status;
  }
  checkpoints_.fetch_add(1);
  checkpoint_records_.fetch_add(r.records);
  checkpoint_bytes_.fetch_add(r.bytes);
  probe_->Checkpoint((r.collect_us + r.delivery_wait_us + r.write_us) / 1e6);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_checkpoint_ms_ = batch_clock_.NowMs();
  }
  if (commit && !r.commits.empty()) {
    // The group's committed offsets only serve lag monitoring; the store is the truth.
    Status c = consumer_->Commit(r.commits);
    if (!c.ok()) LOG_DEBUG("ingest_commit_failed").Kv("status", c.ToString());
  }
  LOG_DEBUG("ingest_checkpoint").Kv("records", r.records).Kv("bytes", r.bytes)
      .Kv("delivery_wait_us", r.delivery_wait_us).Kv("write_us", r.write_us);
  return Status::Ok();
}

void Joiner::OnAssign(std::vector<TopicPartitionOffset>* tps) {
  const KafkaConfig& kc = options_.config.kafka();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& tp : *tps) {
    rebalanced_.push_back(tp.partition);
    auto& slot = partitions_[tp.partition];
    if (!slot) {
      auto loaded = PartitionJoin::Load(*options_.store, tp.partition, rules_.get(), options_.config.ingest(),
                                        probe_.get(), &batch_clock_);
      if (!loaded.ok()) {
        LOG_ERROR("ingest_state_load_failed").Kv("partition", tp.partition).Kv("status", loaded.status().ToString());
        if (error_.ok()) error_ = loaded.status();
        partitions_.erase(tp.partition);
        continue;
      }
      slot = std::move(loaded).value();
      LOG_INFO("ingest_partition_loaded").Kv("partition", tp.partition).Kv("open", slot->open_records())
          .Kv("orphans", slot->orphan_labels()).Kv("impressions_offset", slot->next_offset(true))
          .Kv("labels_offset", slot->next_offset(false));
    }
    const int64_t stored = slot->next_offset(tp.topic == kc.impressions_topic());
    if (stored >= 0) tp.offset = stored;  // resume exactly where the stored state ends
  }
  assigned_us_.store(batch_clock_.MonotonicUs());
}

void Joiner::OnRevoke(const std::vector<TopicPartitionOffset>& tps) {
  std::vector<int32_t> parts;
  for (const auto& tp : tps) {
    if (std::find(parts.begin(), parts.end(), tp.partition) == parts.end()) parts.push_back(tp.partition);
  }
  rebalanced_.insert(rebalanced_.end(), parts.begin(), parts.end());
  // No group commit inside the revocation callback: it only checkpoints.
  Status s = CheckpointPartitions(&parts, /*commit=*/false);
  if (!s.ok()) {
    LOG_WARNING("ingest_revoke_checkpoint_failed").Kv("status", s.ToString())
        .Kv("effect", "the next owner replays from the previous checkpoint");
  }
  std::lock_guard<std::mutex> lock(mu_);  // written or not, the partitions are no longer ours
  for (int32_t p : parts) {
    partitions_.erase(p);
    paused_.erase(p);
  }
}

}  // namespace freshet::ingest
