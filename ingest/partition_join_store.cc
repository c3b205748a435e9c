// PartitionJoin's persistence: checkpoint changes as changelog segments with periodic
// snapshots (ingest/join_log.h), and loading a partition back. See partition_join.h.
#include <algorithm>

#include "ingest/join_log.h"
#include "ingest/partition_join.h"
#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

// A segment is cut at about this size, so no single value grows without bound.
constexpr size_t kSegmentBytes = size_t{4} << 20;

// Appends entries to segments and puts each full segment into the batch.
class SegmentWriter {
 public:
  SegmentWriter(int32_t partition, uint64_t* next_seq, store::WriteBatch* batch)
      : partition_(partition), next_seq_(next_seq), batch_(batch) {
    segment_.reserve(kSegmentBytes + (kSegmentBytes >> 4));  // no regrowth copies; untouched pages cost nothing
  }
  void Add(JoinLogEntry type, std::string_view id, const google::protobuf::MessageLite* payload) {
    AppendJoinLogEntry(type, id, payload, &segment_);
    if (segment_.size() >= kSegmentBytes) Finish();
  }
  void Finish() {
    if (segment_.empty()) return;
    batch_->Put(PartitionJoin::kRecordFamily, JoinLogSegmentKey(partition_, (*next_seq_)++), segment_);
    segment_.clear();
  }

 private:
  int32_t partition_;
  uint64_t* next_seq_;
  store::WriteBatch* batch_;
  std::string segment_;
};

}  // namespace

std::string PartitionMetaKey(int32_t partition) { return JoinPartitionPrefix(partition); }

size_t PartitionJoin::CollectChanges(const std::string& impressions_topic, const std::string& labels_topic,
                                     store::WriteBatch* batch) {
  const size_t n = dirty_records_.size() + deleted_records_.size() + dirty_orphans_.size() + deleted_orphans_.size();
  entries_since_snapshot_ += n;
  SegmentWriter segments(partition_, &log_next_seq_, batch);
  const size_t live = records_.size() + orphans_.size();
  if (legacy_keys_ || entries_since_snapshot_ >= 2 * live + snapshot_min_entries_) {
    // Snapshot: every live entry, then the segments before it go. The log replayed on
    // load stays within about three times the live state.
    const uint64_t first = log_next_seq_;
    records_.ForEach([&](RecordNode& node) {
      RecordToProto(node.id, node.rec, /*with_features=*/true, &stored_);
      segments.Add(JoinLogEntry::kRecord, node.id, &stored_);
      node.rec.dirty_slot = -1;
      node.rec.stored = true;
    });
    orphans_.ForEach([&](OrphanNode& node) {
      OrphanToProto(node, &stored_orphans_);
      segments.Add(JoinLogEntry::kOrphans, node.id, &stored_orphans_);
      node.dirty_slot = -1;
    });
    segments.Finish();
    if (first > log_first_seq_) {
      batch->DeleteRange(kRecordFamily, JoinLogSegmentKey(partition_, log_first_seq_),
                         JoinLogSegmentKey(partition_, first));
    }
    if (legacy_keys_) {  // per-record keys of the layout before the changelog
      const std::string prefix = JoinPartitionPrefix(partition_);
      batch->DeleteRange(kRecordFamily, prefix + kLegacyOrphanType, prefix + static_cast<char>(kLegacyRecordType + 1));
    }
    log_first_seq_ = first;
    entries_since_snapshot_ = 0;
    legacy_keys_ = false;
  } else {
    // Deletions first: an id forgotten and seen again since is live (and listed below).
    for (const std::string& rid : deleted_records_) segments.Add(JoinLogEntry::kRecordDeleted, rid, nullptr);
    // A record already in the log is rewritten without its features: labels and
    // flags change, the feature bytes (most of a record) do not.
    for (RecordNode* node : dirty_records_) {
      RecordEntry& rec = node->rec;
      RecordToProto(node->id, rec, /*with_features=*/!rec.stored, &stored_);
      segments.Add(rec.stored ? JoinLogEntry::kRecordUpdate : JoinLogEntry::kRecord, node->id, &stored_);
      rec.dirty_slot = -1;
      rec.stored = true;
    }
    for (const std::string& rid : deleted_orphans_) segments.Add(JoinLogEntry::kOrphansDeleted, rid, nullptr);
    for (OrphanNode* node : dirty_orphans_) {
      OrphanToProto(*node, &stored_orphans_);
      segments.Add(JoinLogEntry::kOrphans, node->id, &stored_orphans_);
      node->dirty_slot = -1;
    }
    segments.Finish();
  }
  PartitionMeta meta;
  meta.set_max_event_time_ms(max_time_[0]);
  meta.set_max_label_time_ms(max_time_[1]);
  meta.set_watermark_ms(watermark_);
  meta.set_impressions_topic(impressions_topic);
  meta.set_impressions_offset(imp_offset_);
  meta.set_labels_topic(labels_topic);
  meta.set_labels_offset(label_offset_);
  meta.set_task_layout(rules_->layout());
  meta.set_policy(policy_);
  meta.set_log_first_seq(log_first_seq_);
  meta.set_log_next_seq(log_next_seq_);
  batch->Put(kMetaFamily, PartitionMetaKey(partition_), meta.SerializeAsString());
  dirty_records_.clear();
  deleted_records_.clear();
  dirty_orphans_.clear();
  deleted_orphans_.clear();
  meta_dirty_ = false;
  return n;
}

bool PartitionJoin::ApplyStoredEntry(JoinLogEntry type, std::string_view id, std::string_view payload) {
  const std::string rid(id);
  switch (type) {
    case JoinLogEntry::kRecord:
    case JoinLogEntry::kRecordUpdate: {
      if (!stored_.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return false;
      const bool update = type == JoinLogEntry::kRecordUpdate;
      RecordNode* node = update ? records_.Find(rid) : records_.Emplace(std::string(id)).first;
      if (node == nullptr) return false;  // an update follows its record's full entry
      RecordEntry& rec = node->rec;
      std::string features = update ? std::move(rec.features) : std::string();
      RecordFromProto(&stored_, &rec);
      if (update) rec.features = std::move(features);
      // Features go at close except under wait_correct (as CloseWindow does); an
      // update written after the close does not carry that, so drop them here.
      if (rec.closed && policy_ != POLICY_WAIT_CORRECT) std::string().swap(rec.features);
      return true;
    }
    case JoinLogEntry::kOrphans: {
      if (!stored_orphans_.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
          stored_orphans_.labels_size() == 0) {
        return false;
      }
      OrphanNode* node = orphans_.Emplace(std::string(id)).first;
      node->labels.clear();
      for (const Label& l : stored_orphans_.labels()) node->labels.push_back({l.kind(), l.event_time_ms(), l.value()});
      return true;
    }
    case JoinLogEntry::kRecordDeleted:
      if (RecordNode* node = records_.Find(rid)) records_.Release(node);
      return true;
    case JoinLogEntry::kOrphansDeleted:
      if (OrphanNode* node = orphans_.Find(rid)) orphans_.Release(node);
      return true;
  }
  return false;
}

void PartitionJoin::SetSnapshotMinEntries(size_t n) { snapshot_min_entries_ = n; }

void PartitionJoin::OrphanToProto(const OrphanNode& node, OrphanLabels* out) {
  out->Clear();  // keeps the storage of its repeated labels
  for (const LabelValue& l : node.labels) {
    Label* stored = out->add_labels();
    stored->set_kind(l.kind);
    stored->set_event_time_ms(l.event_time_ms);
    stored->set_value(l.value);
  }
}

void PartitionJoin::RecordToProto(const std::string& rid, const RecordEntry& rec, bool with_features,
                                  JoinRecord* out) {
  out->Clear();  // keeps the storage of its strings and repeated labels
  Impression* imp = out->mutable_impression();
  imp->set_request_id(rid);
  imp->set_user_id(rec.user_id);
  imp->set_item_id(rec.item_id);
  imp->set_event_time_ms(rec.event_time_ms);
  for (const TaskLabelEntry& e : rec.labels) {
    TaskLabel* l = out->add_labels();
    l->set_task(e.task);
    l->set_kind(e.kind);
    l->set_event_time_ms(e.event_time_ms);
    l->set_value(e.value);
    l->set_timely(e.timely);
  }
  out->set_window_sample_emitted(rec.window_sample_emitted);
  out->set_closed(rec.closed);
  out->set_positive_emitted(rec.positive_emitted);
  out->set_window_positive(rec.window_positive);
  if (with_features) out->set_features(rec.features);
}

void PartitionJoin::RecordFromProto(JoinRecord* stored, RecordEntry* rec) {
  Impression* imp = stored->mutable_impression();
  rec->user_id = imp->user_id();
  rec->item_id = imp->item_id();
  rec->event_time_ms = imp->event_time_ms();
  // Records written before JoinRecord.features hold the features in the impression.
  const bool legacy = imp->sparse_size() > 0 || imp->dense_size() > 0;
  rec->features = legacy ? FeatureBytes(*imp) : std::move(*stored->mutable_features());
  rec->labels.clear();
  for (const TaskLabel& l : stored->labels()) {
    rec->labels.push_back({l.task(), l.kind(), l.event_time_ms(), l.value(), l.timely()});
  }
  rec->window_sample_emitted = stored->window_sample_emitted();
  rec->closed = stored->closed();
  rec->positive_emitted = stored->positive_emitted();
  rec->window_positive = stored->window_positive();
  rec->dirty_slot = -1;
  rec->stored = true;  // it came from the store's live log
}

void PartitionJoin::RestoreQueues(RecordNode* node) {
  const RecordEntry& rec = node->rec;
  const int64_t close = rec.event_time_ms + rules_->max_window_ms();
  if (rec.closed) {
    drop_queue_.push({close + config_.correction_horizon_ms(), node});
  } else {
    close_queue_.push({close, node});
  }
}

StatusOr<std::unique_ptr<PartitionJoin>> PartitionJoin::Load(const store::KvStore& store, int32_t partition,
                                                               const TaskRules* rules, const IngestConfig& config,
                                                               IngestProbe* probe, Clock* clock) {
  auto join = std::make_unique<PartitionJoin>(partition, rules, config, probe, clock);
  ASSIGN_OR_RETURN(std::optional<std::string> meta_bytes, store.Get(kMetaFamily, PartitionMetaKey(partition)));
  if (meta_bytes) {
    PartitionMeta meta;
    if (!meta.ParseFromString(*meta_bytes)) {
      return DataLossError("join state meta of partition " + std::to_string(partition) + " in " + store.path() +
                           " is corrupt; remove the directory to rebuild from Kafka");
    }
    if (meta.task_layout() != rules->layout() || meta.policy() != config.policy()) {
      return FailedPreconditionError(
          "join state of partition " + std::to_string(partition) + " in " + store.path() +
          " was built for another task list or label policy; restore that config, or remove the directory "
          "(the joiner then starts from the group's committed offsets with empty state)");
    }
    join->max_time_[0] = meta.max_event_time_ms();
    join->max_time_[1] = meta.max_label_time_ms();
    join->watermark_ = meta.watermark_ms();
    join->last_seen_ms_[0] = join->last_seen_ms_[1] = clock->NowMs();
    join->imp_offset_ = meta.impressions_offset();
    join->label_offset_ = meta.labels_offset();
    join->log_first_seq_ = meta.log_first_seq();
    join->log_next_seq_ = meta.log_next_seq();
  }
  Status parse_error;
  size_t entries = 0;
  const std::string prefix = JoinPartitionPrefix(partition);
  const std::string in_partition = "partition " + std::to_string(partition) + " in " + store.path();
  // Names the request id and where it was read (the raw key of a segment is binary).
  auto corrupt = [](std::string_view id, const std::string& where) {
    return DataLossError("join state entry " + std::string(id) + " of " + where +
                         " is corrupt; remove the directory to rebuild from Kafka");
  };
  // Keys sort segments ('L', by sequence number) before the legacy per-record keys.
  RETURN_IF_ERROR(store.ScanPrefix(kRecordFamily, prefix, [&](std::string_view key, std::string_view value) {
    if (key.size() <= prefix.size()) return true;
    const char type = key[prefix.size()];
    if (type == kJoinLogSegmentType) {
      const int64_t seq = JoinLogSegmentSeq(prefix, key);
      if (seq < static_cast<int64_t>(join->log_first_seq_) || seq >= static_cast<int64_t>(join->log_next_seq_)) {
        return true;  // superseded by a snapshot, or never committed with a meta
      }
      const std::string where = "segment " + std::to_string(seq) + " of " + in_partition;
      Status s = ForEachJoinLogEntry(value, where, [&](JoinLogEntry t, std::string_view id, std::string_view p) {
        ++entries;
        if (!join->ApplyStoredEntry(t, id, p)) parse_error = corrupt(id, where);
        return parse_error.ok();
      });
      if (!s.ok()) parse_error = s;
    } else if (type == kLegacyRecordType || type == kLegacyOrphanType) {
      join->legacy_keys_ = true;  // the next checkpoint rewrites them as a snapshot
      const JoinLogEntry t = type == kLegacyRecordType ? JoinLogEntry::kRecord : JoinLogEntry::kOrphans;
      const std::string_view id = key.substr(prefix.size() + 1);
      if (!join->ApplyStoredEntry(t, id, value)) parse_error = corrupt(id, in_partition);
    }
    return parse_error.ok();
  }));
  RETURN_IF_ERROR(parse_error);
  join->records_.ForEach([&](RecordNode& node) { join->RestoreQueues(&node); });
  join->orphans_.ForEach([&](OrphanNode& o) { join->orphan_count_ += o.labels.size(); });
  join->RebuildOrphanQueue();
  const size_t live = join->records_.size() + join->orphans_.size();
  join->entries_since_snapshot_ = entries > live ? entries - live : 0;
  return join;
}

}  // namespace freshet::ingest
