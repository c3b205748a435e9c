// POST /v1/score bodies: JSON ⇄ ScoreRequest, and ScoreRequest → Batch.
#include "publisher/score_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "common/json.h"
#include "schemas/sample.pb.h"

namespace freshet::publisher {
namespace {

namespace pt = boost::property_tree;

// property_tree keeps every JSON scalar as its literal text, which is what lets ids
// stay exact (no detour through double).
template <typename I>
StatusOr<I> ParseInt(const std::string& text, const std::string& field, const char* expected) {
  I v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty())
    return InvalidArgumentError(field + " = \"" + text + "\": expected " + expected);
  return v;
}

StatusOr<uint64_t> ParseU64(const std::string& text, const std::string& field) {
  return ParseInt<uint64_t>(text, field, "an unsigned 64-bit integer");
}

StatusOr<float> ParseFloat(const std::string& text, const std::string& field) {
  float v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty() || !std::isfinite(v))
    return InvalidArgumentError(field + " = \"" + text + "\": expected a finite number");
  return v;
}

bool IsArrayOrEmpty(const pt::ptree& node) {
  for (const auto& child : node)
    if (!child.first.empty()) return false;
  return node.empty() ? node.data().empty() : true;
}

bool IsObjectOrEmpty(const pt::ptree& node) {
  for (const auto& child : node)
    if (child.first.empty()) return false;
  return node.empty() ? node.data().empty() : true;
}

template <typename V, typename Parse>
Status ParseSlots(const pt::ptree& node, const std::string& field, std::map<uint32_t, std::vector<V>>* out,
                  Parse parse) {
  if (!IsObjectOrEmpty(node)) return InvalidArgumentError(field + " must be an object {\"slot\": [values]}");
  for (const auto& [slot_text, list] : node) {
    ASSIGN_OR_RETURN(uint64_t slot, ParseU64(slot_text, field + " key"));
    if (slot > UINT32_MAX) return InvalidArgumentError(field + " key " + slot_text + " is not a slot number");
    const std::string slot_field = field + "." + slot_text;
    if (!IsArrayOrEmpty(list)) return InvalidArgumentError(slot_field + " must be an array");
    std::vector<V>& values = (*out)[static_cast<uint32_t>(slot)];
    for (const auto& [unused, value] : list) {
      if (!value.empty()) return InvalidArgumentError(slot_field + " must hold numbers, not arrays or objects");
      ASSIGN_OR_RETURN(V v, parse(value.data(), slot_field));
      values.push_back(v);
    }
  }
  return Status::Ok();
}

// Reads "sparse" and "dense" of a user or item object; other keys must be in `allowed`.
Status ParseFeatures(const pt::ptree& node, const std::string& prefix, const std::set<std::string>& allowed,
                     ScoreFeatures* out) {
  for (const auto& [key, value] : node) {
    const std::string field = prefix.empty() ? key : prefix + "." + key;
    if (key == "sparse") {
      RETURN_IF_ERROR(ParseSlots(value, field, &out->sparse, ParseU64));
    } else if (key == "dense") {
      RETURN_IF_ERROR(ParseSlots(value, field, &out->dense, ParseFloat));
    } else if (!allowed.count(key)) {
      return InvalidArgumentError("unknown field " + field + " (known: user_id, sparse, dense, time_ms, history, "
                                  "items[].item_id, items[].sparse, items[].dense)");
    }
  }
  return Status::Ok();
}

// "history": [{"item_id", "time_ms", "action_bits", "play_ms"}, ...], oldest first.
StatusOr<std::vector<store::Behaviour>> ParseHistory(const pt::ptree& node) {
  if (!IsArrayOrEmpty(node)) return InvalidArgumentError("history must be an array of behaviour objects");
  std::vector<store::Behaviour> out;
  for (const auto& [unused, b] : node) {
    const std::string prefix = "history[" + std::to_string(out.size()) + "]";
    if (!IsObjectOrEmpty(b) || b.empty())
      return InvalidArgumentError(prefix + " must be an object {item_id, time_ms, action_bits, play_ms}");
    store::Behaviour behaviour;
    for (const auto& [key, value] : b) {
      const std::string field = prefix + "." + key;
      if (!value.empty()) return InvalidArgumentError(field + " must be a number");
      if (key == "item_id") {
        ASSIGN_OR_RETURN(behaviour.item_id, ParseU64(value.data(), field));
      } else if (key == "time_ms") {
        ASSIGN_OR_RETURN(behaviour.time_ms, ParseInt<int64_t>(value.data(), field, "a signed 64-bit integer"));
      } else if (key == "action_bits") {
        ASSIGN_OR_RETURN(behaviour.actions, ParseInt<uint32_t>(value.data(), field, "an unsigned 32-bit integer"));
      } else if (key == "play_ms") {
        ASSIGN_OR_RETURN(behaviour.play_ms, ParseInt<uint32_t>(value.data(), field, "an unsigned 32-bit integer"));
      } else {
        return InvalidArgumentError("unknown field " + field + " (known: item_id, time_ms, action_bits, play_ms)");
      }
    }
    out.push_back(behaviour);
  }
  return out;
}

void WriteSlots(JsonWriter* w, const ScoreFeatures& f) {
  w->Key("sparse").BeginObject();
  for (const auto& [slot, ids] : f.sparse) {
    w->Key(std::to_string(slot)).BeginArray();
    for (uint64_t id : ids) w->Raw(std::to_string(id));
    w->EndArray();
  }
  w->EndObject().Key("dense").BeginObject();
  for (const auto& [slot, values] : f.dense) {
    w->Key(std::to_string(slot)).BeginArray();
    for (float v : values) w->Double(v);
    w->EndArray();
  }
  w->EndObject();
}

}  // namespace

StatusOr<ScoreRequest> ParseScoreRequest(std::string_view json, int max_items) {
  pt::ptree root;
  try {
    std::istringstream in{std::string(json)};
    pt::read_json(in, root);
  } catch (const pt::json_parser_error& e) {
    return InvalidArgumentError("score request is not valid JSON: " + e.message() + " at line " +
                                std::to_string(e.line()));
  }
  ScoreRequest req;
  if (auto user = root.get_optional<std::string>("user_id")) {
    ASSIGN_OR_RETURN(req.user_id, ParseU64(*user, "user_id"));
  }
  if (auto time = root.get_optional<std::string>("time_ms")) {
    ASSIGN_OR_RETURN(req.time_ms, ParseInt<int64_t>(*time, "time_ms", "a signed 64-bit integer (ms since the epoch)"));
  }
  if (auto history = root.get_child_optional("history")) {
    ASSIGN_OR_RETURN(req.history, ParseHistory(*history));
  }
  RETURN_IF_ERROR(ParseFeatures(root, "", {"user_id", "items", "time_ms", "history"}, &req.user));
  auto items = root.get_child_optional("items");
  if (!items || items->empty()) return InvalidArgumentError("items must list at least one candidate item");
  if (!IsArrayOrEmpty(*items)) return InvalidArgumentError("items must be an array of objects");
  if (static_cast<int64_t>(items->size()) > max_items)
    return InvalidArgumentError("items has " + std::to_string(items->size()) + " candidates, more than " +
                                std::to_string(max_items) + " (serving.max_score_items)");
  int index = 0;
  for (const auto& [unused, node] : *items) {
    const std::string prefix = "items[" + std::to_string(index++) + "]";
    if (!IsObjectOrEmpty(node)) return InvalidArgumentError(prefix + " must be an object");
    ScoreItem item;
    if (auto id = node.get_optional<std::string>("item_id")) {
      ASSIGN_OR_RETURN(item.item_id, ParseU64(*id, prefix + ".item_id"));
    }
    RETURN_IF_ERROR(ParseFeatures(node, prefix, {"item_id"}, &item.features));
    req.items.push_back(std::move(item));
  }
  return req;
}

std::string ScoreRequestToJson(const ScoreRequest& request) {
  JsonWriter w;
  w.BeginObject().Key("user_id").Raw(std::to_string(request.user_id));
  WriteSlots(&w, request.user);
  w.Key("items").BeginArray();
  for (const ScoreItem& item : request.items) {
    w.BeginObject().Key("item_id").Raw(std::to_string(item.item_id));
    WriteSlots(&w, item.features);
    w.EndObject();
  }
  w.EndArray();
  if (request.time_ms != 0) w.Key("time_ms").Int(request.time_ms);
  if (request.history) {
    w.Key("history").BeginArray();
    for (const store::Behaviour& b : *request.history) {
      w.BeginObject().Key("item_id").Raw(std::to_string(b.item_id)).Key("time_ms").Int(b.time_ms);
      w.Key("action_bits").Int(b.actions).Key("play_ms").Int(b.play_ms).EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return w.str();
}

StatusOr<Batch> BuildScoreBatch(const ScoreRequest& request, const ModelConfig& model, int num_tasks) {
  std::map<uint32_t, int> dense_width;
  std::set<uint32_t> sparse_slots;
  std::string known_sparse, known_dense;
  for (const SparseSlotConfig& s : model.sparse_slots()) {
    sparse_slots.insert(s.slot());
    known_sparse += (known_sparse.empty() ? "" : ",") + std::to_string(s.slot());
  }
  for (const DenseSlotConfig& d : model.dense_slots()) {
    dense_width[d.slot()] = d.width();
    known_dense += (known_dense.empty() ? "" : ",") + std::to_string(d.slot());
  }
  auto check = [&](const ScoreFeatures& f, const std::string& who) -> Status {
    for (const auto& [slot, ids] : f.sparse)
      if (!sparse_slots.count(slot))
        return InvalidArgumentError(who + ".sparse." + std::to_string(slot) + ": the model has no such sparse slot (" +
                                    "slots: " + known_sparse + ")");
    for (const auto& [slot, values] : f.dense) {
      auto it = dense_width.find(slot);
      if (it == dense_width.end())
        return InvalidArgumentError(who + ".dense." + std::to_string(slot) + ": the model has no such dense slot (" +
                                    "slots: " + known_dense + ")");
      if (static_cast<int>(values.size()) != it->second)
        return InvalidArgumentError(who + ".dense." + std::to_string(slot) + " has " + std::to_string(values.size()) +
                                    " values, the model's slot has width " + std::to_string(it->second));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check(request.user, "user"));
  if (request.history && !model.twin().enabled())
    return InvalidArgumentError("history given but the served model has no TWIN module (learner.model.twin.enabled)");
  BatchBuilder builder(model, num_tasks);
  for (size_t i = 0; i < request.items.size(); ++i) {
    const ScoreFeatures& f = request.items[i].features;
    const std::string who = "items[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(check(f, who));
    Sample s;
    s.set_user_id(request.user_id);
    s.set_item_id(request.items[i].item_id);
    s.set_event_time_ms(request.time_ms);
    for (const ScoreFeatures* part : {&request.user, &f}) {
      for (const auto& [slot, ids] : part->sparse) {
        if (part == &f && request.user.sparse.count(slot))
          return InvalidArgumentError(who + ".sparse." + std::to_string(slot) + " is also a user feature");
        SparseFeature* sf = s.add_sparse();
        sf->set_slot(slot);
        sf->mutable_ids()->Add(ids.begin(), ids.end());
      }
      for (const auto& [slot, values] : part->dense) {
        if (part == &f && request.user.dense.count(slot))
          return InvalidArgumentError(who + ".dense." + std::to_string(slot) + " is also a user feature");
        DenseFeature* df = s.add_dense();
        df->set_slot(slot);
        df->mutable_values()->Add(values.begin(), values.end());
      }
    }
    for (int t = 0; t < num_tasks; ++t) {
      s.add_label(0.0f);
      s.add_mask(false);
    }
    RETURN_IF_ERROR(builder.Add(s));
  }
  Batch batch = builder.Finish();
  if (request.history) {
    // One copy of the newest max_len (all the module reads), shared by every candidate.
    const auto& h = *request.history;
    const size_t keep = std::min(h.size(), static_cast<size_t>(std::max(1, model.twin().max_len())));
    std::vector<std::vector<store::Behaviour>> one(1);
    one[0].assign(h.end() - static_cast<std::ptrdiff_t>(keep), h.end());
    RETURN_IF_ERROR(AttachHistories(one, &batch, std::vector<int32_t>(batch.size, 0)));
  }
  return batch;
}

}  // namespace freshet::publisher
