// ServingReplica: applies pushed versions atomically and scores requests.
#include "publisher/serving_replica.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/json.h"
#include "common/logging.h"
#include "learner/cpu/loss.h"
#include "store/behaviour_cache.h"
#include "store/kv_store.h"

namespace freshet::publisher {

struct ServingReplica::Probe {
  MetricsRegistry* m;
  Gauge* version;
  Gauge* rows;
  Gauge* freshness;
  Histogram* apply_seconds;
  Histogram* score_seconds;
  Histogram* applied_freshness;
  Histogram* served_freshness;

  explicit Probe(MetricsRegistry* registry) : m(registry) {
    version = m->GetGauge("freshet_serving_version", "Model version this replica serves (0: none)");
    rows = m->GetGauge("freshet_serving_rows", "Embedding rows of the served version");
    freshness = m->GetGauge("freshet_serving_freshness_seconds",
                            "Now minus the emit time of the newest sample trained into the served version");
    apply_seconds = m->GetHistogram("freshet_serving_apply_seconds", "Time to build and swap in a pushed version",
                                    ExponentialBuckets(0.0005, 2, 16));
    score_seconds = m->GetHistogram("freshet_serving_score_seconds", "Time to score one /v1/score request",
                                    ExponentialBuckets(0.00005, 2, 16));
    applied_freshness = FreshnessHistogram(m, "applied");
    served_freshness = FreshnessHistogram(m, "served");
  }
  void CountFrame(FrameType type, const char* result) {
    m->GetCounter("freshet_serving_frames_total", "Frames handled, by type and result",
                  {{"type", FrameTypeName(type)}, {"result", result}})
        ->Inc();
  }
  void CountBadFrame(FrameError error) {
    m->GetCounter("freshet_serving_bad_frames_total", "Frames refused before handling (connection closed)",
                  {{"reason", FrameErrorName(error)}})
        ->Inc();
  }
  void CountScore(const char* result) {
    m->GetCounter("freshet_serving_score_requests_total", "POST /v1/score requests by result", {{"result", result}})
        ->Inc();
  }
};

struct ServingReplica::Behaviours {
  std::unique_ptr<store::KvStore> store;
  std::unique_ptr<store::BehaviourCache> cache;
};

ServingReplica::ServingReplica(Options options, MetricsRegistry* metrics, Clock* clock)
    : options_(std::move(options)), metrics_(metrics), clock_(clock), probe_(std::make_unique<Probe>(metrics)) {}

StatusOr<std::unique_ptr<ServingReplica>> ServingReplica::Start(Options options, MetricsRegistry* metrics,
                                                                Clock* clock) {
  if (options.hmac_key.size() < kMinHmacKeyBytes)
    return InvalidArgumentError("serving replica: the HMAC key has " + std::to_string(options.hmac_key.size()) +
                                " bytes, at least " + std::to_string(kMinHmacKeyBytes) + " needed");
  // Fails early, with the config's own message, when the model cannot be built.
  RETURN_IF_ERROR(BuildServingModel(options.learner, options.tasks).status());
  std::unique_ptr<ServingReplica> r(new ServingReplica(std::move(options), metrics, clock));
  PushListener::Options lo;
  lo.bind_address = r->options_.push_bind_address;
  lo.port = r->options_.push_port;
  lo.key = r->options_.hmac_key;
  lo.max_payload_bytes = r->options_.max_frame_bytes;
  ServingReplica* self = r.get();
  r->listener_ = std::make_unique<PushListener>(
      lo, [self](const publisher::Frame& f) { return self->Handle(f); },
      [self](FrameError e, const Status&) { self->probe_->CountBadFrame(e); });
  RETURN_IF_ERROR(r->listener_->Start());
  r->RefreshBehaviours();
  r->ticker_ = std::thread([self] {
    std::unique_lock<std::mutex> lock(self->ticker_mu_);
    while (!self->ticker_cv_.wait_for(lock, std::chrono::seconds(1), [self] { return self->stopping_; })) {
      lock.unlock();
      self->SampleFreshness();
      self->RefreshBehaviours();
      lock.lock();
    }
  });
  LOG_INFO("serving_started").Kv("replica", r->options_.replica).Kv("push_port", r->push_port());
  return r;
}

ServingReplica::~ServingReplica() {
  Stop();
  std::string secondary = secondary_dir_;
  behaviours_.reset();  // closes the secondary before its directory goes
  if (!secondary.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary, ec);
  }
}

void ServingReplica::Stop() {
  if (listener_) listener_->Stop();
  {
    std::lock_guard<std::mutex> lock(ticker_mu_);
    stopping_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

std::shared_ptr<ServingReplica::Served> ServingReplica::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::shared_ptr<ServingReplica::Behaviours> ServingReplica::behaviours() const {
  std::lock_guard<std::mutex> lock(mu_);
  return behaviours_;
}

void ServingReplica::RefreshBehaviours() {
  const TwinConfig& twin = options_.learner.model().twin();
  if (options_.behaviour_cache_dir.empty() || !twin.enabled()) return;
  if (std::shared_ptr<Behaviours> b = behaviours()) {
    const Status s = b->store->TryCatchUpWithPrimary();
    metrics_
        ->GetCounter("freshet_serving_behaviour_catchups_total",
                     "Catch-ups of the behaviour cache's read-only secondary with the learner's store, by result",
                     {{"result", s.ok() ? "ok" : "error"}})
        ->Inc();
    if (!s.ok()) LOG_WARNING("serving_behaviour_catchup_failed").Kv("status", s.ToString());
    return;
  }
  if (secondary_dir_.empty()) {
    static std::atomic<int> instances{0};
    secondary_dir_ = (std::filesystem::temp_directory_path() /
                      ("freshet-serving-secondary-" + std::to_string(getpid()) + "-" +
                       std::to_string(options_.replica) + "-" + std::to_string(instances++)))
                         .string();
  }
  auto store = store::BehaviourCache::OpenSecondary(options_.behaviour_cache_dir, secondary_dir_, twin.max_len());
  if (!store.ok()) {
    // The learner may not have created its store yet: retried every second.
    if (store.status().ToString() != open_error_)
      LOG_WARNING("serving_behaviour_cache_unavailable")
          .Kv("dir", options_.behaviour_cache_dir)
          .Kv("status", store.status().ToString());
    open_error_ = store.status().ToString();
    return;
  }
  auto b = std::make_shared<Behaviours>();
  b->store = std::move(store).value();
  b->cache = std::make_unique<store::BehaviourCache>(b->store.get(), twin.max_len());
  LOG_INFO("serving_behaviour_cache_opened").Kv("dir", options_.behaviour_cache_dir).Kv("secondary", secondary_dir_);
  std::lock_guard<std::mutex> lock(mu_);
  behaviours_ = std::move(b);
}

uint64_t ServingReplica::version() const {
  auto served = current();
  return served ? served->manifest.version() : 0;
}

Frame ServingReplica::Reply(FrameType type, uint64_t answered, std::string reason) const {
  Frame f;
  f.header.type = type;
  f.header.version = version();
  f.header.base_version = answered;
  f.payload = std::move(reason);
  return f;
}

Frame ServingReplica::Handle(const Frame& frame) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  const FrameType type = frame.header.type;
  if (type == FrameType::kFull || type == FrameType::kDelta) return Apply(frame);
  if (type == FrameType::kPing) {
    probe_->CountFrame(type, "ack");
    return Reply(FrameType::kAck, frame.header.version);
  }
  probe_->CountFrame(type, "rejected");
  return Reply(FrameType::kReject, frame.header.version,
               std::string("a serving replica accepts FULL, DELTA and PING frames, not ") + FrameTypeName(type));
}

Frame ServingReplica::Apply(const Frame& frame) {
  const FrameHeader& h = frame.header;
  const bool delta = h.type == FrameType::kDelta;
  auto reject = [&](const std::string& why) {
    probe_->CountFrame(h.type, "rejected");
    LOG_WARNING("serving_frame_rejected").Kv("type", FrameTypeName(h.type)).Kv("version", h.version).Kv("why", why);
    return Reply(FrameType::kReject, h.version, why);
  };
  std::shared_ptr<Served> served = current();
  if (delta && (!served || served->manifest.version() != h.base_version)) {
    probe_->CountFrame(h.type, "need_full");
    LOG_INFO("serving_need_full").Kv("delta", h.version).Kv("base", h.base_version).Kv("served", version());
    return Reply(FrameType::kNeedFull, h.version);
  }
  const int64_t start_us = clock_->MonotonicUs();
  ModelUpdate update;
  if (!update.ParseFromString(frame.payload)) return reject("payload is not a serialized ModelUpdate");
  const ModelManifest& m = update.manifest();
  if (m.version() != h.version || (delta && m.base_version() != h.base_version) ||
      m.kind() != (delta ? UPDATE_DELTA : UPDATE_FULL))
    return reject("the update's manifest (version " + std::to_string(m.version()) + ", base " +
                  std::to_string(m.base_version()) + ") does not match the frame header");
  auto next = BuildServingModel(options_.learner, options_.tasks);
  if (!next.ok()) return reject(next.status().ToString());
  if (delta) CopyModel(*served->model, next->get());
  if (Status s = ApplyUpdate(update, next->get()); !s.ok()) return reject(s.ToString());

  auto fresh = std::make_shared<Served>();
  fresh->manifest = m;
  fresh->model = std::move(next).value();
  // Stamps the projections this version's (fresh, empty) cache computes.
  fresh->model->set_version(static_cast<int64_t>(h.version));
  fresh->applied_at_ms = clock_->NowMs();
  const int64_t rows = fresh->model->embeddings().stats().rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(fresh);
  }
  // The old version is freed here, or by the last request still scoring on it.
  served.reset();
  const double seconds = static_cast<double>(clock_->MonotonicUs() - start_us) / 1e6;
  probe_->CountFrame(h.type, "applied");
  probe_->version->Set(static_cast<double>(h.version));
  probe_->rows->Set(static_cast<double>(rows));
  probe_->apply_seconds->Observe(seconds);
  if (m.newest_sample_emit_time_ms() > 0)
    probe_->applied_freshness->Observe(
        std::max(0.0, static_cast<double>(clock_->NowMs() - m.newest_sample_emit_time_ms()) / 1e3));
  LOG_INFO("serving_applied")
      .Kv("replica", options_.replica)
      .Kv("type", FrameTypeName(h.type))
      .Kv("version", h.version)
      .Kv("rows", rows)
      .Kv("apply_ms", seconds * 1e3);
  return Reply(FrameType::kAck, h.version);
}

StatusOr<ScoreResult> ServingReplica::Score(const ScoreRequest& request) {
  std::shared_ptr<Served> served = current();
  if (!served) return UnavailableError("no model version served yet (waiting for a FULL frame from the publisher)");
  ASSIGN_OR_RETURN(Batch batch,
                   BuildScoreBatch(request, options_.learner.model(), static_cast<int>(options_.tasks.size())));
  if (request.time_ms == 0) {  // no request time: now (TWIN reads behaviours before it)
    batch.max_event_time_ms = clock_->NowMs();
    std::fill(batch.event_times_ms.begin(), batch.event_times_ms.end(), batch.max_event_time_ms);
  }
  if (!request.history && options_.learner.model().twin().enabled()) {
    // The learner's own read (one MultiGet); without a cache the history is empty.
    if (std::shared_ptr<Behaviours> b = behaviours()) RETURN_IF_ERROR(AttachBehaviours(*b->cache, &batch));
  }
  ScoreResult result;
  result.version = served->manifest.version();
  for (const TaskConfig& t : options_.tasks) result.tasks.push_back(t.name());
  std::lock_guard<std::mutex> lock(served->forward_mu);
  // The learner's inference path: no admission, BatchNorm on running statistics.
  served->model->Forward(batch, /*training=*/false, /*now_ms=*/0);
  cpu::PredictionsFromLogits(served->model->tasks(), served->model->logits(), &result.scores);
  return result;
}

HttpResponse ServingReplica::HandleScore(const HttpRequest& request) {
  if (request.method != "POST") return HttpResponse::Text(405, "POST a JSON score request to /v1/score\n");
  const int64_t start_us = clock_->MonotonicUs();
  StatusOr<ScoreRequest> parsed = ParseScoreRequest(request.body, options_.max_score_items);
  StatusOr<ScoreResult> result = parsed.ok() ? Score(*parsed) : StatusOr<ScoreResult>(parsed.status());
  if (!result.ok()) {
    const bool unavailable = result.status().code() == StatusCode::kUnavailable;
    probe_->CountScore(unavailable ? "unavailable" : "bad_request");
    JsonWriter err;
    err.BeginObject().Key("error").String(result.status().message()).EndObject();
    return HttpResponse::Json(unavailable ? 503 : 400, err.str());
  }
  JsonWriter w;
  w.BeginObject().Key("version").Int(static_cast<int64_t>(result->version)).Key("tasks").BeginArray();
  for (const std::string& t : result->tasks) w.String(t);
  w.EndArray().Key("items").BeginArray();
  for (size_t i = 0; i < parsed->items.size(); ++i) {
    w.BeginObject().Key("item_id").Raw(std::to_string(parsed->items[i].item_id)).Key("scores").BeginObject();
    for (size_t t = 0; t < result->tasks.size(); ++t) w.Key(result->tasks[t]).Double(result->scores(i, t));
    w.EndObject().EndObject();
  }
  w.EndArray().EndObject();
  probe_->CountScore("ok");
  probe_->score_seconds->Observe(static_cast<double>(clock_->MonotonicUs() - start_us) / 1e6);
  return HttpResponse::Json(200, w.str());
}

void ServingReplica::SampleFreshness() {
  std::shared_ptr<Served> served = current();
  if (!served || served->manifest.newest_sample_emit_time_ms() <= 0) return;
  const double s =
      std::max(0.0, static_cast<double>(clock_->NowMs() - served->manifest.newest_sample_emit_time_ms()) / 1e3);
  probe_->freshness->Set(s);
  probe_->served_freshness->Observe(s);
}

std::string ServingReplica::StatusJson() const {
  std::shared_ptr<Served> served = current();
  const int64_t now = clock_->NowMs();
  JsonWriter w;
  w.BeginObject().Key("component").String("serving").Key("replica").Int(options_.replica);
  w.Key("push_port").Int(listener_->port()).Key("now_ms").Int(now);
  if (!served) {
    w.Key("version").Int(0).Key("serving").Bool(false).EndObject();
    return w.str();
  }
  const ModelManifest& m = served->manifest;
  auto seconds_since = [&](int64_t ms) { return ms > 0 ? static_cast<double>(now - ms) / 1e3 : -1.0; };
  w.Key("version").Int(static_cast<int64_t>(m.version())).Key("serving").Bool(true);
  w.Key("kind").String(m.kind() == UPDATE_DELTA ? "DELTA" : "FULL");
  w.Key("base_version").Int(static_cast<int64_t>(m.base_version()));
  w.Key("train_step").Int(static_cast<int64_t>(m.train_step()));
  w.Key("created_at_ms").Int(m.created_at_ms()).Key("applied_at_ms").Int(served->applied_at_ms);
  // age: since the publisher cut the version; freshness: since the newest trained
  // sample was emitted (DESIGN.md §7 stage "served"); event_freshness: since its
  // impression happened. -1 when the manifest lacks the time.
  w.Key("age_s").Double(seconds_since(m.created_at_ms()));
  w.Key("freshness_s").Double(seconds_since(m.newest_sample_emit_time_ms()));
  w.Key("event_freshness_s").Double(seconds_since(m.newest_sample_event_time_ms()));
  w.Key("newest_sample_event_time_ms").Int(m.newest_sample_event_time_ms());
  w.Key("newest_sample_emit_time_ms").Int(m.newest_sample_emit_time_ms());
  w.Key("rows").Int(served->model->embeddings().stats().rows);
  w.Key("model_fingerprint").String(m.model_fingerprint());
  w.EndObject();
  return w.str();
}

void ServingReplica::RegisterAdmin(AdminServer* admin) {
  admin->Handle("/v1/score", [this](const HttpRequest& r) { return HandleScore(r); });
  admin->SetStatusProvider([this] { return StatusJson(); });
  admin->AddReadinessCheck("model_served", [this]() -> Status {
    if (version() == 0) return UnavailableError("no model version served yet (waiting for a FULL frame)");
    return Status::Ok();
  });
}

}  // namespace freshet::publisher
