// LearnerProbe: metric registration and updates (see learner_probe.h).
#include "learner/learner_probe.h"

namespace freshet::learner {

LearnerProbe::LearnerProbe(MetricsRegistry* r, const std::vector<TaskConfig>& tasks) : registry_(r) {
  samples_ = r->GetCounter("freshet_learner_samples_total", "Samples trained");
  steps_ = r->GetCounter("freshet_learner_steps_total", "Optimizer steps applied");
  freshness_ = FreshnessHistogram(r, "trained");
  checkpoints_ = r->GetCounter("freshet_learner_checkpoints_total", "Learner checkpoints written");
  checkpoint_failures_ = r->GetCounter("freshet_learner_checkpoint_failures_total", "Learner checkpoint writes that failed");
  checkpoint_seconds_ = r->GetHistogram("freshet_learner_checkpoint_seconds", "Time to write one checkpoint",
                                        {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10});
  checkpoint_version_ = r->GetGauge("freshet_learner_checkpoint_version", "Newest learner checkpoint version");
  checkpoint_bytes_ = r->GetGauge("freshet_learner_checkpoint_bytes", "Learner state bytes in the newest checkpoint");
  evicted_ = r->GetCounter("freshet_learner_evicted_rows_total", "Embedding rows evicted by TTL");
  embedding_rows_ = r->GetGauge("freshet_learner_embedding_rows", "Live embedding rows");
  dedup_entries_ = r->GetGauge("freshet_learner_dedup_entries", "sample_ids remembered for dedup");
  for (const TaskConfig& t : tasks) {
    task_names_.push_back(t.name());
    const Labels l = {{"task", t.name()}};
    auc_.push_back(r->GetGauge("freshet_learner_auc", "Windowed prequential AUC", l));
    gauc_.push_back(r->GetGauge("freshet_learner_gauc", "Windowed prequential GAUC (per-user AUC)", l));
    log_loss_.push_back(r->GetGauge("freshet_learner_log_loss", "Windowed prequential log loss", l));
    calibration_.push_back(r->GetGauge("freshet_learner_calibration", "Mean prediction / mean label", l));
  }
  for (const char* reason : {"non_finite_input", "non_finite_loss", "non_finite_gradient", "invalid_batch"})
    r->GetCounter("freshet_learner_skipped_batches_total", "Batches not applied, by reason", {{"reason", reason}});
  for (const char* reason : {"duplicate", "unparseable", "invalid_sample"})
    r->GetCounter("freshet_learner_skipped_samples_total", "Samples not trained, by reason", {{"reason", reason}});
}

void LearnerProbe::SkippedSample(const std::string& reason) {
  registry_->GetCounter("freshet_learner_skipped_samples_total", "Samples not trained, by reason", {{"reason", reason}})
      ->Inc();
}

void LearnerProbe::SkippedBatch(const std::string& reason, const std::vector<int>& tasks) {
  registry_->GetCounter("freshet_learner_skipped_batches_total", "Batches not applied, by reason", {{"reason", reason}})
      ->Inc();
  for (int t : tasks) {
    if (t < 0 || t >= static_cast<int>(task_names_.size())) continue;
    registry_->GetCounter("freshet_learner_non_finite_total", "Skipped non-finite batches per offending task",
                          {{"task", task_names_[t]}})
        ->Inc();
  }
}

void LearnerProbe::Checkpointed(double seconds, uint64_t version, size_t bytes) {
  checkpoints_->Inc();
  checkpoint_seconds_->Observe(seconds);
  checkpoint_version_->Set(static_cast<double>(version));
  checkpoint_bytes_->Set(static_cast<double>(bytes));
}

void LearnerProbe::Sizes(int64_t embedding_rows, int64_t dedup_entries) {
  embedding_rows_->Set(static_cast<double>(embedding_rows));
  dedup_entries_->Set(static_cast<double>(dedup_entries));
}

void LearnerProbe::Quality(const std::vector<TaskMetrics>& metrics) {
  for (size_t t = 0; t < metrics.size() && t < auc_.size(); ++t) {
    auc_[t]->Set(metrics[t].auc);
    gauc_[t]->Set(metrics[t].gauc);
    log_loss_[t]->Set(metrics[t].regression ? metrics[t].mse : metrics[t].log_loss);
    calibration_[t]->Set(metrics[t].calibration);
  }
}

void LearnerProbe::ExpertWarning(const std::string& expert, const std::string& kind, bool on) {
  registry_->GetGauge("freshet_learner_expert_warning", "1 while an expert diagnostic passes its threshold",
                      {{"expert", expert}, {"kind", kind}})
      ->Set(on ? 1 : 0);
  if (on)
    registry_->GetCounter("freshet_learner_expert_warnings_total", "Diagnostics rounds with a warning", {{"kind", kind}})
        ->Inc();
}

void LearnerProbe::Restored(int64_t samples, int64_t steps) {
  samples_->Inc(static_cast<double>(samples));
  steps_->Inc(static_cast<double>(steps));
}

}  // namespace freshet::learner
