// Publisher: version cutting on the training thread, the validation gate, pin and
// rollback (see publisher.h; the admin endpoints are in publisher_admin.cc).
#include "publisher/publisher.h"

#include <cmath>

#include "common/logging.h"
#include "publisher/model_update.h"
#include "store/kv_store.h"

namespace freshet::publisher {
namespace {

bool AllFinite(const google::protobuf::RepeatedField<float>& values) {
  for (float v : values)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

std::string GateReason(const ModelUpdate& update, const std::vector<learner::TaskMetrics>& metrics,
                       const PublisherConfig& config, std::string* detail) {
  for (const DenseTensor& t : update.dense())
    if (!AllFinite(t.values())) {
      if (detail) *detail = "non-finite value in dense tensor " + t.name();
      return "non_finite";
    }
  for (const SparseRows& r : update.sparse())
    if (!AllFinite(r.values())) {
      if (detail) *detail = "non-finite value in embedding rows of slot " + std::to_string(r.slot());
      return "non_finite";
    }
  for (const PublisherGateFloor& floor : config.gate_floors()) {
    for (const learner::TaskMetrics& m : metrics) {
      if (m.task != floor.task() || m.count < floor.min_count() || m.auc < 0 || m.auc >= floor.min_auc()) continue;
      if (detail)
        *detail = "task " + m.task + ": prequential AUC " + std::to_string(m.auc) + " is below the floor " +
                  std::to_string(floor.min_auc()) + " (" + std::to_string(m.count) + " samples)";
      return "auc_floor";
    }
  }
  return "";
}

Publisher::Publisher(Options options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : Clock::Real()) {}

StatusOr<std::unique_ptr<Publisher>> Publisher::Create(Options options) {
  if (options.store == nullptr) return InvalidArgumentError("Publisher needs the learner's store");
  if (options.metrics == nullptr) return InvalidArgumentError("Publisher needs a metrics registry");
  std::unique_ptr<Publisher> p(new Publisher(std::move(options)));
  MetricsRegistry* m = p->options_.metrics;
  const PublisherConfig& c = p->options_.config;
  ASSIGN_OR_RETURN(p->snapshots_, SnapshotStore::Open(p->options_.store, c.retain_full_snapshots()));
  p->tracker_ = std::make_unique<DeltaTracker>(
      c.max_delta_rows(), m->GetCounter("freshet_publisher_delta_overflow_total",
                                        "Versions cut FULL because the touched-row set passed max_delta_rows"));
  PushClient::Options po;
  po.replicas.assign(c.replicas().begin(), c.replicas().end());
  po.hmac_key = p->options_.hmac_key;
  po.backoff_initial_ms = c.reconnect_initial_ms();
  po.backoff_max_ms = c.reconnect_max_ms();
  po.metrics = m;
  po.clock = p->clock_;
  SnapshotStore* snapshots = p->snapshots_.get();
  po.full_source = [snapshots](uint64_t version) -> StatusOr<PushClient::Payload> {
    ASSIGN_OR_RETURN(ModelUpdate full, snapshots->Materialize(version));
    return std::make_shared<const std::string>(full.SerializeAsString());
  };
  p->push_ = std::make_unique<PushClient>(std::move(po));
  p->version_gauge_ = m->GetGauge("freshet_publisher_version", "Newest published model version");
  p->alert_gauge_ = m->GetGauge("freshet_publisher_gate_alert", "1 while the validation gate holds versions back");
  p->pinned_gauge_ = m->GetGauge("freshet_publisher_pinned", "Pinned version (0: not pinned)");
  p->cut_seconds_ = m->GetHistogram("freshet_publisher_cut_seconds", "Time to cut, store and hand over one version",
                                    {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5});
  p->freshness_ = FreshnessHistogram(m, "published");
  for (const char* reason : {"non_finite", "auc_floor"})
    m->GetCounter("freshet_publisher_blocked_total", "Versions held back by the validation gate", {{"reason", reason}});
  return p;
}

Publisher::~Publisher() { Stop(); }

Status Publisher::Attach(learner::TrainingLoop* loop) {
  if (loop_ != nullptr) return FailedPreconditionError("Publisher::Attach called twice");
  loop_ = loop;
  loop->SetPublishHooks({[this](const Batch& b) { AfterStep(b); }, [this] { OnTick(); }});
  next_cut_ms_ = clock_->NowMs() + options_.config.publish_interval_ms();
  RETURN_IF_ERROR(push_->Start());
  // Serve what the store says until the first cut: the pinned version, else the newest.
  const std::optional<uint64_t> pin = snapshots_->pinned();
  const uint64_t start = pin ? *pin : snapshots_->newest_version();
  pinned_gauge_->Set(pin ? static_cast<double>(*pin) : 0);
  if (start > 0) {
    push_->Publish(PushClient::Target::Stored(start));
    std::lock_guard<std::mutex> lock(mu_);
    published_ = start;
    version_gauge_->Set(static_cast<double>(start));
  }
  LOG_INFO("publisher_started").Kv("newest_stored", snapshots_->newest_version()).Kv("pinned", pin ? *pin : 0)
      .Kv("replicas", options_.config.replicas_size()).Kv("interval_ms", options_.config.publish_interval_ms());
  return Status::Ok();
}

void Publisher::Stop() {
  if (push_) push_->Stop();
}

uint64_t Publisher::published_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return published_;
}

void Publisher::AfterStep(const Batch& batch) { tracker_->RecordBatch(batch, loop_->trainer().model().embeddings()); }

void Publisher::RequestFull() {
  std::lock_guard<std::mutex> lock(mu_);
  full_requested_ = true;
}

void Publisher::OnTick() {
  bool full = false;
  uint64_t unpin = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unpin_requested_ > unpin_done_) unpin = unpin_requested_;
    full = full_requested_;
  }
  const int64_t now = clock_->NowMs();
  if (unpin == 0 && !full && now < next_cut_ms_) return;
  next_cut_ms_ = now + options_.config.publish_interval_ms();
  StatusOr<Cut> cut = Cut{};
  {
    std::lock_guard<std::mutex> publish(publish_mu_);
    if (unpin != 0) {
      if (Status s = snapshots_->SetPin(std::nullopt); !s.ok()) cut = s;
      else pinned_gauge_->Set(0);
    }
    if (cut.ok()) {
      Cut c;
      Status s = CutLocked(full || unpin != 0, &c);
      if (s.ok()) cut = c;
      else cut = s;
    }
  }
  // A requested FULL that did not get out (gate, pin) is retried at the next interval,
  // not at every tick.
  if (full && !(cut.ok() && cut->version != 0 && cut->kind == UPDATE_FULL)) full_next_cut_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (full) full_requested_ = false;
  if (unpin != 0) {
    unpin_done_ = unpin;
    unpin_result_ = cut;
    unpin_cv_.notify_all();
  }
  if (!cut.ok() && error_.ok()) error_ = cut.status();
}

StatusOr<Publisher::Cut> Publisher::CutNow(bool full) {
  std::lock_guard<std::mutex> publish(publish_mu_);
  Cut c;
  RETURN_IF_ERROR(CutLocked(full, &c));
  return c;
}

void Publisher::Block(const std::string& reason, const std::string& detail) {
  options_.metrics->GetCounter("freshet_publisher_blocked_total", "", {{"reason", reason}})->Inc();
  alert_gauge_->Set(1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_blocked_ = reason + ": " + detail;
  }
  int64_t suppressed = 0;
  if (warn_limiter_.Allow(clock_->NowMs(), &suppressed))
    LOG_WARNING("publisher_version_blocked").Kv("reason", reason).Kv("detail", detail)
        .Kv("serving_stays_on", published_version()).Kv("suppressed", suppressed);
}

Status Publisher::CutLocked(bool full, Cut* cut) {
  if (snapshots_->pinned()) {
    tracker_->Reset();  // unpin cuts FULL, so nothing needs tracking while pinned
    return Status::Ok();
  }
  const int64_t start_us = clock_->MonotonicUs();
  cpu::Model<float>& model = loop_->trainer().model();
  tracker_->RecordEvictions(&model.embeddings());
  const DeltaTracker::Pending pending = tracker_->Collect(model.embeddings());
  const uint64_t base = published_version();
  full = full || full_next_cut_ || pending.overflowed || base == 0 ||
         versions_since_full_ + 1 >= options_.config.full_every_versions();
  const learner::TrainingLoop::TrainedStamp stamp = loop_->trained_stamp();
  // No step, no touched or evicted row since the last version: the model is the one
  // replicas already have, so there is nothing to cut (cut->version stays 0).
  if (!full && stamp.steps == cut_at_step_ && pending.rows.empty() && pending.evicted.empty()) return Status::Ok();

  const learner::LearnerProgress progress = loop_->Progress();
  const int64_t now = clock_->NowMs();
  ModelManifest m;
  m.set_version(snapshots_->newest_version() + 1);
  m.set_created_at_ms(now);
  m.set_train_step(static_cast<uint64_t>(stamp.steps));
  m.set_newest_sample_event_time_ms(stamp.newest_event_ms);
  m.set_newest_sample_emit_time_ms(stamp.newest_emit_ms);
  for (const auto& [partition, offset] : progress.trained_offsets) {
    PartitionOffset* po = m.add_input_offsets();
    po->set_topic(options_.topic);
    po->set_partition(partition);
    po->set_offset(offset);
  }
  for (const learner::TaskMetrics& t : progress.tasks) {
    (*m.mutable_metrics())["auc/" + t.task] = t.auc;
    (*m.mutable_metrics())["log_loss/" + t.task] = t.log_loss;
    (*m.mutable_metrics())["count/" + t.task] = static_cast<double>(t.count);
  }
  (*m.mutable_metrics())["samples_trained"] = static_cast<double>(progress.samples_trained);
  // The AUC floors need no update: check them before building one.
  cut->blocked = GateReason(ModelUpdate(), progress.tasks, options_.config, &cut->detail);
  if (!cut->blocked.empty()) {
    cut->kind = full ? UPDATE_FULL : UPDATE_DELTA;
    Block(cut->blocked, cut->detail);
    return Status::Ok();
  }
  ModelUpdate update;
  if (full) {
    update = MakeFullUpdate(model, m);
  } else {
    m.set_base_version(base);
    DeltaContent content;
    content.touched = pending.rows;
    content.evicted = pending.evicted;
    update = MakeDeltaUpdate(model, m, content);
    tracker_->DropUnchangedDense(&update);
    // Rows admitted since the last cut that are still present are "added".
    const int64_t admitted = model.embeddings().stats().admitted - admitted_at_last_cut_;
    const uint64_t sent = update.manifest().sparse_rows_updated();
    const uint64_t added = std::min<uint64_t>(sent, static_cast<uint64_t>(std::max<int64_t>(0, admitted)));
    update.mutable_manifest()->set_sparse_rows_added(added);
    update.mutable_manifest()->set_sparse_rows_updated(sent - added);
  }
  cut->kind = update.manifest().kind();
  cut->blocked = GateReason(update, {}, options_.config, &cut->detail);
  if (!cut->blocked.empty()) {
    Block(cut->blocked, cut->detail);
    return Status::Ok();
  }
  auto payload = std::make_shared<const std::string>(update.SerializeAsString());
  RETURN_IF_ERROR(snapshots_->Write(update, *payload).Annotate("publisher"));
  tracker_->Reset();
  tracker_->CommitDense(update);
  admitted_at_last_cut_ = model.embeddings().stats().admitted;
  versions_since_full_ = full ? 0 : versions_since_full_ + 1;
  if (full) full_next_cut_ = false;
  cut_at_step_ = stamp.steps;
  cut->version = m.version();
  const char* kind = full ? "full" : "delta";
  if (full) push_->Publish(PushClient::Target::Full(cut->version, payload));
  else push_->Publish(PushClient::Target::Delta(cut->version, base, payload));
  {
    std::lock_guard<std::mutex> lock(mu_);
    published_ = cut->version;
    published_at_ms_ = now;
  }
  alert_gauge_->Set(0);
  version_gauge_->Set(static_cast<double>(cut->version));
  MetricsRegistry* r = options_.metrics;
  r->GetCounter("freshet_publisher_versions_total", "Versions published, by kind", {{"kind", kind}})->Inc();
  r->GetCounter("freshet_publisher_bytes_total", "Payload bytes of published versions", {{"kind", kind}})
      ->Inc(static_cast<double>(payload->size()));
  if (stamp.newest_emit_ms > 0) freshness_->Observe(std::max<int64_t>(0, now - stamp.newest_emit_ms) / 1000.0);
  cut_seconds_->Observe((clock_->MonotonicUs() - start_us) / 1e6);
  LOG_DEBUG("publisher_version").Kv("version", cut->version).Kv("kind", kind).Kv("bytes", payload->size())
      .Kv("rows", update.manifest().sparse_rows_added() + update.manifest().sparse_rows_updated())
      .Kv("evicted", update.manifest().sparse_rows_deleted());
  return Status::Ok();
}

Status Publisher::Rollback(uint64_t version, int64_t wait_ms) {
  {
    std::lock_guard<std::mutex> publish(publish_mu_);
    ASSIGN_OR_RETURN(ModelUpdate full, snapshots_->Materialize(version));
    RETURN_IF_ERROR(snapshots_->SetPin(version));
    push_->Publish(PushClient::Target::Full(version, std::make_shared<const std::string>(full.SerializeAsString())));
    pinned_gauge_->Set(static_cast<double>(version));
    std::lock_guard<std::mutex> lock(mu_);
    published_ = version;
    published_at_ms_ = clock_->NowMs();
  }
  version_gauge_->Set(static_cast<double>(version));
  LOG_INFO("publisher_rollback").Kv("version", version);
  if (!push_->WaitForVersion(version, wait_ms))
    return DeadlineExceededError("pinned v" + std::to_string(version) +
                                 ", but not every replica acked it yet; they get it when they reconnect");
  return Status::Ok();
}

StatusOr<uint64_t> Publisher::Pin() {
  std::lock_guard<std::mutex> publish(publish_mu_);
  const uint64_t v = published_version();
  if (v == 0) return FailedPreconditionError("no version has been published yet; nothing to pin");
  RETURN_IF_ERROR(snapshots_->SetPin(v));
  pinned_gauge_->Set(static_cast<double>(v));
  LOG_INFO("publisher_pinned").Kv("version", v);
  return v;
}

StatusOr<Publisher::Cut> Publisher::Unpin(int64_t wait_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = ++unpin_requested_;
  const bool done = unpin_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return unpin_done_ >= ticket; });
  if (!done)
    return UnavailableError("the learner's training thread did not cut a version within " + std::to_string(wait_ms) +
                            " ms; it unpins at its next tick");
  return unpin_result_;
}

Status Publisher::Ready() const {
  RETURN_IF_ERROR(options_.store->health());
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(error_);
  }
  if (options_.config.replicas_size() == 0) return Status::Ok();
  for (const PushClient::ReplicaState& r : push_->Replicas())
    if (r.connected) return Status::Ok();
  return UnavailableError("no serving replica is reachable (publisher.replicas)");
}

}  // namespace freshet::publisher
