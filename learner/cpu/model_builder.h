// BuildModel: the ONE place that turns the typed config into a Model. Every family is
// an op list (ops.h):
//
//   SHARED_BOTTOM  = one level, 0 specific + 1 shared expert (the bottom), towers read it
//   SINGLE_TASK    = one level, 1 specific + 0 shared experts per task (own bottom each;
//                    embeddings stay shared)
//   MMOE           = one level, 0 specific + n shared experts, a softmax gate per task
//   OMOE           = MMoE with one softmax gate shared by every task (its ablation)
//   CGC            = one PLE level: m_k specific per task + m_s shared, gate k over [E_k ; E_s]
//   PLE (N levels) = CGC levels chained; below the last level a shared gate over all
//                    experts feeds the next level's shared experts; task k's experts and
//                    gate at level j read task k's level j−1 output (models.md §2, [R]).
//   HOME           = models.md §3.4 reconstruction, every [unconfirmed] choice a switch in
//                    HomeConfig (see BuildHome in model_builder.cc).
//   + TWIN         = any family, when ModelConfig.twin.enabled: the module's output is
//                    appended to x (model.h); its parameters come last in params().
//
// Experts that read the same buffer are one ExpertOp (one GEMM). Experts and gates are
// drawn in turn from one generator seeded by LearnerConfig.seed, so no two start equal.
//
// Thread-safety: stateless functions.
#pragma once

#include <memory>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "learner/cpu/model.h"
#include "schemas/config.pb.h"
#include "schemas/model_config.pb.h"

namespace freshet::cpu {

// TaskConfig → TaskSpec (type, loss weight, HoME group). InvalidArgument names the
// task when home_group is neither "watch" nor "interaction".
StatusOr<std::vector<TaskSpec>> TaskSpecsFromConfig(const std::vector<TaskConfig>& tasks);

// TWIN (model_twin.cc): InvalidArgument naming the field of ModelConfig.twin that is
// wrong (only when enabled); the index in sparse_slots of twin.item_slot, or −1.
Status ValidateTwinConfig(const ModelConfig& model);
int TwinSlotIndex(const ModelConfig& model);

// Validates the config (InvalidArgument naming the field) and builds the model.
// metrics (may be null) receives the TWIN projection cache's metrics.
template <typename T>
StatusOr<std::unique_ptr<Model<T>>> BuildModel(const LearnerConfig& config,
                                               const std::vector<TaskSpec>& tasks,
                                               MetricsRegistry* metrics = nullptr);

}  // namespace freshet::cpu
