// Joiner: Kafka in, PartitionJoin, Kafka out, RocksDB checkpoints; see joiner.h.
#include "ingest/joiner.h"

#include <set>

#include "common/json.h"
#include "common/logging.h"
#include "ingest/event_decoder.h"
#include "ingest/ingest_probe.h"
#include "ingest/kafka_client.h"
#include "ingest/partition_join.h"
#include "ingest/task_rules.h"
#include "store/kv_store.h"

namespace freshet::ingest {
namespace {

constexpr int kForceCloseBatch = 1000;
// Batches smaller than this are joined on the consumer thread alone: waking the join
// threads would cost more than it saves.
constexpr size_t kMinParallelBatch = 256;
constexpr int64_t kLagRefreshUs = 1'000'000;  // consumer lag gauges: at most once a second

}  // namespace

std::vector<std::string> Joiner::StoreFamilies() {
  return {PartitionJoin::kRecordFamily, PartitionJoin::kMetaFamily};
}

Joiner::Joiner(Options options)
    : options_(std::move(options)),
      batch_clock_(options_.clock ? options_.clock : Clock::Real()) {}

Joiner::~Joiner() {
  Status s = Stop();
  if (!s.ok()) LOG_WARNING("joiner_stop").Kv("status", s.ToString());
}

StatusOr<std::unique_ptr<Joiner>> Joiner::Create(Options options) {
  if (!options.store || !options.metrics) return InvalidArgumentError("Joiner needs a store and a metrics registry");
  std::unique_ptr<Joiner> j(new Joiner(std::move(options)));
  const FreshetConfig& c = j->options_.config;
  ASSIGN_OR_RETURN(TaskRules rules, TaskRules::Create(c));
  j->rules_ = std::make_unique<TaskRules>(std::move(rules));
  j->feature_headroom_ = SampleHeaderBound(static_cast<size_t>(j->rules_->size()));
  j->probe_ = std::make_unique<IngestProbe>(j->options_.metrics, c.ingest().policy());
  const std::string bootstrap =
      j->options_.bootstrap_servers.empty() ? c.kafka().bootstrap_servers() : j->options_.bootstrap_servers;
  if (bootstrap.empty()) return InvalidArgumentError("kafka.bootstrap_servers is empty: the joiner needs a cluster");

  KafkaProducer::Options popt;
  popt.bootstrap_servers = bootstrap;
  popt.client_id = j->options_.client_id;
  popt.linger_ms = c.kafka().linger_ms();
  popt.properties.insert(c.kafka().client_properties().begin(), c.kafka().client_properties().end());
  ASSIGN_OR_RETURN(j->producer_, KafkaProducer::Create(popt));

  KafkaConsumer::Options copt;
  copt.bootstrap_servers = bootstrap;
  copt.client_id = j->options_.client_id;
  copt.group_id = c.ingest().consumer_group();
  copt.session_timeout_ms = c.kafka().session_timeout_ms();
  copt.from_beginning = true;
  copt.properties.insert(c.kafka().client_properties().begin(), c.kafka().client_properties().end());
  Joiner* raw = j.get();
  copt.on_assign = [raw](std::vector<TopicPartitionOffset>* tps) { raw->OnAssign(tps); };
  copt.on_revoke = [raw](const std::vector<TopicPartitionOffset>& tps) { raw->OnRevoke(tps); };
  ASSIGN_OR_RETURN(j->consumer_, KafkaConsumer::Create(copt));
  j->pool_ = std::make_unique<WorkerPool>(c.ingest().join_threads());
  j->lanes_.resize(static_cast<size_t>(c.ingest().join_threads()));
  j->writer_ = std::make_unique<CheckpointWriter>(j->producer_.get(), j->options_.store, &j->batch_clock_);
  return j;
}

Status Joiner::Start() {
  batch_clock_.Tick();
  RETURN_IF_ERROR(consumer_->Subscribe({options_.config.kafka().impressions_topic(), options_.config.kafka().labels_topic()}));
  started_ = true;
  next_checkpoint_ms_ = batch_clock_.NowMs() + options_.config.ingest().checkpoint_interval_ms();
  LOG_INFO("joiner_started").Kv("group", options_.config.ingest().consumer_group())
      .Kv("policy", PolicyLabel(options_.config.ingest().policy())).Kv("tasks", rules_->size())
      .Kv("max_window_ms", rules_->max_window_ms()).Kv("store", options_.store->path());
  return Status::Ok();
}

PartitionJoin* Joiner::StateFor(int32_t partition) {
  auto& slot = partitions_[partition];
  if (!slot) {
    // Normally created in OnAssign; a message for an unknown partition gets fresh state.
    slot = std::make_unique<PartitionJoin>(partition, rules_.get(), options_.config.ingest(), probe_.get(), &batch_clock_);
  }
  return slot.get();
}

void Joiner::DeadLetter(const KafkaMessage& m, const std::string& reason, const std::string& detail, Lane* lane) {
  freshet::DeadLetter d;
  d.set_source_topic(m.topic);
  d.set_partition(m.partition);
  d.set_offset(m.offset);
  d.set_reason(reason);
  d.set_detail(detail);
  d.set_payload(m.value);
  d.set_rejected_at_ms(batch_clock_.NowMs());
  d.set_component("ingest");
  lane->pending.emplace_back("\x01" + m.key, d.SerializeAsString());  // \x01 marks the dead-letter topic
  probe_->DeadLetter(reason);
  deadletters_.fetch_add(1);
  static RateLimiter limiter(5000);
  int64_t suppressed = 0;
  if (limiter.Allow(batch_clock_.NowMs(), &suppressed)) {
    LOG_WARNING("ingest_deadletter").Kv("reason", reason).Kv("detail", detail).Kv("topic", m.topic)
        .Kv("partition", m.partition).Kv("offset", m.offset).Kv("suppressed", suppressed);
  }
}

void Joiner::ProcessBatch(size_t n, size_t stale_before) {
  const int lanes = n >= kMinParallelBatch ? pool_->threads() : 1;
  for (Lane& lane : lanes_) lane.messages.clear();
  size_t skipped = 0;
  for (size_t i = 0; i < n; ++i) {
    const KafkaMessage& m = batch_[i];
    if (i < stale_before && std::find(rebalanced_.begin(), rebalanced_.end(), m.partition) != rebalanced_.end()) {
      ++skipped;
      continue;
    }
    PartitionJoin* join = StateFor(m.partition);  // creates state here, never inside the lanes
    lanes_[static_cast<size_t>(m.partition % lanes)].messages.push_back({&m, join});
  }
  if (skipped > 0) {
    LOG_INFO("ingest_rebalance_skipped").Kv("messages", skipped).Kv("effect", "read again from the stored offsets");
  }
  // Each lane touches only its own partitions and scratch; metrics are atomic.
  pool_->Run(lanes, [&](int k) {
    Lane& lane = lanes_[static_cast<size_t>(k)];
    JoinLane(&lane);
    for (auto& [p, join] : partitions_) {
      if (p % lanes != k) continue;
      join->Advance(&lane.emitted);  // an input may have gone idle
      join->FlushMetrics();
    }
    QueueEmitted(&lane);
  });
  MergeLanes();
}

void Joiner::JoinLane(Lane* lane) {
  const std::vector<Lane::Queued>& q = lane->messages;
  ForEachPrefetched(
      q.size(), [&](size_t i) -> std::string_view { return q[i].message->key; },
      [&](size_t i) { return q[i].join; }, [&](size_t i) { Process(*q[i].message, q[i].join, lane); });
}

void Joiner::Process(const KafkaMessage& m, PartitionJoin* join, Lane* lane) {
  const KafkaConfig& kc = options_.config.kafka();
  const bool is_imp = m.topic == kc.impressions_topic();
  join->SetConsumed(is_imp, m.offset + 1);
  ++lane->events;
  DecodeLimits limits;
  limits.max_message_bytes = kc.max_message_bytes();
  limits.now_ms = batch_clock_.NowMs();
  limits.max_future_skew_ms = options_.config.ingest().max_future_skew_ms();
  limits.feature_headroom = feature_headroom_;
  const int64_t wm = join->watermark();
  if (wm != PartitionJoin::kNoTime) limits.oldest_impression_ms = wm - options_.config.ingest().max_impression_age_ms();
  if (is_imp) {
    ImpressionEvent imp;
    Rejection r = DecodeImpression(m.key, m.value, limits, &imp);
    if (!r.ok()) return DeadLetter(m, r.reason, r.detail, lane);
    ++lane->impressions;
    join->AddImpression(std::move(imp), &lane->emitted);
  } else {
    Rejection r = DecodeLabel(m.key, m.value, limits, &lane->label);
    if (!r.ok()) return DeadLetter(m, r.reason, r.detail, lane);
    ++lane->labels;
    join->AddLabel(lane->label, &lane->emitted);
  }
  QueueEmitted(lane);
}

void Joiner::QueueEmitted(Lane* lane) {
  for (JoinedSample& s : lane->emitted) lane->pending.emplace_back(std::to_string(s.user_id), std::move(s.bytes));
  lane->samples += lane->emitted.size();
  lane->emitted.clear();
}

void Joiner::MergeLanes() {
  for (Lane& lane : lanes_) {
    if (pending_.empty()) {
      pending_.swap(lane.pending);
    } else {
      pending_.insert(pending_.end(), std::make_move_iterator(lane.pending.begin()),
                      std::make_move_iterator(lane.pending.end()));
      lane.pending.clear();
    }
    events_.fetch_add(lane.events);
    samples_.fetch_add(lane.samples);
    probe_->Events(lane.impressions, lane.labels);
    lane.events = lane.samples = lane.impressions = lane.labels = 0;
  }
}

Status Joiner::ProducePending() {
  const KafkaConfig& kc = options_.config.kafka();
  auto dead = [](const std::string& key) { return !key.empty() && key[0] == '\x01'; };
  // Each run of samples (or of dead letters) goes to the producer in one call.
  size_t done = 0;
  Status result;
  while (done < pending_.size() && result.ok()) {
    const bool run_dead = dead(pending_[done].first);
    produce_scratch_.clear();
    for (size_t i = done; i < pending_.size() && dead(pending_[i].first) == run_dead; ++i) {
      const auto& [key, value] = pending_[i];
      produce_scratch_.push_back({run_dead ? std::string_view(key).substr(1) : std::string_view(key), value});
    }
    size_t enqueued = 0;
    result = producer_->ProduceBatch(run_dead ? kc.deadletter_topic() : kc.samples_topic(), produce_scratch_, &enqueued);
    done += enqueued;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  return result;  // what is left stays pending: retried next time, intake waits
}

Status Joiner::RunOnce(int poll_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(error_);
  }
  if (!pending_.empty()) {
    Status s = ProducePending();
    if (!s.ok()) return s.code() == StatusCode::kResourceExhausted ? Status::Ok() : s;  // still backed up
  }
  // Read the batch first (without mu_: a rebalance callback inside the poll takes
  // it), then process it under one lock. The messages' storage is reused.
  if (batch_.size() < static_cast<size_t>(options_.max_batch)) batch_.resize(static_cast<size_t>(options_.max_batch));
  size_t n = 0;
  size_t stale_before = 0;  // batch_[0, stale_before) was read before a rebalance callback
  rebalanced_.clear();
  for (; n < batch_.size(); ++n) {
    const size_t rebalanced = rebalanced_.size();
    StatusOr<bool> got = consumer_->PollInto(n == 0 ? poll_ms : 0, &batch_[n]);
    if (rebalanced_.size() != rebalanced) stale_before = n;
    if (n == 0) batch_clock_.Tick();  // after the first poll, which may have waited up to poll_ms
    if (!got.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ProcessBatch(n, stale_before);  // read: their effects are kept until the restart
      error_ = got.status();
      return error_;
    }
    if (!*got) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ProcessBatch(n, stale_before);
    ApplyBackpressure();
    UpdateGauges();
  }
  Status produced = ProducePending();
  if (!produced.ok() && produced.code() != StatusCode::kResourceExhausted) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = produced;
    return produced;
  }
  RefreshLag();
  if (auto done = writer_->TakeIfDone()) RETURN_IF_ERROR(FinishCheckpoint(std::move(*done), /*commit=*/true));
  // The next checkpoint starts once the previous one is written (the interval is
  // then counted from here): at most one is in flight.
  if (batch_clock_.NowMs() >= next_checkpoint_ms_ && pending_.empty() && !writer_->Busy()) {
    next_checkpoint_ms_ = batch_clock_.NowMs() + options_.config.ingest().checkpoint_interval_ms();
    const int64_t t0 = batch_clock_.MonotonicUs();
    RETURN_IF_ERROR(SubmitCheckpoint(nullptr));
    checkpoint_us_.fetch_add(static_cast<uint64_t>(batch_clock_.MonotonicUs() - t0));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void Joiner::ApplyBackpressure() {
  const KafkaConfig& kc = options_.config.kafka();
  for (auto& [partition, join] : partitions_) {
    const int32_t p = partition;  // clang 14 cannot capture structured bindings in lambdas
    auto& [imp_paused, label_paused] = paused_[p];
    auto toggle = [&](bool* paused, bool over, bool below, const std::string& topic, const char* reason) {
      if (!*paused && over) {
        Status s = consumer_->Pause({{topic, p, -1}});
        if (s.ok()) *paused = true;
        probe_->Backpressure(reason);
        LOG_WARNING("ingest_backpressure").Kv("partition", p).Kv("reason", reason).Kv("action", "pausing " + topic);
      } else if (*paused && below) {
        if (consumer_->Resume({{topic, p, -1}}).ok()) *paused = false;
        LOG_INFO("ingest_backpressure_released").Kv("partition", p).Kv("topic", topic);
      }
    };
    toggle(&imp_paused, join->OverRecordBound(), join->BelowResumeRecords(), kc.impressions_topic(), "open_impressions");
    toggle(&label_paused, join->OverOrphanBound(), join->BelowResumeOrphans(), kc.labels_topic(), "orphan_labels");
    if (imp_paused && label_paused) {  // neither input can advance the watermark: escalate
      join->ForceCloseOldest(kForceCloseBatch, &lanes_[0].emitted);
      join->FlushMetrics();
      QueueEmitted(&lanes_[0]);
      MergeLanes();
    }
  }
}

Status Joiner::Run(StopFlag* stop) {
  if (!started_) RETURN_IF_ERROR(Start());
  Status result;
  while (!stop->requested()) {
    result = RunOnce(100);
    if (!result.ok()) break;
  }
  Status stopped = Stop();
  return result.ok() ? stopped : result;
}

Status Joiner::Stop() {
  if (stopped_ || !started_) return Status::Ok();
  stopped_ = true;
  Status s = Checkpoint();
  Status closed = consumer_->Close();  // revokes: checkpoints and drops every partition
  LOG_INFO("joiner_stopped").Kv("events", events_.load()).Kv("samples", samples_.load())
      .Kv("deadletters", deadletters_.load()).Kv("checkpoints", checkpoints_.load());
  return s.ok() ? closed : s;
}

void Joiner::UpdateGauges() {
  MetricsRegistry* r = options_.metrics;
  const int64_t now = batch_clock_.NowMs();
  for (const auto& [p, join] : partitions_) {
    const Labels l = {{"partition", std::to_string(p)}};
    r->GetGauge("freshet_ingest_open_impressions", "Impressions whose window is open", l)->Set(join->open_records());
    r->GetGauge("freshet_ingest_closed_impressions", "Closed impressions remembered for late labels", l)
        ->Set(join->closed_records());
    r->GetGauge("freshet_ingest_orphan_labels", "Labels waiting for their impression", l)->Set(join->orphan_labels());
    if (join->watermark() != PartitionJoin::kNoTime) {
      r->GetGauge("freshet_ingest_watermark_lag_seconds", "Wall clock minus the partition's event-time watermark", l)
          ->Set((now - join->watermark()) / 1000.0);
    }
  }
}

void Joiner::RefreshLag() {
  const int64_t now_us = batch_clock_.MonotonicUs();
  if (now_us < next_lag_refresh_us_) return;
  next_lag_refresh_us_ = now_us + kLagRefreshUs;
  // Cached watermarks (KafkaConsumer::Lag): no broker round trip on this path.
  std::vector<PartitionLag> lags = consumer_->Lag();
  std::lock_guard<std::mutex> lock(mu_);
  lag_.clear();
  for (const PartitionLag& l : lags) {
    lag_[{l.topic, l.partition}] = l.lag;
    if (l.lag >= 0) probe_->ConsumerLag(l.topic, l.partition, l.lag);
  }
}

Status Joiner::Ready() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
  }
  RETURN_IF_ERROR(options_.store->health());
  return producer_->CheckReachable(1000);
}

Joiner::Stats Joiner::stats() const {
  Stats s;
  s.events = events_.load();
  s.samples = samples_.load();
  s.deadletters = deadletters_.load();
  s.checkpoints = checkpoints_.load();
  s.checkpoint_records = checkpoint_records_.load();
  s.checkpoint_bytes = checkpoint_bytes_.load();
  s.checkpoint_us = checkpoint_us_.load();
  s.checkpoint_collect_us = checkpoint_collect_us_.load();
  s.checkpoint_flush_us = checkpoint_flush_us_.load();
  s.checkpoint_write_us = checkpoint_write_us_.load();
  s.assigned_us = assigned_us_.load();
  return s;
}

std::string Joiner::StatusJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  JsonWriter w;
  w.BeginObject().Key("component").String("ingest")
      .Key("policy").String(PolicyLabel(options_.config.ingest().policy()))
      .Key("group").String(options_.config.ingest().consumer_group())
      .Key("store").String(options_.store->path())
      .Key("events").Int(static_cast<int64_t>(events_.load()))
      .Key("samples").Int(static_cast<int64_t>(samples_.load()))
      .Key("deadletters").Int(static_cast<int64_t>(deadletters_.load()))
      .Key("checkpoints").Int(static_cast<int64_t>(checkpoints_.load()))
      .Key("last_checkpoint_ms").Int(last_checkpoint_ms_)
      .Key("error").String(error_.ok() ? "" : error_.ToString())
      .Key("partitions").BeginArray();
  for (const auto& [partition, join] : partitions_) {
    const int32_t p = partition;  // captured below (see ApplyBackpressure)
    auto paused = paused_.find(p);
    auto lag = [&](const std::string& topic) {
      auto it = lag_.find({topic, p});
      return it == lag_.end() ? int64_t{-1} : it->second;
    };
    w.BeginObject().Key("partition").Int(p)
        .Key("watermark_ms").Int(join->watermark() == PartitionJoin::kNoTime ? -1 : join->watermark())
        .Key("max_event_time_ms").Int(join->max_event_time() == PartitionJoin::kNoTime ? -1 : join->max_event_time())
        .Key("open_impressions").Int(static_cast<int64_t>(join->open_records()))
        .Key("closed_impressions").Int(static_cast<int64_t>(join->closed_records()))
        .Key("orphan_labels").Int(static_cast<int64_t>(join->orphan_labels()))
        .Key("impressions_offset").Int(join->next_offset(true))
        .Key("labels_offset").Int(join->next_offset(false))
        .Key("impressions_lag").Int(lag(options_.config.kafka().impressions_topic()))
        .Key("labels_lag").Int(lag(options_.config.kafka().labels_topic()))
        .Key("paused_impressions").Bool(paused != paused_.end() && paused->second.first)
        .Key("paused_labels").Bool(paused != paused_.end() && paused->second.second)
        .EndObject();
  }
  w.EndArray().EndObject();
  return w.str();
}

}  // namespace freshet::ingest
