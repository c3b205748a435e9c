// IngestProbe; see ingest_probe.h.
#include "ingest/ingest_probe.h"

#include <cctype>

namespace freshet::ingest {

const char* PolicyLabel(LabelPolicy policy) {
  switch (policy) {
    case POLICY_WAIT: return "wait";
    case POLICY_WAIT_CORRECT: return "wait_correct";
    case POLICY_IMMEDIATE: return "immediate";
  }
  return "unknown";
}

std::string KindLabel(LabelKind kind) {
  std::string name = LabelKind_Name(kind);
  if (name.empty()) return "unknown";
  if (name.rfind("LABEL_", 0) == 0) name = name.substr(6);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

int IngestProbe::Index(LabelKind kind) {
  const int k = static_cast<int>(kind);
  return k >= 0 && k < kKinds ? k : 0;
}

IngestProbe::IngestProbe(MetricsRegistry* r, LabelPolicy policy) : registry_(r), policy_(PolicyLabel(policy)) {
  impressions_ = r->GetCounter("freshet_ingest_events_total", "Events consumed, per input topic", {{"topic", "impressions"}});
  labels_ = r->GetCounter("freshet_ingest_events_total", "Events consumed, per input topic", {{"topic", "labels"}});
  samples_ = r->GetCounter("freshet_ingest_samples_total", "Samples produced, per label policy", {{"policy", policy_}});
  for (int o = 0; o < kOrigins; ++o) {
    samples_by_origin_[o] = r->GetCounter("freshet_ingest_samples_by_origin_total", "Samples produced, per origin",
                                          {{"origin", SampleOrigin_Name(static_cast<SampleOrigin>(o))}});
  }
  freshness_ = FreshnessHistogram(r, "joined");
  for (int k = 0; k < kKinds; ++k) {
    const std::string kind = KindLabel(static_cast<LabelKind>(k));
    late_[k] = r->GetCounter("freshet_ingest_late_labels_total", "Labels that arrived after their window", {{"kind", kind}});
    joined_[k] = r->GetCounter("freshet_ingest_joined_labels_total", "Labels joined to their impression", {{"kind", kind}});
    delay_[k] = r->GetHistogram("freshet_ingest_label_delay_seconds", "Label event time minus impression event time",
                                ExponentialBuckets(0.25, 2, 14), {{"kind", kind}});
    orphan_expired_[k] = r->GetCounter("freshet_ingest_orphans_expired_total",
                                       "Labels whose impression never came within orphan_ttl_ms", {{"kind", kind}});
    unused_[k] = r->GetCounter("freshet_ingest_unused_labels_total", "Valid labels of kinds no task uses", {{"kind", kind}});
  }
  duplicate_labels_ = r->GetCounter("freshet_ingest_duplicate_labels_total", "Labels seen before (ignored, idempotent)");
  duplicate_impressions_ = r->GetCounter("freshet_ingest_duplicate_impressions_total",
                                         "Impressions whose request_id was seen before (ignored)");
  forced_closes_ = r->GetCounter("freshet_ingest_forced_closes_total",
                                 "Windows closed early because both state bounds were hit");
  retention_evictions_ = r->GetCounter("freshet_ingest_retention_evictions_total",
                                       "Closed impressions forgotten early to stay within the state bound");
  checkpoint_seconds_ = r->GetHistogram(
      "freshet_ingest_checkpoint_seconds",
      "Per checkpoint: collecting changes, waiting for its samples' delivery, the state write",
      ExponentialBuckets(0.001, 2, 14));
}

IngestProbe::Tally::Tally(IngestProbe* probe) : probe_(probe), freshness_(probe->freshness_) {
  delay_.reserve(kKinds);
  for (Histogram* h : probe->delay_) delay_.emplace_back(h);
}

void IngestProbe::Tally::Sample(SampleOrigin origin, double freshness_s) {
  const int o = static_cast<int>(origin);
  ++by_origin_[o >= 0 && o < kOrigins ? o : 0];
  freshness_.Observe(freshness_s);
  Counted();
}

void IngestProbe::Tally::LabelJoined(LabelKind kind, double delay_s) {
  const int k = Index(kind);
  ++joined_[k];
  delay_[k].Observe(delay_s);
  Counted();
}

void IngestProbe::Tally::Flush() {
  if (pending_ == 0) return;
  pending_ = 0;
  uint64_t samples = 0;
  for (int o = 0; o < kOrigins; ++o) {
    if (by_origin_[o] == 0) continue;
    probe_->samples_by_origin_[o]->Inc(static_cast<double>(by_origin_[o]));
    samples += by_origin_[o];
    by_origin_[o] = 0;
  }
  if (samples > 0) probe_->samples_->Inc(static_cast<double>(samples));
  freshness_.Flush();
  for (int k = 0; k < kKinds; ++k) {
    if (joined_[k] == 0) continue;
    probe_->joined_[k]->Inc(static_cast<double>(joined_[k]));
    joined_[k] = 0;
    delay_[k].Flush();
  }
}

void IngestProbe::Events(uint64_t impressions, uint64_t labels) {
  if (impressions > 0) impressions_->Inc(static_cast<double>(impressions));
  if (labels > 0) labels_->Inc(static_cast<double>(labels));
}

void IngestProbe::DeadLetter(const std::string& reason) {
  registry_->GetCounter("freshet_ingest_deadletter_total", "Events sent to the dead-letter topic", {{"reason", reason}})->Inc();
}

void IngestProbe::Backpressure(const char* reason) {
  registry_->GetCounter("freshet_ingest_backpressure_total", "Times a state bound paused an input", {{"reason", reason}})
      ->Inc();
}

void IngestProbe::Checkpoint(double seconds) { checkpoint_seconds_->Observe(seconds); }

void IngestProbe::ConsumerLag(const std::string& topic, int32_t partition, int64_t messages) {
  registry_->GetGauge("freshet_ingest_consumer_lag_messages",
                      "Input messages not yet consumed: cached high watermark minus position",
                      {{"topic", topic}, {"partition", std::to_string(partition)}})
      ->Set(static_cast<double>(messages));
}

}  // namespace freshet::ingest
