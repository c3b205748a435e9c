// The JSON body of POST /v1/score and how it becomes a learner Batch.
//
//   {"user_id": 17,
//    "sparse": {"1": [17], "5": [3, 9]},          user features: slot → ids
//    "dense":  {"2": [0.5]},                       user features: slot → values
//    "items": [{"item_id": 42, "sparse": {"2": [42, 7]}, "dense": {"1": [0.1, 0.3]}}, ...],
//    "time_ms": 1700000000000,                     optional: the request's time
//    "history": [{"item_id": 9, "time_ms": 1699999990000, "action_bits": 1, "play_ms": 0}, ...]}
//                                                  optional: the user's engaged behaviours,
//                                                  oldest first (store::Behaviour's fields)
//
// time_ms (default: the replica's clock) is each row's event time: TWIN ignores
// behaviours at or after it. A given history is attached once and shared by every
// row (Batch.behaviour_history) with the learner's own AttachHistories
// (learner/batch.h), so TWIN's GSU gathers it once per request; without one, a
// replica with a behaviour cache reads the user's (serving_replica.h), also once.
// Slots are the numbers of ModelConfig.sparse_slots / dense_slots (as in Sample).
// Ids are unsigned 64-bit integers (JSON numbers or decimal strings, exact: never
// rounded through a double). Each item is scored with the user's features plus its
// own, one Batch row per item, built by the learner's BatchBuilder from a Sample,
// so serving and training see features the same way. Bad input (malformed JSON,
// an unknown slot, a dense slot of the wrong width, a slot given for both user and
// item, too many items) is InvalidArgument naming the field.
//
// Thread-safety: free functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "learner/batch.h"
#include "store/behaviour_cache.h"
#include "schemas/model_config.pb.h"

namespace freshet::publisher {

struct ScoreFeatures {
  std::map<uint32_t, std::vector<uint64_t>> sparse;
  std::map<uint32_t, std::vector<float>> dense;
};

struct ScoreItem {
  uint64_t item_id = 0;
  ScoreFeatures features;
};

struct ScoreRequest {
  uint64_t user_id = 0;
  ScoreFeatures user;
  std::vector<ScoreItem> items;
  int64_t time_ms = 0;  // 0: not given (the replica uses its clock)
  std::optional<std::vector<store::Behaviour>> history;  // nullopt: not given
};

StatusOr<ScoreRequest> ParseScoreRequest(std::string_view json, int max_items);
// The request as JSON (the inverse of ParseScoreRequest; tests and the load client).
std::string ScoreRequestToJson(const ScoreRequest& request);

// One row per item, each with event time request.time_ms and, when the request
// carries a history, that history attached. REQUIRES: !request.items.empty().
StatusOr<Batch> BuildScoreBatch(const ScoreRequest& request, const ModelConfig& model, int num_tasks);

}  // namespace freshet::publisher
