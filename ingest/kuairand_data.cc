// LoadKuaiRand; see kuairand_data.h.
#include "ingest/kuairand_data.h"

#include <limits>
#include <utility>
#include <vector>

#include "ingest/kuairand_replay.h"
#include "ingest/task_rules.h"

namespace freshet::ingest {

StatusOr<EvalData> LoadKuaiRand(const KuaiRandDataOptions& o, const FreshetConfig& config) {
  if (o.keep_user_modulo < 1) return InvalidArgumentError("kuairand keep_user_modulo must be >= 1");
  if (o.embedding_dim < 1) return InvalidArgumentError("kuairand embedding_dim must be >= 1");
  ASSIGN_OR_RETURN(TaskRules rules, TaskRules::Create(config));
  KuaiRandReplay::Options ro;
  ro.log_path = o.log_path;
  ASSIGN_OR_RETURN(std::unique_ptr<KuaiRandReplay> replay, KuaiRandReplay::Open(ro));
  const int modulo = o.keep_user_modulo;
  EvalCollector sink([modulo](const Impression& imp) { return modulo == 1 || (imp.user_id() - 1) % modulo == 0; });
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
  for (Sample& s : sink.TakeLabelled(rules, /*honour_windows=*/false))
    (s.event_time_ms() < o.test_from_ms ? data.train : data.test).push_back(std::move(s));
  data.time_ordered = true;
  const auto& st = replay->stats();
  data.description = "kuairand: " + std::to_string(st.rows) + " log rows (" + std::to_string(st.malformed_rows) +
                     " malformed), users kept 1/" + std::to_string(o.keep_user_modulo) + ", " +
                     std::to_string(data.train.size()) + " train (time < " + std::to_string(o.test_from_ms) +
                     ") / " + std::to_string(data.test.size()) + " test";
  return data;
}

}  // namespace freshet::ingest
