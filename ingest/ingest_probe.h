// IngestProbe: the ingest metrics (DESIGN.md §7 names are a contract) behind small
// methods, so join logic calls probe->LateLabel(kind) instead of touching the
// registry. Children are looked up once at construction.
//
// Thread-safety: every method may be called from any thread (metrics are atomic).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/metrics.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::ingest {

// "wait", "wait_correct", "immediate": the policy label value of samples_total.
const char* PolicyLabel(LabelPolicy policy);
// "click", "play_time", ...: the kind label value (lower-case enum name without LABEL_).
std::string KindLabel(LabelKind kind);

class IngestProbe {
 public:
  static constexpr int kOrigins = SampleOrigin_MAX + 1;

  IngestProbe(MetricsRegistry* registry, LabelPolicy policy);

  // The per-event metrics of the join (samples by origin, their freshness, joined
  // labels and their delay) counted by one thread in plain memory, and added to the
  // registry by Flush(): a PartitionJoin keeps one, so that its per-event path does no
  // atomic updates (they were ~5% of the join's time). It flushes by itself every
  // kAutoFlush events and when destroyed; the Joiner flushes after every batch.
  //
  // Thread-safety: one thread at a time, as its PartitionJoin.
  // REQUIRES: the probe (and its registry) outlive the Tally: its destructor flushes.
  class Tally {
   public:
    explicit Tally(IngestProbe* probe);
    ~Tally() { Flush(); }
    Tally(const Tally&) = delete;
    Tally& operator=(const Tally&) = delete;

    void Sample(SampleOrigin origin, double freshness_s);
    void LabelJoined(LabelKind kind, double delay_s);
    void Flush();

   private:
    static constexpr uint64_t kAutoFlush = 4096;
    void Counted() {
      if (++pending_ >= kAutoFlush) Flush();
    }

    IngestProbe* probe_;
    uint64_t pending_ = 0;  // events since the last flush
    std::array<uint64_t, kOrigins> by_origin_{};
    LocalHistogram freshness_;
    std::array<uint64_t, LabelKind_MAX + 1> joined_{};
    std::vector<LocalHistogram> delay_;  // per kind
  };

  // Events consumed, per input topic (the Joiner counts them per batch).
  void Events(uint64_t impressions, uint64_t labels);
  void DeadLetter(const std::string& reason);
  void LateLabel(LabelKind kind) { late_[Index(kind)]->Inc(); }
  void OrphanExpired(LabelKind kind) { orphan_expired_[Index(kind)]->Inc(); }
  void UnusedLabel(LabelKind kind) { unused_[Index(kind)]->Inc(); }
  void DuplicateLabel() { duplicate_labels_->Inc(); }
  void DuplicateImpression() { duplicate_impressions_->Inc(); }
  void Backpressure(const char* reason);
  void ForcedClose() { forced_closes_->Inc(); }
  void RetentionEviction() { retention_evictions_->Inc(); }
  void Checkpoint(double seconds);
  // freshet_ingest_consumer_lag_messages{topic,partition}: high watermark - position.
  void ConsumerLag(const std::string& topic, int32_t partition, int64_t messages);

  MetricsRegistry* registry() const { return registry_; }

 private:
  static int Index(LabelKind kind);

  MetricsRegistry* registry_;
  std::string policy_;
  Counter* impressions_;
  Counter* labels_;
  Counter* samples_;
  std::array<Counter*, kOrigins> samples_by_origin_;
  Histogram* freshness_;
  static constexpr int kKinds = LabelKind_MAX + 1;
  std::array<Counter*, kKinds> late_;
  std::array<Counter*, kKinds> joined_;
  std::array<Histogram*, kKinds> delay_;
  std::array<Counter*, kKinds> orphan_expired_;
  std::array<Counter*, kKinds> unused_;
  Counter* duplicate_labels_;
  Counter* duplicate_impressions_;
  Counter* forced_closes_;
  Counter* retention_evictions_;
  Histogram* checkpoint_seconds_;
};

}  // namespace freshet::ingest
