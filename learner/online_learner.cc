// OnlineLearner: consumer thread + bounded queue + training thread (see
// online_learner.h).
#include "learner/online_learner.h"

#include <chrono>

#include "common/json.h"
#include "common/logging.h"
#include "store/kv_store.h"

namespace freshet::learner {
namespace {
constexpr int kPollMs = 100;
constexpr int64_t kReachabilityEveryMs = 2000;

std::vector<SourceOffset> ToSourceOffsets(const std::map<int32_t, int64_t>& offsets) {
  std::vector<SourceOffset> out;
  for (const auto& [p, o] : offsets) out.push_back({p, o});
  return out;
}
}  // namespace

OnlineLearner::OnlineLearner(Options options)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::Real()),
      queue_(static_cast<size_t>(std::max(1, options_.config.learner().queue_capacity()))) {}

StatusOr<std::unique_ptr<OnlineLearner>> OnlineLearner::Create(Options options) {
  if (!options.source) return InvalidArgumentError("OnlineLearner needs a sample source");
  if (options.metrics == nullptr) return InvalidArgumentError("OnlineLearner needs a metrics registry");
  std::unique_ptr<OnlineLearner> learner(new OnlineLearner(std::move(options)));
  TrainingLoop::Options lo;
  lo.learner = learner->options_.config.learner();
  lo.tasks.assign(learner->options_.config.tasks().begin(), learner->options_.config.tasks().end());
  lo.topic = learner->options_.config.kafka().samples_topic();
  lo.store = learner->options_.store;
  lo.metrics = learner->options_.metrics;
  lo.clock = learner->clock_;
  lo.label_grace_ms = learner->options_.config.ingest().allowed_lateness_ms();
  ASSIGN_OR_RETURN(learner->loop_, TrainingLoop::Create(std::move(lo)));
  MetricsRegistry* m = learner->options_.metrics;
  BoundedQueue<SourceRecord>* q = &learner->queue_;
  Gauge* depth = m->GetGauge("freshet_learner_queue_depth", "Records waiting for the training thread");
  Gauge* waits = m->GetGauge("freshet_learner_queue_full_waits", "Times the consumer waited on a full queue");
  m->AddCollector([q, depth, waits] {
    depth->Set(static_cast<double>(q->size()));
    waits->Set(static_cast<double>(q->full_waits()));
  });
  return learner;
}

OnlineLearner::~OnlineLearner() { (void)Stop(); }

void OnlineLearner::SetError(const Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok() && !s.ok()) {
    error_ = s;
    LOG_ERROR("learner_failed").Kv("error", s.ToString());
  }
}

Status OnlineLearner::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status OnlineLearner::Start() {
  if (running_ || stopped_) return FailedPreconditionError("OnlineLearner::Start called twice");
  ASSIGN_OR_RETURN(bool restored, loop_->Restore());
  const auto offsets = loop_->trained_offsets();
  LOG_INFO("learner_starting").Kv("restored", restored).Kv("partitions_with_offsets", offsets.size())
      .Kv("batch_size", options_.config.learner().batch_size())
      .Kv("batch_deadline_ms", options_.config.learner().batch_deadline_ms());
  TrainingLoop* loop = loop_.get();
  Status s = options_.source->Start([loop](std::vector<SourceOffset>* assigned) {
    const auto stored = loop->trained_offsets();
    for (SourceOffset& a : *assigned) {
      auto it = stored.find(a.partition);
      if (it != stored.end()) a.offset = it->second;
      LOG_INFO("learner_partition_assigned").Kv("partition", a.partition).Kv("offset", a.offset)
          .Kv("from_checkpoint", it != stored.end());
    }
  });
  RETURN_IF_ERROR(s);
  source_ok_ = true;
  running_ = true;
  trainer_ = std::thread([this] { TrainLoop(); });
  consumer_ = std::thread([this] { ConsumeLoop(); });
  return Status::Ok();
}

void OnlineLearner::ConsumeLoop() {
  int64_t next_check = clock_->NowMs() + kReachabilityEveryMs;
  int64_t committed = 0;
  while (!stopping_) {
    const int64_t now = clock_->NowMs();
    if (now >= next_check) {
      next_check = now + kReachabilityEveryMs;
      source_ok_ = options_.source->CheckReachable(1000).ok();
      const int64_t v = commit_version_.load();
      if (v > committed) {
        committed = v;
        // Advisory (lag tools); a failure here costs nothing but a stale lag.
        (void)options_.source->Commit(ToSourceOffsets(loop_->Progress().trained_offsets));
      }
    }
    StatusOr<std::optional<SourceRecord>> r = options_.source->Poll(kPollMs);
    if (!r.ok()) {
      SetError(r.status().Annotate("reading samples"));
      break;
    }
    if (!r->has_value()) continue;
    SourceRecord record = std::move(**r);
    // Backpressure: wait for room, but keep noticing a stop request.
    while (!queue_.Push(record, std::chrono::milliseconds(kPollMs))) {
      if (stopping_ || queue_.closed()) return;
    }
  }
}

void OnlineLearner::TrainLoop() {
  auto fail = [this](const Status& s) {
    SetError(s);
    stopping_ = true;
  };
  while (!stopping_) {
    const int64_t wait = std::min<int64_t>(kPollMs, loop_->MsUntilNextTimer());
    std::optional<SourceRecord> r = queue_.Pop(std::chrono::milliseconds(std::max<int64_t>(1, wait)));
    if (r) {
      if (Status s = loop_->Add(*r); !s.ok()) return fail(s);
    }
    const uint64_t before = loop_->Progress().checkpoint_version;
    if (Status s = loop_->Tick(); !s.ok()) return fail(s);
    const uint64_t after = loop_->Progress().checkpoint_version;
    if (after != before) commit_version_ = static_cast<int64_t>(after);
  }
  // Drain what is queued, within the budget; the rest is re-read after restart.
  const int64_t until = clock_->NowMs() + options_.drain_budget_ms;
  int64_t drained = 0;
  while (clock_->NowMs() < until) {
    std::optional<SourceRecord> r = queue_.Pop(std::chrono::milliseconds(0));
    if (!r) break;
    if (Status s = loop_->Add(*r); !s.ok()) return SetError(s);
    ++drained;
  }
  LOG_INFO("learner_drained").Kv("records", drained).Kv("left_for_replay", queue_.size());
  if (Status s = loop_->Finish(); !s.ok()) SetError(s);
}

Status OnlineLearner::Stop() {
  if (stopped_) return error();
  stopped_ = true;
  if (!running_) return error();
  stopping_ = true;
  if (consumer_.joinable()) consumer_.join();
  queue_.Close();
  if (trainer_.joinable()) trainer_.join();
  running_ = false;
  if (error().ok()) (void)options_.source->Commit(ToSourceOffsets(loop_->trained_offsets()));
  if (Status s = options_.source->Close(); !s.ok()) LOG_WARNING("learner_source_close").Kv("error", s.ToString());
  const LearnerProgress p = loop_->Progress();
  LOG_INFO("learner_stopped").Kv("steps", p.steps).Kv("samples", p.samples_trained)
      .Kv("checkpoint", p.checkpoint_version).Kv("error", p.error);
  return error();
}

LearnerProgress OnlineLearner::Progress() const {
  LearnerProgress p = loop_->Progress();
  if (p.error.empty()) {
    Status e = error();
    if (!e.ok()) p.error = e.ToString();
  }
  return p;
}

Status OnlineLearner::Ready() const {
  if (!running_) return FailedPreconditionError("learner not running");
  RETURN_IF_ERROR(error());
  RETURN_IF_ERROR(loop_->health());
  if (options_.store) RETURN_IF_ERROR(options_.store->health());
  if (!source_ok_) return UnavailableError("the samples source (Kafka) is unreachable");
  return Status::Ok();
}

std::string OnlineLearner::StatusJson() const {
  const LearnerProgress p = Progress();
  const int64_t now = clock_->NowMs();
  JsonWriter w;
  w.BeginObject();
  w.Key("component").String("learner");
  w.Key("running").Bool(running_.load());
  w.Key("records_consumed").Int(p.records);
  w.Key("steps").Int(p.steps);
  w.Key("samples_trained").Int(p.samples_trained);
  w.Key("samples_per_s").Double(p.samples_per_s);
  w.Key("duplicates_skipped").Int(p.duplicates_skipped);
  w.Key("bad_samples").Int(p.bad_samples);
  w.Key("skipped_batches").Int(p.skipped_batches);
  w.Key("pending_samples").Int(p.pending_samples);
  w.Key("queue_depth").Int(static_cast<int64_t>(queue_.size()));
  w.Key("queue_capacity").Int(static_cast<int64_t>(queue_.capacity()));
  w.Key("tasks").BeginArray();
  for (const TaskMetrics& t : p.tasks) {
    w.BeginObject().Key("task").String(t.task).Key("count").Int(t.count);
    w.Key("auc").Double(t.auc).Key("gauc").Double(t.gauc).Key("log_loss").Double(t.log_loss);
    w.Key("calibration").Double(t.calibration).Key("mean_prediction").Double(t.mean_prediction);
    w.Key("mean_label").Double(t.mean_label);
    if (t.regression) w.Key("mse").Double(t.mse);
    w.EndObject();
  }
  w.EndArray();
  w.Key("last_checkpoint").BeginObject();
  w.Key("version").Int(static_cast<int64_t>(p.checkpoint_version)).Key("step").Int(p.checkpoint_step);
  w.Key("age_ms").Int(p.checkpoint_version ? now - p.checkpoint_time_ms : -1);
  w.Key("written_this_run").Int(p.checkpoints_written);
  w.EndObject();
  w.Key("trained_offsets").BeginArray();
  for (const auto& [part, off] : p.trained_offsets) w.BeginObject().Key("partition").Int(part).Key("offset").Int(off).EndObject();
  w.EndArray();
  w.Key("error").String(p.error);
  w.EndObject();
  return w.str();
}

}  // namespace freshet::learner
