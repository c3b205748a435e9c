// TrainingLoop: dedup → batch → guard → prequential score + step → timers (see
// training_loop.h for the contract; online_learner.h for the threads around it).
#include "learner/training_loop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "learner/cpu/diagnostics.h"
#include "learner/cpu/serialize.h"
#include "learner/gpu.h"
#include "learner/origin_weights.h"
#include "store/kv_store.h"

namespace freshet::learner {
namespace {

constexpr uint64_t kLoopMagic = 0x31504F4F4C524646ull;  // "FFRLOOP1"

std::string ModelFingerprint(const LearnerConfig& learner, const std::vector<TaskConfig>& tasks) {
  std::string bytes = learner.model().SerializeAsString();
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  h ^= TaskLayoutFingerprint(tasks);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Task indices named in "... tasks [a,b] ..." of the trainer's non-finite message.
std::vector<int> TasksNamedIn(const std::string& message, const std::vector<cpu::TaskSpec>& tasks) {
  std::vector<int> out;
  const size_t open = message.find('['), close = message.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return out;
  const std::string list = message.substr(open + 1, close - open - 1);
  for (size_t t = 0; t < tasks.size(); ++t) {
    const std::string& n = tasks[t].name;
    for (size_t p = list.find(n); p != std::string::npos; p = list.find(n, p + 1)) {
      const bool starts = p == 0 || list[p - 1] == ',';
      const bool ends = p + n.size() == list.size() || list[p + n.size()] == ',';
      if (starts && ends) {
        out.push_back(static_cast<int>(t));
        break;
      }
    }
  }
  return out;
}

bool SampleValuesFinite(const Sample& s) {
  for (const auto& d : s.dense())
    for (float v : d.values())
      if (!std::isfinite(v)) return false;
  for (float v : s.label())
    if (!std::isfinite(v)) return false;
  for (float v : s.weight())
    if (!std::isfinite(v) || v < 0) return false;
  return true;
}

}  // namespace

uint32_t TaskLayoutFingerprint(const std::vector<TaskConfig>& tasks) {
  uint32_t h = 2166136261u;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 16777619u;
  };
  for (const TaskConfig& t : tasks) {
    for (char c : t.name()) mix(static_cast<unsigned char>(c));
    mix(0);
    mix(static_cast<unsigned char>(t.type()));
    mix(0);
  }
  return h;
}

TrainingLoop::TrainingLoop(Options options)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::Real()),
      probe_(options_.metrics, options_.tasks),
      evaluator_(
          [&] {
            std::vector<PrequentialEvaluator::TaskSpec> specs;
            for (const TaskConfig& t : options_.tasks) specs.push_back({t.name(), t.type() == TASK_REGRESSION});
            return specs;
          }(),
          static_cast<size_t>(std::max(1, options_.learner.eval_window()))),
      scorer_(&evaluator_, {.tasks = options_.tasks, .grace_ms = options_.label_grace_ms}),
      dedup_(options_.learner.dedup_horizon_ms(), options_.learner.dedup_max_entries()),
      builder_(options_.learner.model(), static_cast<int>(options_.tasks.size()),
               TaskLayoutFingerprint(options_.tasks)) {}

StatusOr<std::unique_ptr<TrainingLoop>> TrainingLoop::Create(Options options) {
  if (options.metrics == nullptr) return InvalidArgumentError("TrainingLoop needs a metrics registry");
  if (options.tasks.empty()) return InvalidArgumentError("tasks: the learner needs at least one task");
  ASSIGN_OR_RETURN(learner::BackendChoice backend, learner::ResolveBackend(options.learner.backend(), learner::QueryGpu()));
  LOG_INFO("learner_backend").Kv("backend", Backend_Name(backend.backend)).Kv("reason", backend.reason);
  std::unique_ptr<TrainingLoop> loop(new TrainingLoop(std::move(options)));
  ASSIGN_OR_RETURN(loop->trainer_, cpu::Trainer<float>::Create(loop->options_.learner, loop->options_.tasks,
                                                                loop->options_.metrics));
  ASSIGN_OR_RETURN(loop->twin_, TwinFeed::Create(loop->options_.learner.model(), loop->options_.tasks,
                                                 loop->options_.store, loop->options_.metrics));
  if (loop->options_.store != nullptr)
    loop->checkpoints_ = std::make_unique<CheckpointStore>(loop->options_.store, loop->options_.learner.checkpoints_retained());
  loop->min_batch_ = loop->trainer_->model().state_buffers().empty() ? 1 : 2;
  const int64_t now = loop->clock_->NowMs();
  loop->next_checkpoint_ms_ = now + loop->options_.learner.checkpoint_interval_ms();
  loop->next_metrics_ms_ = now + loop->options_.learner.metrics_interval_ms();
  loop->next_diagnostics_ms_ = now + loop->options_.learner.diagnostics_interval_ms();
  loop->rate_mark_ms_ = now;
  loop->task_metrics_ = loop->evaluator_.Snapshot();  // names every task from the start
  return loop;
}

Status TrainingLoop::Fail(Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = s;
  return error_;
}

Status TrainingLoop::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

std::map<int32_t, int64_t> TrainingLoop::trained_offsets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trained_offsets_;
}

Status TrainingLoop::Add(const SourceRecord& record) {
  RETURN_IF_ERROR(health());
  ++records_;
  pending_offsets_[record.partition] = record.offset + 1;
  Sample s;
  const char* skip = nullptr;
  std::string detail;
  uint64_t id = 0;
  if (!s.ParseFromString(record.value)) {
    skip = "unparseable";
  } else if (!SampleValuesFinite(s)) {
    skip = "invalid_sample";
    detail = "non-finite dense value, label or weight";
  } else {
    id = SampleIdHash(s.sample_id());
    if (dedup_.Contains(id) || pending_set_.count(id)) {
      skip = "duplicate";
    } else if (Status st = builder_.Add(s); !st.ok()) {
      skip = "invalid_sample";
      detail = st.message();
    }
  }
  if (skip != nullptr) {
    probe_.SkippedSample(skip);
    if (std::string(skip) == "duplicate") {
      ++duplicates_;
    } else {
      ++bad_;
      int64_t suppressed = 0;
      if (warn_limiter_.Allow(clock_->NowMs(), &suppressed))
        LOG_WARNING("learner_sample_skipped").Kv("reason", skip).Kv("detail", detail).Kv("partition", record.partition)
            .Kv("offset", record.offset).Kv("suppressed", suppressed);
    }
    if (builder_.size() == 0) return TrainPending();  // nothing pending: the skip is final at once
    return Status::Ok();
  }
  if (builder_.size() == 1) first_pending_ms_ = clock_->NowMs();
  pending_rows_.push_back({PrequentialScorer::RequestKey(s.request_id()), s.user_id(), s.event_time_ms(), s.origin()});
  pending_origins_.push_back(s.origin());
  pending_ids_.push_back(id);
  pending_set_.insert(id);
  pending_event_ms_.push_back(s.event_time_ms());
  pending_emit_ms_.push_back(s.emit_time_ms());
  pending_count_ = builder_.size();
  if (builder_.size() >= options_.learner.batch_size()) return TrainPending();
  return Status::Ok();
}

Status TrainingLoop::TrainPending() {
  const int n = builder_.size();
  if (n > 0) {
    Batch batch = builder_.Finish();
    if (twin_) {
      if (Status s = twin_->Attach(&batch); !s.ok()) return Fail(s.Annotate("reading TWIN histories"));
    }
    if (batch_hook_) batch_hook_(&batch);
    const int64_t now_ms = clock_->NowMs();
    const char* skip = nullptr;
    std::vector<int> bad_tasks;
    std::string detail;
    if (!batch.dense.allFinite() || !batch.labels.allFinite() || !batch.weights.allFinite()) {
      skip = "non_finite_input";
      for (int t = 0; t < static_cast<int>(batch.labels.cols()); ++t) {
        for (int b = 0; b < batch.size; ++b) {
          if (batch.masks(b, t) != 0 && (!batch.dense.row(b).allFinite() || !std::isfinite(batch.labels(b, t)) ||
                                         !std::isfinite(batch.weights(b, t)))) {
            bad_tasks.push_back(t);
            break;
          }
        }
      }
      detail = "non-finite dense feature, label or weight in the batch";
    } else {
      const auto& tasks = trainer_->model().tasks();
      cpu::Trainer<float>::WeightAdjuster adjust;
      if (NeedsOriginWeights(pending_origins_)) {
        const float cap = options_.learner.correction_weight_cap();
        adjust = [&, cap](const cpu::Mat<float>& pred, cpu::Mat<float>* w) {  // cap ends with this block
          ApplyOriginWeights<float>(tasks, pending_origins_, pred, batch.labels, batch.masks, cap, w);
        };
      }
      const int64_t stamp = std::max(stream_time_ms_, batch.max_event_time_ms);
      StatusOr<cpu::StepResult<float>> r = trainer_->Train(batch, stamp, adjust);
      if (publish_hooks_.after_step) publish_hooks_.after_step(batch);
      if (!r.ok()) {
        detail = r.status().message();
        if (r.status().code() == StatusCode::kInternal) {
          skip = detail.find("gradient") != std::string::npos ? "non_finite_gradient" : "non_finite_loss";
          bad_tasks = TasksNamedIn(detail, tasks);
        } else {
          skip = "invalid_batch";
        }
      } else {
        last_step_ok_ = true;
        if (twin_) {
          if (Status s = twin_->Record(batch); !s.ok()) return Fail(s.Annotate("appending TWIN engagements"));
        }
        scorer_.Score(pending_rows_, r->predictions, batch.labels, batch.masks, batch.weights);
        stream_time_ms_ = stamp;
        scorer_.Advance(stream_time_ms_);
        for (int64_t emit : pending_emit_ms_) {
          newest_emit_ms_ = std::max(newest_emit_ms_, emit);
          if (emit > 0) probe_.Freshness(std::max<int64_t>(0, now_ms - emit) / 1000.0);
        }
        samples_ += batch.size;
        ++steps_;
        probe_.Trained(batch.size);
      }
    }
    if (skip != nullptr) {
      last_step_ok_ = false;
      ++skipped_batches_;
      probe_.SkippedBatch(skip, bad_tasks);
      std::string names;
      for (int t : bad_tasks) names += (names.empty() ? "" : ",") + options_.tasks[t].name();
      int64_t suppressed = 0;
      if (warn_limiter_.Allow(now_ms, &suppressed))
        LOG_WARNING("learner_batch_skipped").Kv("reason", skip).Kv("tasks", names).Kv("samples", batch.size)
            .Kv("detail", detail).Kv("suppressed", suppressed);
    }
    // Trained or refused, these samples are handled: a replay must not count them again.
    for (size_t i = 0; i < pending_ids_.size(); ++i) dedup_.Insert(pending_ids_[i], pending_event_ms_[i]);
    pending_rows_.clear();
    pending_origins_.clear();
    pending_ids_.clear();
    pending_set_.clear();
    pending_event_ms_.clear();
    pending_emit_ms_.clear();
    pending_count_ = 0;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [p, o] : pending_offsets_) trained_offsets_[p] = o;
  }
  pending_offsets_.clear();
  // Eviction runs on stream time so that it, too, depends only on the batches.
  if (stream_time_ms_ - last_evict_stream_ms_ >= options_.learner.eviction_interval_ms()) {
    last_evict_stream_ms_ = stream_time_ms_;
    const int64_t evicted = trainer_->model().embeddings().EvictExpired(stream_time_ms_);
    if (evicted > 0) probe_.Evicted(evicted);
  }
  return Status::Ok();
}

Status TrainingLoop::Tick() {
  RETURN_IF_ERROR(health());
  const int64_t now = clock_->NowMs();
  const int64_t deadline = options_.learner.batch_deadline_ms();
  if (deadline > 0 && builder_.size() >= min_batch_ && now - first_pending_ms_ >= deadline) {
    RETURN_IF_ERROR(TrainPending());
  }
  if (now >= next_metrics_ms_) RefreshMetrics(now);
  if (now >= next_diagnostics_ms_) {
    next_diagnostics_ms_ = now + options_.learner.diagnostics_interval_ms();
    if (last_step_ok_) RunDiagnostics();
  }
  if (checkpoints_ && now >= next_checkpoint_ms_) {
    // An idle learner has nothing new to save: the next checkpoint waits for work.
    std::unique_lock<std::mutex> lock(mu_);
    const bool current = trained_offsets_ == checkpointed_offsets_;
    lock.unlock();
    if (current) next_checkpoint_ms_ = now + options_.learner.checkpoint_interval_ms();
    else RETURN_IF_ERROR(Checkpoint());
  }
  if (publish_hooks_.on_tick) publish_hooks_.on_tick();
  return Status::Ok();
}

int64_t TrainingLoop::MsUntilNextTimer() const {
  const int64_t now = clock_->NowMs();
  int64_t next = std::min(next_metrics_ms_, next_diagnostics_ms_);
  if (checkpoints_) next = std::min(next, next_checkpoint_ms_);
  if (options_.learner.batch_deadline_ms() > 0 && builder_.size() >= min_batch_)
    next = std::min(next, first_pending_ms_ + options_.learner.batch_deadline_ms());
  return std::max<int64_t>(0, next - now);
}

void TrainingLoop::RefreshMetrics(int64_t now_ms) {
  next_metrics_ms_ = now_ms + options_.learner.metrics_interval_ms();
  std::vector<TaskMetrics> snapshot = evaluator_.Snapshot();
  probe_.Quality(snapshot);
  const auto stats = trainer_->model().embeddings().stats();
  probe_.Sizes(stats.rows, static_cast<int64_t>(dedup_.size()));
  const int64_t samples = samples_.load();
  std::lock_guard<std::mutex> lock(mu_);
  task_metrics_ = std::move(snapshot);
  if (now_ms > rate_mark_ms_) samples_per_s_ = (samples - rate_mark_samples_) * 1000.0 / (now_ms - rate_mark_ms_);
  rate_mark_ms_ = now_ms;
  rate_mark_samples_ = samples;
}

void TrainingLoop::RunDiagnostics() {
  const cpu::ModelDiagnostics d = cpu::ComputeDiagnostics(trainer_->model());
  cpu::ExportDiagnostics(d, trainer_->model().tasks(), probe_.registry());
  const double zero_limit = options_.learner.zero_share_warning();
  const double occ_limit = options_.learner.occupancy_warning();
  std::string warned;
  for (const auto& e : d.experts) {
    const bool on = e.zero_share > zero_limit;
    probe_.ExpertWarning(e.expert, "zero_share", on);
    if (on) warned += " " + e.expert + ":zero_share=" + std::to_string(e.zero_share);
  }
  for (const auto& o : d.occupancy) {
    const double top = o.task_share.empty() ? 0 : *std::max_element(o.task_share.begin(), o.task_share.end());
    const bool on = top > occ_limit;
    probe_.ExpertWarning(o.expert, "occupancy", on);
    if (on) warned += " " + o.expert + ":occupancy=" + std::to_string(top);
  }
  int64_t suppressed = 0;
  if (!warned.empty() && warn_limiter_.Allow(clock_->NowMs(), &suppressed))
    LOG_WARNING("learner_expert_warning").Kv("experts", warned).Kv("zero_share_limit", zero_limit)
        .Kv("occupancy_limit", occ_limit).Kv("suppressed", suppressed);
}

std::string TrainingLoop::SaveLoopState() const {
  cpu::ByteWriter w;
  w.Put(kLoopMagic);
  for (int64_t v : {steps_.load(), samples_.load(), duplicates_.load(), bad_.load(), skipped_batches_.load(),
                    stream_time_ms_, newest_emit_ms_, last_evict_stream_ms_})
    w.Put(v);
  return w.Release();
}

Status TrainingLoop::LoadLoopState(std::string_view bytes) {
  cpu::ByteReader r(bytes);
  uint64_t magic = 0;
  int64_t v[8] = {};
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kLoopMagic) return DataLossError("learner loop state has a bad magic");
  for (int64_t& x : v) RETURN_IF_ERROR(r.Get(&x));
  if (!r.done()) return DataLossError("learner loop state has trailing bytes");
  steps_ = v[0];
  samples_ = v[1];
  duplicates_ = v[2];
  bad_ = v[3];
  skipped_batches_ = v[4];
  stream_time_ms_ = v[5];
  newest_emit_ms_ = v[6];
  last_evict_stream_ms_ = v[7];
  return Status::Ok();
}

Status TrainingLoop::Checkpoint() {
  RETURN_IF_ERROR(health());
  if (!checkpoints_) return Status::Ok();
  const int64_t start_us = clock_->MonotonicUs();
  const int64_t now = clock_->NowMs();
  next_checkpoint_ms_ = now + options_.learner.checkpoint_interval_ms();
  RefreshMetrics(now);
  CheckpointData d;
  d.state = trainer_->SaveState();
  d.dedup = dedup_.Save();
  d.loop = SaveLoopState();
  ModelManifest& m = d.manifest;
  m.set_kind(UPDATE_FULL);
  m.set_created_at_ms(now);
  m.set_train_step(static_cast<uint64_t>(steps_.load()));
  m.set_newest_sample_event_time_ms(stream_time_ms_);
  m.set_newest_sample_emit_time_ms(newest_emit_ms_);
  m.set_model_fingerprint(ModelFingerprint(options_.learner, options_.tasks));
  if (twin_) {
    m.set_behaviour_cache_sequence(twin_->sequence());
    if (Status s = twin_->QueueCommit(&d.also); !s.ok()) return Fail(s.Annotate("committing TWIN appends"));
  }
  uint32_t crc = 0;
  for (const cpu::Param<float>* p : trainer_->model().params())
    crc = Crc32c(p->value.data(), p->value.size() * sizeof(float), crc);
  m.set_dense_crc32c(crc);
  {
    std::lock_guard<std::mutex> lock(mu_);
    checkpointed_offsets_ = trained_offsets_;
    for (const auto& [p, o] : trained_offsets_) {
      PartitionOffset* po = m.add_input_offsets();
      po->set_topic(options_.topic);
      po->set_partition(p);
      po->set_offset(o);
    }
    for (const TaskMetrics& t : task_metrics_) {
      (*m.mutable_metrics())["auc/" + t.task] = t.auc;
      (*m.mutable_metrics())["gauc/" + t.task] = t.gauc;
      (*m.mutable_metrics())["log_loss/" + t.task] = t.log_loss;
      (*m.mutable_metrics())["calibration/" + t.task] = t.calibration;
    }
  }
  (*m.mutable_metrics())["samples_trained"] = static_cast<double>(samples_.load());
  const size_t bytes = d.state.size();
  StatusOr<uint64_t> version = checkpoints_->Write(std::move(d));
  if (!version.ok()) {
    probe_.CheckpointFailed();
    return Fail(version.status().Annotate("learner checkpoint to " + options_.store->path() +
                                          " failed; training stopped. Fix the store (disk space, permissions) and "
                                          "restart: the learner resumes from its last good checkpoint"));
  }
  const double seconds = (clock_->MonotonicUs() - start_us) / 1e6;
  probe_.Checkpointed(seconds, *version, bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoint_version_ = *version;
    checkpoint_time_ms_ = now;
    checkpoint_step_ = steps_.load();
    ++checkpoints_written_;
  }
  LOG_INFO("learner_checkpoint").Kv("version", *version).Kv("step", steps_.load()).Kv("samples", samples_.load())
      .Kv("bytes", bytes).Kv("seconds", seconds);
  return Status::Ok();
}

StatusOr<bool> TrainingLoop::Restore() {
  if (!checkpoints_) return false;
  ASSIGN_OR_RETURN(std::optional<CheckpointData> data, checkpoints_->ReadNewest());
  if (!data) return false;
  const ModelManifest& m = data->manifest;
  const std::string where = "learner checkpoint v" + std::to_string(m.version()) + " in " + options_.store->path();
  if (m.model_fingerprint() != ModelFingerprint(options_.learner, options_.tasks))
    return FailedPreconditionError(where + " was written for another model or task config; restore the old config "
                                           "or move the directory aside to train from scratch");
  if (Status s = trainer_->LoadState(data->state); !s.ok()) return s.Annotate(where);
  if (Status s = dedup_.Load(data->dedup); !s.ok()) return s.Annotate(where);
  if (Status s = LoadLoopState(data->loop); !s.ok()) return s.Annotate(where);
  {
    std::lock_guard<std::mutex> lock(mu_);
    trained_offsets_.clear();
    for (const PartitionOffset& po : m.input_offsets())
      if (po.topic() == options_.topic) trained_offsets_[po.partition()] = po.offset();
    checkpointed_offsets_ = trained_offsets_;
    checkpoint_version_ = m.version();
    checkpoint_time_ms_ = m.created_at_ms();
    checkpoint_step_ = static_cast<int64_t>(m.train_step());
  }
  rate_mark_samples_ = samples_.load();
  probe_.Restored(samples_.load(), steps_.load());
  LOG_INFO("learner_restored").Kv("version", m.version()).Kv("step", m.train_step()).Kv("samples", samples_.load())
      .Kv("offsets", m.input_offsets_size()).Kv("dedup_ids", dedup_.size())
      .Kv("behaviour_cache_sequence", m.behaviour_cache_sequence()).Kv("store_sequence", options_.store->LatestSequence());
  return true;
}

Status TrainingLoop::Finish() {
  RETURN_IF_ERROR(health());
  // Size-only batching leaves the partial batch for the replay after restart, so
  // that batch boundaries stay where an uninterrupted run would put them.
  if (options_.learner.batch_deadline_ms() > 0 && builder_.size() >= min_batch_) RETURN_IF_ERROR(TrainPending());
  RefreshMetrics(clock_->NowMs());
  return Checkpoint();
}

LearnerProgress TrainingLoop::Progress() const {
  LearnerProgress p;
  p.steps = steps_.load();
  p.records = records_.load();
  p.samples_trained = samples_.load();
  p.duplicates_skipped = duplicates_.load();
  p.bad_samples = bad_.load();
  p.skipped_batches = skipped_batches_.load();
  p.pending_samples = pending_count_.load();
  std::lock_guard<std::mutex> lock(mu_);
  p.samples_per_s = samples_per_s_;
  p.tasks = task_metrics_;
  p.checkpoint_version = checkpoint_version_;
  p.checkpoint_time_ms = checkpoint_time_ms_;
  p.checkpoint_step = checkpoint_step_;
  p.checkpoints_written = checkpoints_written_;
  p.trained_offsets = trained_offsets_;
  p.error = error_.ok() ? "" : error_.ToString();
  return p;
}

}  // namespace freshet::learner
