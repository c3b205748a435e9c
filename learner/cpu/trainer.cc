// The training step and learner state save/restore.
#include "learner/cpu/trainer.h"

#include <cmath>

#include "learner/cpu/model_builder.h"

namespace freshet::cpu {
namespace {
constexpr uint64_t kStateMagic = 0x314E524C48535246ull;  // "FRSHLRN1"
}  // namespace

template <typename T>
StatusOr<std::unique_ptr<Trainer<T>>> Trainer<T>::Create(const LearnerConfig& config,
                                                         const std::vector<TaskConfig>& tasks,
                                                         MetricsRegistry* metrics) {
  ASSIGN_OR_RETURN(std::vector<TaskSpec> specs, TaskSpecsFromConfig(tasks));
  std::unique_ptr<Trainer> trainer(new Trainer());
  trainer->config_ = config;
  ASSIGN_OR_RETURN(trainer->model_, BuildModel<T>(config, specs, metrics));
  if (trainer->model_->twin() != nullptr && metrics != nullptr)
    trainer->twin_consistency_ = metrics->GetGauge("freshet_learner_twin_consistency",
                                                   "Share of ESU's top-k over the whole history that GSU selected");
  if (trainer->twin_consistency_ != nullptr) trainer->twin_consistency_->Set(-1);  // -1: not measured yet
  trainer->dense_opt_ = std::make_unique<DenseOptimizer<T>>(config.dense_optimizer(), trainer->model_->params());
  trainer->sparse_opt_ = std::make_unique<SparseOptimizer<T>>(config.sparse_optimizer());
  return trainer;
}

template <typename T>
Status Trainer<T>::CheckBatch(const Batch& batch) const {
  const ModelConfig& mc = config_.model();
  if (static_cast<int>(batch.sparse.size()) != mc.sparse_slots_size())
    return InvalidArgumentError("batch has " + std::to_string(batch.sparse.size()) + " sparse slots, model " +
                                std::to_string(mc.sparse_slots_size()));
  for (const auto& s : batch.sparse)
    if (s.offsets.size() != static_cast<size_t>(batch.size) + 1 || s.offsets.back() != static_cast<int32_t>(s.ids.size()))
      return InvalidArgumentError("batch sparse offsets do not describe its ids");
  const int tasks = model_->num_tasks();
  if (batch.labels.rows() != batch.size || batch.labels.cols() != tasks || batch.masks.rows() != batch.size ||
      batch.masks.cols() != tasks || batch.weights.rows() != batch.size || batch.weights.cols() != tasks)
    return InvalidArgumentError("batch labels/masks/weights are not (B, " + std::to_string(tasks) + ")");
  int dense = 0;
  for (const auto& d : mc.dense_slots()) dense += d.width();
  if (batch.dense.rows() != batch.size || batch.dense.cols() != dense)
    return InvalidArgumentError("batch dense is not (B, " + std::to_string(dense) + ")");
  if (!batch.behaviour_offsets.empty() && !BehavioursDescribed(batch))
    return InvalidArgumentError("batch behaviour_offsets / behaviour_history do not describe its behaviours");
  if (!batch.event_times_ms.empty() && static_cast<int>(batch.event_times_ms.size()) != batch.size)
    return InvalidArgumentError("batch event_times_ms is not (B)");
  return Status::Ok();
}

template <typename T>
StatusOr<StepResult<T>> Trainer<T>::Train(const Batch& batch, int64_t now_ms, const WeightAdjuster& adjust_weights) {
  RETURN_IF_ERROR(CheckBatch(batch));
  StepResult<T> result;
  // 1. forward (training mode: ids are admitted, BN uses batch statistics).
  model_->set_version(steps());
  model_->Forward(batch, /*training=*/true, now_ms);
  const TwinConfig& twin = config_.model().twin();
  if (model_->twin() != nullptr && twin.consistency_samples() > 0 && steps() % twin.consistency_interval_steps() == 0) {
    result.twin_consistency = model_->TwinConsistency(twin.consistency_samples());
    if (twin_consistency_ != nullptr) twin_consistency_->Set(result.twin_consistency);
  }
  // 2. predictions before the update (prequential scoring).
  PredictionsFromLogits(model_->tasks(), model_->logits(), &result.predictions);
  // 3. masked multi-task loss and dL/dlogits.
  Mat<T> dlogits;
  const Mat<T> labels = batch.labels.cast<T>(), masks = batch.masks.cast<T>();
  Mat<T> weights = batch.weights.cast<T>();
  if (adjust_weights) adjust_weights(result.predictions, &weights);
  LossOutput<T> loss = MaskedMultiTaskLoss(model_->tasks(), model_->logits(), labels, masks, weights, &dlogits);
  if (!std::isfinite(static_cast<double>(loss.total))) {
    std::string tasks;
    for (size_t k = 0; k < loss.per_task.size(); ++k)
      if (!std::isfinite(static_cast<double>(loss.per_task[k]))) tasks += (tasks.empty() ? "" : ",") + model_->tasks()[k].name;
    return InternalError("non-finite training loss at step " + std::to_string(steps()) + " in tasks [" + tasks +
                         "]; no update applied");
  }
  result.loss = loss.total;
  result.task_loss = std::move(loss.per_task);
  result.observed = std::move(loss.observed);
  // 4. backward.
  model_->ZeroGrad();
  model_->Backward(dlogits);
  // Numerical guard: a finite loss can still back-propagate a non-finite gradient
  // (overflow inside a layer); refuse the step rather than poison the optimizer state.
  for (const Param<T>* p : model_->params())
    if (!p->grad.allFinite())
      return InternalError("non-finite gradient of " + p->name + " at step " + std::to_string(steps()) +
                           "; no update applied");
  for (const auto& g : model_->sparse_grads())
    if (!g.grad.allFinite())
      return InternalError("non-finite embedding gradient at step " + std::to_string(steps()) + "; no update applied");
  // 5. optimizer steps.
  dense_opt_->Step();
  sparse_opt_->Step(&model_->embeddings(), model_->sparse_grads());
  return result;
}

template <typename T>
StatusOr<Mat<T>> Trainer<T>::Predict(const Batch& batch) {
  RETURN_IF_ERROR(CheckBatch(batch));
  model_->set_version(steps());  // projections refreshed here are of these weights
  model_->Forward(batch, /*training=*/false, /*now_ms=*/0);
  Mat<T> out;
  PredictionsFromLogits(model_->tasks(), model_->logits(), &out);
  return out;
}

template <typename T>
std::string Trainer<T>::SaveState() const {
  ByteWriter w;
  w.Put(kStateMagic);
  w.Put<uint32_t>(sizeof(T));
  w.Put<uint64_t>(model_->params().size());
  for (const Param<T>* p : model_->params()) {
    w.PutString(p->name);
    w.Put<int64_t>(p->value.rows());
    w.Put<int64_t>(p->value.cols());
    w.PutArray(p->value.data(), p->value.size());
  }
  w.Put<uint64_t>(model_->state_buffers().size());
  for (const RowVec<T>* b : model_->state_buffers()) w.PutArray(b->data(), b->size());
  dense_opt_->Save(&w);
  model_->embeddings().Save(&w);
  if (model_->projection_cache() != nullptr) w.PutString(model_->projection_cache()->SaveServable(steps()));
  return w.Release();
}

template <typename T>
Status Trainer<T>::LoadState(std::string_view bytes) {
  ByteReader r(bytes);
  uint64_t magic = 0;
  uint32_t scalar = 0;
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kStateMagic) return DataLossError("not a learner state (bad magic)");
  RETURN_IF_ERROR(r.Get(&scalar));
  if (scalar != sizeof(T)) return InvalidArgumentError("learner state saved with another scalar type");
  uint64_t count = 0;
  RETURN_IF_ERROR(r.Get(&count));
  if (count != model_->params().size())
    return InvalidArgumentError("learner state has " + std::to_string(count) + " parameters, model " +
                                std::to_string(model_->params().size()));
  for (Param<T>* p : model_->params()) {
    std::string name;
    int64_t rows = 0, cols = 0;
    RETURN_IF_ERROR(r.GetString(&name));
    RETURN_IF_ERROR(r.Get(&rows));
    RETURN_IF_ERROR(r.Get(&cols));
    if (name != p->name || rows != p->value.rows() || cols != p->value.cols())
      return InvalidArgumentError("learner state parameter " + name + " (" + std::to_string(rows) + "x" +
                                  std::to_string(cols) + ") does not match model parameter " + p->name);
    RETURN_IF_ERROR(r.GetArray(p->value.data(), p->value.size()));
  }
  RETURN_IF_ERROR(r.Get(&count));
  if (count != model_->state_buffers().size()) return InvalidArgumentError("learner state: BN buffer count differs");
  for (RowVec<T>* b : model_->state_buffers()) RETURN_IF_ERROR(r.GetArray(b->data(), b->size()));
  RETURN_IF_ERROR(dense_opt_->Load(&r));
  RETURN_IF_ERROR(model_->embeddings().Load(&r));
  if (store::ProjectionCache* cache = model_->projection_cache()) {
    std::string projections;
    RETURN_IF_ERROR(r.GetString(&projections));
    RETURN_IF_ERROR(cache->RestoreServable(projections));
  }
  if (!r.done()) return DataLossError("learner state has trailing bytes");
  return Status::Ok();
}

FRESHET_INSTANTIATE(Trainer)

}  // namespace freshet::cpu
