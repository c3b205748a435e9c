// PartitionJoin: the join of impressions with their delayed labels for ONE input
// partition (DESIGN.md §5), with no Kafka in it: the Joiner feeds it validated
// events and produces the Samples it returns; tests feed it directly.
//
// Event time. watermark = (max event time seen on the partition) −
// ingest.allowed_lateness_ms, where the max is taken per input topic and the SLOWER
// topic counts (after a restart one topic's backlog may be read far ahead of the
// other's; following the faster one would close windows before their labels are
// read). A topic that delivered nothing for ingest.idle_input_ms of wall time stops
// holding the watermark back. The watermark never moves backwards. An impression's window closes when the watermark
// passes event_time + the longest task window. A label applies to task t when its
// event time is within event_time + window_t of the impression.
//
// Policies and what is emitted (sample_id is derived from request_id only, so a
// replay after a crash re-emits the same ids):
//   wait          at window close: one sample, id = request_id, ORIGIN_WINDOW_CLOSED.
//                 Labels after that (or outside their task's window) are counted late.
//   wait_correct  as wait; afterwards, until correction_horizon_ms past the close, a
//                 task that turns positive emits one correction, id = request_id +
//                 "#c:" + task, ORIGIN_LATE_CORRECTION, correction = true.
//   immediate     on arrival: id = request_id, ORIGIN_IMMEDIATE_NEGATIVE, every binary
//                 task negative (masked when its space is "always"), regression
//                 unobserved. Each task that turns positive (regression: observed)
//                 within its window emits one duplicate, id = request_id + "#p:" +
//                 task, ORIGIN_IMMEDIATE_POSITIVE.
// A duplicate/correction for task t carries mask 1 and the label for t, plus mask 1
// and label 0 for binary tasks whose sample space t opens (requires_positive = t):
// they enter their space as fake negatives, undone by their own duplicate if they
// turn positive. The content of every sample_id is therefore independent of the
// order in which labels of different kinds arrive.
//
// Fake-negative weighting (Ktena et al., Twitter, RecSys 2019): under `immediate`
// each positive is seen twice, once as a negative and once as a positive, so the
// training data follow b(y=1|x) = p(x) / (1 + p(x)) rather than p(x). Importance
// weighting with the model's own (stop-gradient) prediction p̂ makes the expected
// loss the unbiased one: positives (ORIGIN_IMMEDIATE_POSITIVE) get w = 1 + p̂ and
// negatives (ORIGIN_IMMEDIATE_NEGATIVE and the fake negatives above) get
// w = (1 − p̂)(1 + p̂). Those weights depend on the prediction, so the learner forms
// them from `origin`; Sample.weight carries the prediction-independent factor, 1.
//
// Masks: binary task t is observed at window close (absence of a label = negative);
// mask[t] = 1 when t's sample space holds (no requires_positive, or that task is
// positive). Regression tasks are observed only when a label arrived (value × scale).
// Binary label rule: positive when the newest label of any of its kinds (per kind,
// by event time) has value >= value_threshold; value 0 retracts.
//
// Bounds: records (open + remembered) and orphan labels are bounded per partition;
// Over*() tell the Joiner to pause the matching input (backpressure), and
// ForceCloseOldest() is the escalation when both are full. Nothing is dropped
// silently: every early close or eviction is counted.
//
// Thread-safety: none; one thread drives a PartitionJoin.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "ingest/id_table.h"
#include "ingest/ingest_probe.h"
#include "ingest/join_log.h"
#include "ingest/join_state.pb.h"
#include "ingest/run_queue.h"
#include "ingest/sample_wire.h"
#include "ingest/task_rules.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::store {
class KvStore;
class WriteBatch;
}  // namespace freshet::store

namespace freshet::ingest {

class PartitionJoin {
 public:
  static constexpr int64_t kNoTime = INT64_MIN;
  // Column families the join state uses in the store.
  static constexpr const char* kRecordFamily = "join";
  static constexpr const char* kMetaFamily = "offsets";

  // REQUIRES: rules, probe and clock outlive this object.
  PartitionJoin(int32_t partition, const TaskRules* rules, const IngestConfig& config, IngestProbe* probe,
                Clock* clock);

  // Restores partition `partition` from `store` (empty state if nothing is stored).
  // FAILED_PRECONDITION when the stored state was built for another task layout or
  // policy (say how to recover).
  static StatusOr<std::unique_ptr<PartitionJoin>> Load(const store::KvStore& store, int32_t partition,
                                                        const TaskRules* rules, const IngestConfig& config,
                                                        IngestProbe* probe, Clock* clock);

  // REQUIRES: the event passed validation (ids set, finite values, known kind).
  // Appends emitted samples to `out`. `impression` (DecodeImpression gives it) is kept
  // as the record, so pass it with std::move.
  void AddImpression(ImpressionEvent impression, std::vector<JoinedSample>* out);
  // The same for an Impression with its features in it (tests, tools).
  void AddImpression(Impression impression, std::vector<JoinedSample>* out);
  void AddLabel(const Label& label, std::vector<JoinedSample>* out);

  // Events of one request come soon: loads where they will look its record (and
  // orphan labels) up. The caller keeps HashOf(request id) and calls stage 0 a few
  // events ahead, stage 1 about half as far ahead (the record's address is in the
  // slot stage 0 loaded). Only a hint: no state changes.
  static uint64_t HashOf(std::string_view request_id) { return IdTable<RecordNode>::HashOf(request_id); }
  void Prefetch(uint64_t hash, int stage) const;

  // Emits windows the watermark has closed, expires orphans past their TTL and
  // forgets closed impressions past the correction horizon.
  void Advance(std::vector<JoinedSample>* out);
  // Escalation when both bounds are hit: forgets up to `n` remembered (closed)
  // impressions, else closes the `n` oldest open windows early. Counted.
  void ForceCloseOldest(int n, std::vector<JoinedSample>* out);

  // Adds the samples and joined labels counted since the last flush to the metrics
  // (IngestProbe::Tally; it also flushes by itself every few thousand events and on
  // destruction). The Joiner calls it after every batch.
  void FlushMetrics() { tally_.Flush(); }

  bool OverRecordBound() const;
  bool OverOrphanBound() const;
  bool BelowResumeRecords() const;  // < 90% of the bound: resume a paused input
  bool BelowResumeOrphans() const;

  // Offsets: the next offset to read on each input topic (-1 = unknown).
  void SetConsumed(bool impressions_topic, int64_t next_offset);
  int64_t next_offset(bool impressions_topic) const { return impressions_topic ? imp_offset_ : label_offset_; }

  // Adds every record changed since the last call, plus the partition's meta (offsets,
  // watermark), to `batch`: as one changelog segment, or as a snapshot of the whole
  // state once the log since the last one holds more than twice the live entries plus
  // the snapshot minimum (ingest/join_log.h). Returns the number of changed records.
  size_t CollectChanges(const std::string& impressions_topic, const std::string& labels_topic,
                        store::WriteBatch* batch);
  // Snapshot no earlier than after this many changed entries (default 65536; tests
  // lower it to exercise snapshots).
  void SetSnapshotMinEntries(size_t n);
  bool dirty() const {
    return !dirty_records_.empty() || !deleted_records_.empty() || !dirty_orphans_.empty() ||
           !deleted_orphans_.empty() || meta_dirty_;
  }

  int32_t partition() const { return partition_; }
  int64_t watermark() const;
  int64_t max_event_time() const { return std::max(max_time_[0], max_time_[1]); }
  size_t open_records() const { return close_queue_.size(); }
  size_t closed_records() const { return drop_queue_.size(); }
  size_t orphan_labels() const { return orphan_count_; }
  // Entries in the orphan expiry heap, stale ones included (at most about twice the
  // live orphans plus a slack; see RebuildOrphanQueue).
  size_t orphan_expiry_entries() const { return orphan_queue_.size(); }

 private:
  // What the join keeps of a label: the request it belongs to is its record's or
  // orphan's id, and nothing reads its other ids.
  struct LabelValue {
    LabelKind kind;
    int64_t event_time_ms;
    float value;
    bool operator==(const LabelValue&) const = default;
  };
  // Labels that came before their impression, in arrival order (never empty while
  // the node is in orphans_). Stored form: OrphanLabels.
  struct OrphanNode {
    std::string id;  // request id
    std::vector<LabelValue> labels;
    int32_t dirty_slot = -1;  // index in dirty_orphans_ while changed since the last checkpoint
  };
  void ObserveTime(int64_t event_time_ms, bool impression);
  void UpdateWatermark();
  // The newest label of a kind for a task (JoinRecord's TaskLabel).
  struct TaskLabelEntry {
    int32_t task;
    int32_t kind;
    int64_t event_time_ms;
    float value;
    bool timely;
  };
  // One impression's join state; its request id is its RecordNode's id. A plain struct
  // rather than its stored form (JoinRecord): one allocation with its RecordNode
  // instead of a message per impression and per label. RecordToProto/FromProto
  // convert at checkpoint and load.
  struct RecordEntry {
    uint64_t user_id = 0;
    uint64_t item_id = 0;
    int64_t event_time_ms = 0;
    std::string features;  // JoinRecord.features
    std::vector<TaskLabelEntry> labels;
    uint64_t positive_emitted = 0;
    uint64_t window_positive = 0;
    bool window_sample_emitted = false;
    bool closed = false;
    int32_t dirty_slot = -1;  // index in dirty_records_ while changed since the last checkpoint
    // The store's live log holds a full entry of this record (its features): later
    // changes are written as updates without the features.
    bool stored = false;
  };
  // An element of records_: its address is stable until the record is forgotten.
  struct RecordNode {
    std::string id;  // request id
    RecordEntry rec;
  };
  // Stored form: `out` is overwritten (its storage reused); the features only when
  // with_features.
  static void RecordToProto(const std::string& rid, const RecordEntry& rec, bool with_features, JoinRecord* out);
  static void RecordFromProto(JoinRecord* stored, RecordEntry* rec);
  // Notes that `entry` changed: its id joins the next checkpoint's changes once.
  void MarkDirty(RecordNode* node);
  // Applies one label to an existing record; emits duplicates/corrections.
  void ApplyLabel(RecordNode* node, const LabelValue& label, std::vector<JoinedSample>* out);
  void CloseWindow(RecordNode* node, std::vector<JoinedSample>* out);
  // Erases the record; its deletion is the next checkpoint's change.
  void ForgetRecord(RecordNode* node);
  // Each pops the earliest entry of its queue and acts on it: close the window, or
  // forget the closed record.
  void CloseEarliest(std::vector<JoinedSample>* out);
  void ForgetEarliest();
  // When a request's orphan labels expire: first label time + ttl.
  struct OrphanDue {
    int64_t at;
    std::string rid;
    bool operator>(const OrphanDue& o) const { return at != o.at ? at > o.at : rid > o.rid; }
  };
  // Pops the earliest orphan expiry; true when it expired labels, false when the
  // entry was stale. REQUIRES: the queue is not empty.
  bool ExpireEarliestOrphan();
  // When `o`'s labels expire: its first label's event time + orphan_ttl_ms.
  int64_t OrphanExpiry(const OrphanNode& o) const;
  void MarkOrphanDirty(OrphanNode* node);
  // Takes the orphan out; its deletion is the next checkpoint's change.
  std::unique_ptr<OrphanNode> ReleaseOrphan(OrphanNode* node);
  static void OrphanToProto(const OrphanNode& node, OrphanLabels* out);
  // Rebuilds the expiry heap from the live orphans, dropping stale entries. Called
  // when they outnumber the live ones, so the heap stays within about twice the
  // orphan bound however many orphans their impressions take before expiry.
  void RebuildOrphanQueue();
  // Task values as observed now. include_late: also labels outside the task's window.
  struct TaskValues {
    std::array<float, kMaxSampleTasks> value;  // the first rules_->size() are set
    uint64_t observed = 0;  // bit t: a label for t exists (regression) / always (binary)
    uint64_t positive = 0;  // bit t: binary task t positive
  };
  TaskValues Evaluate(const RecordEntry& rec, bool include_late) const;
  bool InSpace(int t, const TaskValues& v) const;
  // A sample of `node` with every label 0 and unmasked; `sample_id` and `label` (all
  // zero, one per task) must outlive the header's use.
  SampleHeader BaseHeader(const RecordNode& node, std::string_view sample_id, SampleOrigin origin,
                          std::span<const float> label) const;
  void EmitMain(RecordNode* node, std::vector<JoinedSample>* out);
  void EmitDuplicates(RecordNode* node, bool include_late, std::vector<JoinedSample>* out);
  // Counts the sample `h` (its complete bytes: features, then `h`) and appends it.
  void Emit(const SampleHeader& h, std::string bytes, std::vector<JoinedSample>* out);
  void RestoreQueues(RecordNode* node);
  // Load: applies one changelog entry; false when its payload does not parse.
  bool ApplyStoredEntry(JoinLogEntry type, std::string_view id, std::string_view payload);

  const int32_t partition_;
  const TaskRules* rules_;
  const IngestConfig config_;
  const LabelPolicy policy_;
  IngestProbe* probe_;
  IngestProbe::Tally tally_;  // samples and joined labels, counted until FlushMetrics
  Clock* clock_;

  int64_t max_time_[2] = {kNoTime, kNoTime};  // impressions, labels
  int64_t last_seen_ms_[2] = {0, 0};          // wall time of the last event per topic
  int64_t watermark_ = kNoTime;
  int64_t imp_offset_ = -1;
  int64_t label_offset_ = -1;
  // Earliest time first, ties by request id. Only the top is ever taken, and entries
  // come mostly in time order: a RunQueue serves (no tree node per record, and O(1)
  // for in-order entries). Entries point at their record: every
  // record is in exactly one queue (open: close_queue_, closed: drop_queue_) until
  // that queue pops it, and only then is it erased, so the pointer is never stale and
  // no id lookup is needed to act on it.
  struct Due {
    int64_t at;
    RecordNode* node;
    bool operator>(const Due& o) const { return at != o.at ? at > o.at : node->id > o.node->id; }
  };
  using TimeQueue = RunQueue<Due>;
  IdTable<RecordNode> records_;
  TimeQueue close_queue_;  // open: event time + max window
  TimeQueue drop_queue_;   // closed: close time + correction horizon
  IdTable<OrphanNode> orphans_;  // the same Hash as records_: one HashOf serves both
  // Orphan expiries (a RunQueue: first-label times come mostly in order); an entry
  // goes stale when its labels are taken by their impression: it stays queued (no
  // search to remove it) and is skipped when it reaches the top.
  RunQueue<OrphanDue> orphan_queue_;
  size_t orphan_count_ = 0;
  // Ids of records changed (or forgotten) since the last checkpoint, each once per
  // checkpoint: live ones by their node (RecordEntry.dirty_slot is the index; a
  // forgotten one leaves by swap-remove), forgotten ones by id. The checkpoint writes
  // the deletions first, so an id forgotten and then seen again ends up live.
  std::vector<RecordNode*> dirty_records_;
  std::vector<std::string> deleted_records_;
  // Orphans changed or released since the last checkpoint, kept as the records' are.
  std::vector<OrphanNode*> dirty_orphans_;
  std::vector<std::string> deleted_orphans_;
  OrphanLabels stored_orphans_;  // scratch: an orphan's stored form at checkpoint
  JoinRecord stored_;  // scratch: a record's stored form at checkpoint
  bool meta_dirty_ = false;
  // Changelog position (ingest/join_log.h): live segments are [log_first_seq_, log_next_seq_).
  uint64_t log_first_seq_ = 0;
  uint64_t log_next_seq_ = 0;
  size_t entries_since_snapshot_ = 0;  // entries written (or replayed) after the newest snapshot
  size_t snapshot_min_entries_ = 65536;
  bool legacy_keys_ = false;  // loaded per-record keys of the older layout: snapshot next
};

// Calls fn(i) for i = 0 .. n-1 in order, starting the lookups of the events a few
// places ahead: key_of(i) is event i's request id (both input topics are keyed by it,
// so it is known before decoding; empty: no hint) and join_of(i) the PartitionJoin it
// goes to. By an event's turn its index slot and record are in cache, instead of two
// waits for memory per label on a state of ~10^5 records.
template <class KeyOf, class JoinOf, class Fn>
void ForEachPrefetched(size_t n, KeyOf key_of, JoinOf join_of, Fn fn) {
  constexpr size_t kSlotAhead = 4, kRecordAhead = 2;  // stage 0 and stage 1 distances
  uint64_t hash[kSlotAhead] = {};                     // of events i+1 .. i+4, by index % 4
  bool hinted[kSlotAhead] = {};
  for (size_t i = 0; i < n; ++i) {
    if (const size_t a = i + kSlotAhead; a < n) {
      const std::string_view key = key_of(a);
      hinted[a % kSlotAhead] = !key.empty();
      if (!key.empty()) {
        hash[a % kSlotAhead] = PartitionJoin::HashOf(key);
        join_of(a)->Prefetch(hash[a % kSlotAhead], 0);
      }
    }
    if (const size_t b = i + kRecordAhead; b >= kSlotAhead && b < n && hinted[b % kSlotAhead]) {
      join_of(b)->Prefetch(hash[b % kSlotAhead], 1);
    }
    fn(i);
  }
}

// The key of a partition's PartitionMeta (4-byte big-endian partition).
std::string PartitionMetaKey(int32_t partition);

}  // namespace freshet::ingest
