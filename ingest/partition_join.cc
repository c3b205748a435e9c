// PartitionJoin: per-partition join state and the three label policies; see
// partition_join.h for the semantics.
#include "ingest/partition_join.h"

#include <algorithm>

namespace freshet::ingest {
namespace {

static_assert(TaskRules::kMaxTasks <= static_cast<int>(kMaxSampleTasks), "a sample holds every task");
// Stale orphan expiries tolerated beyond twice the live orphans before a rebuild.
constexpr size_t kOrphanQueueSlack = 4096;

}  // namespace

PartitionJoin::PartitionJoin(int32_t partition, const TaskRules* rules, const IngestConfig& config,
                             IngestProbe* probe, Clock* clock)
    : partition_(partition),
      rules_(rules),
      config_(config),
      policy_(config.policy()),
      probe_(probe),
      tally_(probe),
      clock_(clock) {
  last_seen_ms_[0] = last_seen_ms_[1] = clock_->NowMs();
}

int64_t PartitionJoin::watermark() const { return watermark_; }

void PartitionJoin::ObserveTime(int64_t t, bool impression) {
  int64_t& m = max_time_[impression ? 0 : 1];
  if (m == kNoTime || t > m) m = t;
  last_seen_ms_[impression ? 0 : 1] = clock_->NowMs();
  meta_dirty_ = true;
}

void PartitionJoin::UpdateWatermark() {
  // The slower of the inputs that are not idle; an input not seen yet holds the
  // watermark until it has been idle for idle_input_ms (since this object started).
  const int64_t now = clock_->NowMs();
  int64_t m = kNoTime;
  bool hold = false, any_active = false;
  for (int i = 0; i < 2; ++i) {
    if (now - last_seen_ms_[i] > config_.idle_input_ms()) continue;
    any_active = true;
    if (max_time_[i] == kNoTime) {
      hold = true;
    } else if (m == kNoTime || max_time_[i] < m) {
      m = max_time_[i];
    }
  }
  if (hold) return;
  if (!any_active) {  // everything idle: the slower known input
    for (int i = 0; i < 2; ++i) {
      if (max_time_[i] != kNoTime && (m == kNoTime || max_time_[i] < m)) m = max_time_[i];
    }
  }
  if (m == kNoTime) return;
  const int64_t wm = m - config_.allowed_lateness_ms();
  if (watermark_ == kNoTime || wm > watermark_) {
    watermark_ = wm;
    meta_dirty_ = true;
  }
}

void PartitionJoin::SetConsumed(bool impressions_topic, int64_t next_offset) {
  (impressions_topic ? imp_offset_ : label_offset_) = next_offset;
  meta_dirty_ = true;
}

void PartitionJoin::AddImpression(Impression impression, std::vector<JoinedSample>* out) {
  AddImpression(SplitImpression(impression), out);
}

void PartitionJoin::AddImpression(ImpressionEvent imp, std::vector<JoinedSample>* out) {
  const int64_t event_time = imp.event_time_ms;
  ObserveTime(event_time, true);
  const uint64_t hash = records_.HashOf(imp.request_id);
  // The id moves into the node only when it is new (Emplace leaves it otherwise).
  auto [node, inserted] = records_.Emplace(std::move(imp.request_id), hash);
  if (!inserted) {
    probe_->DuplicateImpression();
    Advance(out);
    return;
  }
  // Stable until the record is forgotten, which only Advance below does.
  const std::string& rid = node->id;
  RecordEntry& entry = node->rec;
  entry.user_id = imp.user_id;
  entry.item_id = imp.item_id;
  entry.event_time_ms = event_time;
  entry.features = std::move(imp.features);
  close_queue_.push({event_time + rules_->max_window_ms(), node});
  MarkDirty(node);
  if (policy_ == POLICY_IMMEDIATE) EmitMain(node, out);
  if (OrphanNode* orphan = orphans_.Find(rid, hash)) {
    const std::unique_ptr<OrphanNode> taken = ReleaseOrphan(orphan);
    orphan_count_ -= taken->labels.size();
    // Its expiry entry is now stale (left in place: removing it would be a search).
    if (orphan_queue_.size() > 2 * orphans_.size() + kOrphanQueueSlack) RebuildOrphanQueue();
    for (const LabelValue& l : taken->labels) ApplyLabel(node, l, out);
  }
  Advance(out);
}

void PartitionJoin::AddLabel(const Label& label, std::vector<JoinedSample>* out) {
  ObserveTime(label.event_time_ms(), false);
  const std::string& rid = label.request_id();
  const LabelValue value{label.kind(), label.event_time_ms(), label.value()};
  const uint64_t hash = records_.HashOf(rid);
  if (rules_->TasksForKind(label.kind()).empty()) {
    probe_->UnusedLabel(label.kind());
  } else if (RecordNode* node = records_.Find(rid, hash)) {
    ApplyLabel(node, value, out);
  } else {
    OrphanNode* o = orphans_.Find(rid, hash);
    if (o == nullptr) o = orphans_.Emplace(std::string(rid), hash).first;
    if (std::find(o->labels.begin(), o->labels.end(), value) != o->labels.end()) {
      probe_->DuplicateLabel();
    } else {
      o->labels.push_back(value);
      if (o->labels.size() == 1) orphan_queue_.push({OrphanExpiry(*o), rid});
      ++orphan_count_;
      MarkOrphanDirty(o);
    }
  }
  Advance(out);
}

void PartitionJoin::Prefetch(uint64_t hash, int stage) const {
  if (stage == 0) {
    records_.PrefetchSlot(hash);
    orphans_.PrefetchSlot(hash);
  } else {
    records_.PrefetchNode(hash);
  }
}

void PartitionJoin::MarkOrphanDirty(OrphanNode* node) {
  if (node->dirty_slot >= 0) return;
  node->dirty_slot = static_cast<int32_t>(dirty_orphans_.size());
  dirty_orphans_.push_back(node);
}

std::unique_ptr<PartitionJoin::OrphanNode> PartitionJoin::ReleaseOrphan(OrphanNode* node) {
  if (const int32_t slot = node->dirty_slot; slot >= 0) {  // swap-remove from the changed list
    OrphanNode* last = dirty_orphans_.back();
    dirty_orphans_[static_cast<size_t>(slot)] = last;
    last->dirty_slot = slot;
    dirty_orphans_.pop_back();
    node->dirty_slot = -1;
  }
  std::unique_ptr<OrphanNode> taken = orphans_.Release(node);
  deleted_orphans_.push_back(std::move(taken->id));
  return taken;
}

void PartitionJoin::MarkDirty(RecordNode* node) {
  if (node->rec.dirty_slot >= 0) return;
  node->rec.dirty_slot = static_cast<int32_t>(dirty_records_.size());
  dirty_records_.push_back(node);
}

void PartitionJoin::ApplyLabel(RecordNode* node, const LabelValue& label, std::vector<JoinedSample>* out) {
  RecordEntry* rec = &node->rec;
  const int64_t imp_time = rec->event_time_ms;
  const bool arrived_in_time = policy_ == POLICY_IMMEDIATE ? !rec->closed : !rec->window_sample_emitted;
  bool changed = false, late = false, all_dup = true;
  for (int t : rules_->TasksForKind(label.kind)) {
    const bool timely = arrived_in_time && label.event_time_ms <= imp_time + rules_->task(t).window_ms;
    if (!timely) late = true;
    if (!timely && policy_ != POLICY_WAIT_CORRECT) {
      all_dup = false;
      continue;  // only wait_correct keeps late labels (for corrections)
    }
    TaskLabelEntry* slot = nullptr;
    for (TaskLabelEntry& e : rec->labels) {
      if (e.task == t && e.kind == label.kind && e.timely == timely) slot = &e;
    }
    if (slot && slot->event_time_ms == label.event_time_ms && slot->value == label.value) continue;
    all_dup = false;
    if (slot && std::make_pair(slot->event_time_ms, slot->value) > std::make_pair(label.event_time_ms, label.value)) {
      continue;  // an older label than the one kept: the newest wins
    }
    if (!slot) {
      // Most records end up with a few entries (a play-time label sets two tasks):
      // one allocation for them instead of one per doubling.
      if (rec->labels.capacity() == 0) rec->labels.reserve(4);
      slot = &rec->labels.emplace_back(TaskLabelEntry{t, label.kind, 0, 0.0f, timely});
    }
    slot->event_time_ms = label.event_time_ms;
    slot->value = label.value;
    changed = true;
  }
  if (all_dup) {
    probe_->DuplicateLabel();
    return;
  }
  if (late) {
    probe_->LateLabel(label.kind);
  } else {
    tally_.LabelJoined(label.kind, (label.event_time_ms - imp_time) / 1000.0);
  }
  if (!changed) return;
  MarkDirty(node);
  if (policy_ == POLICY_IMMEDIATE && !rec->closed) EmitDuplicates(node, /*include_late=*/false, out);
  if (policy_ == POLICY_WAIT_CORRECT && rec->window_sample_emitted) {
    EmitDuplicates(node, /*include_late=*/true, out);
  }
}

PartitionJoin::TaskValues PartitionJoin::Evaluate(const RecordEntry& rec, bool include_late) const {
  const int n = rules_->size();
  // The newest entry of task t and kind k (by event time, then value), or nullptr. A
  // record holds a few entries, so a scan per (task, kind) costs less than a table.
  auto newest = [&](int t, LabelKind k) {
    const TaskLabelEntry* b = nullptr;
    for (const TaskLabelEntry& e : rec.labels) {
      if (e.task != t || e.kind != k || (!e.timely && !include_late)) continue;
      if (!b || std::make_pair(e.event_time_ms, e.value) > std::make_pair(b->event_time_ms, b->value)) b = &e;
    }
    return b;
  };
  TaskValues v;
  std::fill_n(v.value.begin(), n, 0.0f);
  for (int t = 0; t < n; ++t) {
    const TaskRule& rule = rules_->task(t);
    for (LabelKind k : rule.kinds) {
      const TaskLabelEntry* b = newest(t, k);
      if (!b) continue;
      if (rule.regression) {
        if (!(v.observed >> t & 1)) v.value[t] = b->value * rule.scale;
        v.observed |= uint64_t{1} << t;
      } else if (b->value >= rule.threshold) {
        v.positive |= uint64_t{1} << t;
        v.value[t] = 1.0f;
      }
    }
    if (!rule.regression) v.observed |= uint64_t{1} << t;
  }
  return v;
}

bool PartitionJoin::InSpace(int t, const TaskValues& v) const {
  const int req = rules_->task(t).requires_positive;
  return req < 0 || (v.positive >> req & 1);
}

SampleHeader PartitionJoin::BaseHeader(const RecordNode& node, std::string_view sample_id, SampleOrigin origin,
                                       std::span<const float> label) const {
  SampleHeader h;
  h.sample_id = sample_id;
  h.request_id = node.id;
  h.user_id = node.rec.user_id;
  h.item_id = node.rec.item_id;
  h.event_time_ms = node.rec.event_time_ms;
  h.emit_time_ms = clock_->NowMs();
  h.label = label;
  h.origin = origin;
  h.task_layout = rules_->layout();
  return h;
}

void PartitionJoin::Emit(const SampleHeader& h, std::string bytes, std::vector<JoinedSample>* out) {
  tally_.Sample(h.origin, (h.emit_time_ms - h.event_time_ms) / 1000.0);
  out->push_back({std::move(bytes), h.user_id});
}

void PartitionJoin::EmitMain(RecordNode* node, std::vector<JoinedSample>* out) {
  RecordEntry* rec = &node->rec;
  const size_t n = static_cast<size_t>(rules_->size());
  std::array<float, kMaxSampleTasks> label{};
  if (policy_ == POLICY_IMMEDIATE) {
    SampleHeader h = BaseHeader(*node, node->id, ORIGIN_IMMEDIATE_NEGATIVE, {label.data(), n});
    for (size_t t = 0; t < n; ++t) {
      const TaskRule& rule = rules_->task(static_cast<int>(t));
      if (!rule.regression && rule.requires_positive < 0) h.mask |= uint64_t{1} << t;
    }
    Emit(h, SampleBytes(rec->features, h), out);
  } else {
    const TaskValues v = Evaluate(*rec, /*include_late=*/false);
    SampleHeader h = BaseHeader(*node, node->id, ORIGIN_WINDOW_CLOSED, {label.data(), n});
    uint64_t positive = 0;
    for (size_t t = 0; t < n; ++t) {
      const int task = static_cast<int>(t);
      const uint64_t bit = uint64_t{1} << t;
      const bool mask = (v.observed & bit) && InSpace(task, v);
      if (!mask) continue;
      h.mask |= bit;
      label[t] = v.value[t];
      if (rules_->task(task).regression || (v.positive & bit)) positive |= bit;
    }
    rec->window_positive = positive;
    // Under wait this is the features' last use (CloseWindow clears them next): the
    // sample takes them over instead of copying them.
    if (policy_ == POLICY_WAIT) {
      std::string bytes = std::move(rec->features);
      rec->features.clear();
      AppendSampleHeader(h, &bytes);
      Emit(h, std::move(bytes), out);
    } else {
      Emit(h, SampleBytes(rec->features, h), out);
    }
  }
  rec->window_sample_emitted = true;
  MarkDirty(node);
}

void PartitionJoin::EmitDuplicates(RecordNode* node, bool include_late, std::vector<JoinedSample>* out) {
  const std::string& rid = node->id;
  RecordEntry* rec = &node->rec;
  const TaskValues v = Evaluate(*rec, include_late);
  const bool immediate = policy_ == POLICY_IMMEDIATE;
  const size_t n = static_cast<size_t>(rules_->size());
  for (size_t t = 0; t < n; ++t) {
    const int task = static_cast<int>(t);
    const uint64_t bit = uint64_t{1} << t;
    const TaskRule& rule = rules_->task(task);
    if ((rec->positive_emitted | rec->window_positive) & bit) continue;
    if (rule.regression && !immediate) continue;  // corrections undo fake negatives only
    const bool has = rule.regression ? (v.observed & bit) : (v.positive & bit);
    if (!has || !InSpace(task, v)) continue;
    std::array<float, kMaxSampleTasks> label{};
    label[t] = v.value[t];
    const std::string sample_id = rid + (immediate ? "#p:" : "#c:") + rule.name;
    SampleHeader h = BaseHeader(*node, sample_id, immediate ? ORIGIN_IMMEDIATE_POSITIVE : ORIGIN_LATE_CORRECTION,
                                {label.data(), n});
    h.mask = bit;
    for (int d : rules_->Dependents(task)) h.mask |= uint64_t{1} << d;  // enter their space as fake negatives
    h.correction = !immediate;
    rec->positive_emitted |= bit;
    MarkDirty(node);
    Emit(h, SampleBytes(rec->features, h), out);
  }
}

void PartitionJoin::CloseWindow(RecordNode* node, std::vector<JoinedSample>* out) {
  RecordEntry* entry = &node->rec;
  if (policy_ != POLICY_IMMEDIATE) EmitMain(node, out);
  if (policy_ == POLICY_WAIT_CORRECT) EmitDuplicates(node, /*include_late=*/true, out);
  entry->closed = true;
  MarkDirty(node);
  if (policy_ != POLICY_WAIT_CORRECT) std::string().swap(entry->features);  // needed later only for corrections
  if (config_.correction_horizon_ms() <= 0) {
    ForgetRecord(node);  // erases *node: nothing below may touch it
    return;
  }
  drop_queue_.push({entry->event_time_ms + rules_->max_window_ms() + config_.correction_horizon_ms(), node});
}

void PartitionJoin::ForgetRecord(RecordNode* node) {
  if (const int32_t slot = node->rec.dirty_slot; slot >= 0) {  // swap-remove from the changed list
    RecordNode* last = dirty_records_.back();
    dirty_records_[static_cast<size_t>(slot)] = last;
    last->rec.dirty_slot = slot;
    dirty_records_.pop_back();
  }
  deleted_records_.push_back(std::move(records_.Release(node)->id));
}

void PartitionJoin::Advance(std::vector<JoinedSample>* out) {
  UpdateWatermark();
  const int64_t wm = watermark();
  if (wm == kNoTime) return;
  while (!close_queue_.empty() && close_queue_.top().at <= wm) CloseEarliest(out);
  while (!drop_queue_.empty() && drop_queue_.top().at <= wm) ForgetEarliest();
  while (!orphan_queue_.empty() && orphan_queue_.top().at <= wm) ExpireEarliestOrphan();
}

void PartitionJoin::CloseEarliest(std::vector<JoinedSample>* out) {
  RecordNode* node = close_queue_.top().node;
  close_queue_.pop();
  CloseWindow(node, out);
}

void PartitionJoin::ForgetEarliest() {
  RecordNode* node = drop_queue_.top().node;
  drop_queue_.pop();
  ForgetRecord(node);
}

bool PartitionJoin::ExpireEarliestOrphan() {
  const OrphanDue due = orphan_queue_.top();
  orphan_queue_.pop();
  OrphanNode* o = orphans_.Find(due.rid);
  // Stale: the labels went to their impression (and any that came after it are
  // queued again with their own first-label time).
  if (o == nullptr || OrphanExpiry(*o) != due.at) return false;
  for (const LabelValue& l : o->labels) probe_->OrphanExpired(l.kind);
  orphan_count_ -= o->labels.size();
  ReleaseOrphan(o);
  return true;
}

int64_t PartitionJoin::OrphanExpiry(const OrphanNode& o) const {
  return o.labels.front().event_time_ms + config_.orphan_ttl_ms();
}

void PartitionJoin::RebuildOrphanQueue() {
  std::vector<OrphanDue> live;
  live.reserve(orphans_.size());
  orphans_.ForEach([&](OrphanNode& o) { live.push_back({OrphanExpiry(o), o.id}); });
  orphan_queue_.Assign(std::move(live));
}

void PartitionJoin::ForceCloseOldest(int n, std::vector<JoinedSample>* out) {
  for (int i = 0; i < n; ++i) {
    if (OverRecordBound() && !drop_queue_.empty()) {
      ForgetEarliest();
      probe_->RetentionEviction();
    } else if (OverRecordBound() && !close_queue_.empty()) {
      CloseEarliest(out);
      probe_->ForcedClose();
    } else if (OverOrphanBound() && !orphan_queue_.empty()) {
      while (!orphan_queue_.empty() && !ExpireEarliestOrphan()) {
      }
    } else {
      return;
    }
  }
}

bool PartitionJoin::OverRecordBound() const {
  return static_cast<int64_t>(records_.size()) >= config_.max_open_impressions_per_partition();
}
bool PartitionJoin::OverOrphanBound() const {
  return static_cast<int64_t>(orphan_count_) >= config_.max_orphans_per_partition();
}
bool PartitionJoin::BelowResumeRecords() const {
  return static_cast<double>(records_.size()) < 0.9 * static_cast<double>(config_.max_open_impressions_per_partition());
}
bool PartitionJoin::BelowResumeOrphans() const {
  return static_cast<double>(orphan_count_) < 0.9 * static_cast<double>(config_.max_orphans_per_partition());
}

}  // namespace freshet::ingest
