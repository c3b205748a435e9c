// LoadKuaiRand; see kuairand_data.h.
#include "ingest/kuairand_data.h"

#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ingest/kuairand_replay.h"
#include "ingest/task_rules.h"

namespace freshet::ingest {
namespace {

// Collects the replayed events: one Sample per impression (features, ids, time),
// and the (kind, value) of every label that refers to it.
class CollectingSink : public EventSink {
 public:
  explicit CollectingSink(int keep_user_modulo) : modulo_(keep_user_modulo) {}
  Status OnImpression(const Impression& imp) override {
    if (modulo_ > 1 && (imp.user_id() - 1) % modulo_ != 0) return Status::Ok();
    Sample s;
    s.set_sample_id(imp.request_id());
    s.set_request_id(imp.request_id());
    s.set_user_id(imp.user_id());
    s.set_item_id(imp.item_id());
    s.set_event_time_ms(imp.event_time_ms());
    *s.mutable_sparse() = imp.sparse();
    *s.mutable_dense() = imp.dense();
    index_[imp.request_id()] = samples_.size();
    samples_.push_back(std::move(s));
    labels_.emplace_back();
    return Status::Ok();
  }
  Status OnLabel(const Label& label) override {
    auto it = index_.find(label.request_id());
    if (it != index_.end()) labels_[it->second].emplace_back(label.kind(), label.value());
    return Status::Ok();
  }
  std::vector<Sample> samples_;
  std::vector<std::vector<std::pair<LabelKind, float>>> labels_;

 private:
  int modulo_;
  std::unordered_map<std::string, size_t> index_;
};

// Labels and masks of `s` from its labels under `rules` (the joiner's window-closed
// rule without the window: binary tasks are observed, regression tasks once a label
// arrives; a task's mask also needs its requires_positive task to be positive).
void Label(const TaskRules& rules, const std::vector<std::pair<LabelKind, float>>& labels, Sample* s) {
  const int n = rules.size();
  std::vector<float> value(n, 0.0f);
  std::vector<bool> observed(n, false), positive(n, false);
  for (int t = 0; t < n; ++t) observed[t] = !rules.task(t).regression;
  for (const auto& [kind, v] : labels) {
    for (int t : rules.TasksForKind(kind)) {
      const TaskRule& r = rules.task(t);
      if (r.regression) {
        if (!observed[t]) value[t] = v * r.scale, observed[t] = true;
      } else if (v >= r.threshold) {
        value[t] = 1.0f;
        positive[t] = true;
      }
    }
  }
  for (int t = 0; t < n; ++t) {
    const int req = rules.task(t).requires_positive;
    const bool mask = observed[t] && (req < 0 || positive[req]);
    s->add_label(mask ? value[t] : 0.0f);
    s->add_mask(mask);
  }
}

}  // namespace

StatusOr<EvalData> LoadKuaiRand(const KuaiRandDataOptions& o, const FreshetConfig& config) {
  if (o.keep_user_modulo < 1) return InvalidArgumentError("kuairand keep_user_modulo must be >= 1");
  if (o.embedding_dim < 1) return InvalidArgumentError("kuairand embedding_dim must be >= 1");
  ASSIGN_OR_RETURN(TaskRules rules, TaskRules::Create(config));
  KuaiRandReplay::Options ro;
  ro.log_path = o.log_path;
  ASSIGN_OR_RETURN(std::unique_ptr<KuaiRandReplay> replay, KuaiRandReplay::Open(ro));
  CollectingSink sink(o.keep_user_modulo);
  RETURN_IF_ERROR(replay->AdvanceTo(std::numeric_limits<int64_t>::max(), &sink));

  EvalData data;
  data.name = "kuairand";
  data.tasks.assign(config.tasks().begin(), config.tasks().end());
  for (int s = 0; s < KuaiRandReplay::kSparseSlots; ++s) {
    auto* slot = data.input.add_sparse_slots();
    slot->set_slot(s);
    slot->set_dim(o.embedding_dim);
    if (s == 33) slot->set_pooling(POOL_MEAN);  // tags: one to a few ids
  }
  for (int d = 0; d < KuaiRandReplay::kDenseSlots; ++d) data.input.add_dense_slots()->set_slot(d);
  const uint32_t layout = rules.layout();
  for (size_t i = 0; i < sink.samples_.size(); ++i) {
    Sample& s = sink.samples_[i];
    Label(rules, sink.labels_[i], &s);
    s.set_origin(ORIGIN_WINDOW_CLOSED);
    s.set_task_layout(layout);
    (s.event_time_ms() < o.test_from_ms ? data.train : data.test).push_back(std::move(s));
  }
  data.time_ordered = true;
  const auto& st = replay->stats();
  data.description = "kuairand: " + std::to_string(st.rows) + " log rows (" + std::to_string(st.malformed_rows) +
                     " malformed), users kept 1/" + std::to_string(o.keep_user_modulo) + ", " +
                     std::to_string(data.train.size()) + " train (time < " + std::to_string(o.test_from_ms) +
                     ") / " + std::to_string(data.test.size()) + " test";
  return data;
}

}  // namespace freshet::ingest
