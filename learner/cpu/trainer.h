// Trainer: the training step of the CPU reference backend, read top to bottom:
//
//   1. forward   embeddings (admitting new ids) → experts/gates → towers → logits (B, T)
//   2. predict   σ(logits) / logits: the per-task predictions BEFORE this batch's
//                update, i.e. what prequential (test-then-train) scoring needs
//   3. loss      masked per-task BCE / MSE, PLE eq. 9, ω-weighted (loss.h)
//   4. backward  dL/dlogits → every dense Param's grad + embedding row grads
//   5. step      Adam/Adagrad on dense params, sparse Adagrad/FTRL on touched rows
//
// Predict() is the inference-mode forward serving uses (no admission, BN running
// stats). SaveState/LoadState serialise parameters, BN running stats, optimizer
// state and the embedding table (rows, their optimizer state, admission sketch,
// eviction log) so that training N steps, saving, loading into a fresh Trainer and
// training M more is bit-identical to training N+M straight.
//
//   auto trainer = Trainer<float>::Create(config.learner(), tasks);
//   StatusOr<StepResult<float>> r = (*trainer)->Train(batch, clock->NowMs());
//
// Thread-safety: none. A Trainer is owned by the learner's training thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "learner/batch.h"
#include "learner/cpu/model.h"
#include "learner/cpu/optimizer.h"
#include "schemas/config.pb.h"

namespace freshet::cpu {

template <typename T>
struct StepResult {
  Mat<T> predictions;          // (B, T) before the update
  T loss = 0;                  // Σ_k ω_k L_k
  std::vector<T> task_loss;    // L_k
  std::vector<int> observed;   // samples with mask bit set, per task
  double twin_consistency = -1;  // GSU/ESU top-k overlap when measured this step, else −1
};

template <typename T>
class Trainer {
 public:
  // InvalidArgument (naming the field) for a bad model config or task list.
  // metrics (may be null) receives freshet_learner_twin_consistency and the TWIN
  // projection cache's metrics when the model has TWIN.
  static StatusOr<std::unique_ptr<Trainer>> Create(const LearnerConfig& config,
                                                   const std::vector<TaskConfig>& tasks,
                                                   MetricsRegistry* metrics = nullptr);

  // Rewrites the (B, T) loss weights from this step's predictions (B, T) before the
  // loss: the prediction-dependent importance weights of label policies
  // (learner/origin_weights.h). The predictions are constants (stop-gradient).
  using WeightAdjuster = std::function<void(const Mat<T>& predictions, Mat<T>* weights)>;

  // One step on `batch` (steps 1–5 above). now_ms stamps embedding updates (TTL).
  // InvalidArgument when the batch does not fit the model (slots, widths, tasks);
  // Internal when the loss or a gradient is not finite: no parameter or optimizer
  // state is updated then (ids seen in the forward may still have been admitted),
  // and the message names the offending tasks / parameter.
  // REQUIRES: batch.size >= 2 when the model has BatchNorm.
  StatusOr<StepResult<T>> Train(const Batch& batch, int64_t now_ms, const WeightAdjuster& adjust_weights = {});

  // Inference-mode predictions (B, T): no admission, BN running stats, no update.
  StatusOr<Mat<T>> Predict(const Batch& batch);

  // TWIN (ModelConfig.twin): the trainer stamps projections with steps() as the
  // model version and measures GSU/ESU consistency every consistency_interval_steps.
  // State save/restore covers the module's parameters and the projection cache's
  // servable entries (those within refresh_after_versions of steps()), so a resumed
  // run serves exactly the cached projections a straight run would; entries stamped
  // by weights a restore discarded are never kept.
  //
  // All learner state as bytes (see the header comment).
  std::string SaveState() const;
  // REQUIRES: a Trainer created from the same config. DataLoss when truncated or
  // corrupt, InvalidArgument when saved by another model layout.
  [[nodiscard]] Status LoadState(std::string_view bytes);

  Model<T>& model() { return *model_; }
  const Model<T>& model() const { return *model_; }
  int64_t steps() const { return dense_opt_->steps(); }

 private:
  Trainer() = default;
  Status CheckBatch(const Batch& batch) const;

  LearnerConfig config_;
  std::unique_ptr<Model<T>> model_;
  std::unique_ptr<DenseOptimizer<T>> dense_opt_;
  std::unique_ptr<SparseOptimizer<T>> sparse_opt_;
  Gauge* twin_consistency_ = nullptr;  // null unless TWIN and a registry
};

}  // namespace freshet::cpu
