// TwinFeed: behaviour-cache reads before and appends after each training step (see
// twin_feed.h).
#include "learner/twin_feed.h"

#include <algorithm>

namespace freshet::learner {

void TwinFeed::ConfigureStore(const ModelConfig& model, store::KvStore::Options* options) {
  if (model.twin().enabled() && model.twin().max_len() >= 1) store::BehaviourCache::Configure(options, model.twin().max_len());
}

StatusOr<std::unique_ptr<TwinFeed>> TwinFeed::Create(const ModelConfig& model, const std::vector<TaskConfig>& tasks,
                                                     store::KvStore* store, MetricsRegistry* metrics) {
  const TwinConfig& t = model.twin();
  if (!t.enabled()) return std::unique_ptr<TwinFeed>();
  if (store == nullptr)
    return InvalidArgumentError("learner.model.twin.enabled needs the learner's store (the behaviour cache lives in "
                                "RocksDB); give the learner a store or disable TWIN");
  if (t.max_len() < 1) return InvalidArgumentError("learner.model.twin.max_len must be >= 1");
  const std::vector<std::string> families = store->families();
  if (std::find(families.begin(), families.end(), store::kBehaviourFamily) == families.end())
    return InvalidArgumentError("learner.model.twin.enabled but the learner's store " + store->path() +
                                " has no behaviour-cache family; open it with OnlineLearner::ConfigureStore");
  std::unique_ptr<TwinFeed> feed(new TwinFeed(store, t.max_len()));
  store::WriteBatch drop;
  feed->cache_.QueueDropStaged(&drop);
  if (Status s = store->Write(drop); !s.ok())
    return s.Annotate("dropping the TWIN appends staged after the last checkpoint in " + store->path());
  for (size_t i = 0; i < tasks.size(); ++i) {
    feed->binary_task_.push_back(tasks[i].type() != TASK_REGRESSION);
    if (!t.play_time_task().empty() && tasks[i].name() == t.play_time_task()) {
      if (tasks[i].type() != TASK_REGRESSION)
        return InvalidArgumentError("learner.model.twin.play_time_task \"" + t.play_time_task() +
                                    "\" is a binary task; name a regression task (play time in seconds)");
      feed->play_time_task_ = static_cast<int>(i);
    }
  }
  if (!t.play_time_task().empty() && feed->play_time_task_ < 0)
    return InvalidArgumentError("learner.model.twin.play_time_task \"" + t.play_time_task() +
                                "\" is not one of the tasks");
  MetricsRegistry* m = metrics != nullptr ? metrics : &feed->own_metrics_;
  feed->engagements_ = m->GetCounter("freshet_learner_twin_engagements_total",
                                     "Engaged behaviours appended to the TWIN behaviour cache");
  feed->history_ = m->GetGauge("freshet_learner_twin_history_behaviours",
                               "Mean cached history length of the last batch's users");
  if (metrics != nullptr) {
    Gauge* users = m->GetGauge("freshet_learner_twin_users", "Users with a cached history (RocksDB estimate)");
    metrics->AddCollector([store, users] { users->Set(static_cast<double>(store->EstimateKeys(store::kBehaviourFamily))); });
  }
  return feed;
}

Status TwinFeed::Attach(Batch* batch) {
  RETURN_IF_ERROR(AttachBehaviours(cache_, batch));
  history_->Set(batch->size > 0 ? static_cast<double>(batch->behaviours.size()) / batch->size : 0.0);
  return Status::Ok();
}

Status TwinFeed::Record(const Batch& batch) {
  store::WriteBatch wb;
  QueueEngagements(batch, binary_task_, play_time_task_, cache_, &wb);
  if (wb.empty()) return Status::Ok();
  int64_t behaviours = 0;  // each operand: 1 format byte + fixed-width records
  for (const auto& op : wb.ops()) behaviours += static_cast<int64_t>((op.value.size() - 1) / store::kBehaviourRecordBytes);
  RETURN_IF_ERROR(store_->Write(wb));
  appended_ += behaviours;
  engagements_->Inc(static_cast<double>(behaviours));
  return Status::Ok();
}

}  // namespace freshet::learner
