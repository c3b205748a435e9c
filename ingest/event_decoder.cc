// Event decoding and validation; see event_decoder.h.
#include "ingest/event_decoder.h"

#include <cmath>

namespace freshet::ingest {
namespace {

Rejection Reject(std::string reason, std::string detail) { return {std::move(reason), std::move(detail)}; }

Rejection CheckCommon(std::string_view key, const std::string& rid, uint64_t user, uint64_t item, int64_t time,
                      const DecodeLimits& limits) {
  if (rid.empty()) return Reject("missing_request_id", "request_id is empty");
  if (user == 0) return Reject("missing_user_id", "user_id is 0 for request " + rid);
  if (item == 0) return Reject("missing_item_id", "item_id is 0 for request " + rid);
  if (time <= 0) return Reject("missing_event_time", "event_time_ms is " + std::to_string(time) + " for request " + rid);
  if (!key.empty() && key != rid) {
    return Reject("key_mismatch", "message key \"" + std::string(key.substr(0, 64)) + "\" differs from request_id " + rid +
                                      " (producers must key both topics by request_id)");
  }
  if (limits.now_ms > 0 && time > limits.now_ms + limits.max_future_skew_ms) {
    return Reject("event_time_in_future", "event_time_ms " + std::to_string(time) + " is " +
                                              std::to_string(time - limits.now_ms) + " ms ahead of the wall clock");
  }
  return {};
}

}  // namespace

Rejection DecodeImpression(std::string_view key, std::string_view value, const DecodeLimits& limits,
                           Impression* out) {
  if (static_cast<int64_t>(value.size()) > limits.max_message_bytes) {
    return Reject("oversized", std::to_string(value.size()) + " bytes > kafka.max_message_bytes " +
                                   std::to_string(limits.max_message_bytes));
  }
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Reject("malformed_protobuf", "not a freshet.Impression");
  }
  Rejection r = CheckCommon(key, out->request_id(), out->user_id(), out->item_id(), out->event_time_ms(), limits);
  if (!r.ok()) return r;
  for (const DenseFeature& d : out->dense()) {
    for (float v : d.values()) {
      if (!std::isfinite(v)) return Reject("non_finite_value", "dense slot " + std::to_string(d.slot()) + " holds a NaN/Inf");
    }
  }
  if (out->event_time_ms() < limits.oldest_impression_ms) {
    return Reject("impression_too_old", "event_time_ms " + std::to_string(out->event_time_ms()) + " is " +
                                            std::to_string(limits.oldest_impression_ms - out->event_time_ms()) +
                                            " ms past watermark - ingest.max_impression_age_ms");
  }
  return {};
}

Rejection DecodeLabel(std::string_view key, std::string_view value, const DecodeLimits& limits, Label* out) {
  if (static_cast<int64_t>(value.size()) > limits.max_message_bytes) {
    return Reject("oversized", std::to_string(value.size()) + " bytes > kafka.max_message_bytes " +
                                   std::to_string(limits.max_message_bytes));
  }
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Reject("malformed_protobuf", "not a freshet.Label");
  }
  Rejection r = CheckCommon(key, out->request_id(), out->user_id(), out->item_id(), out->event_time_ms(), limits);
  if (!r.ok()) return r;
  if (out->kind() == LABEL_KIND_UNSPECIFIED || !LabelKind_IsValid(out->kind())) {
    return Reject("unknown_label_kind", "label kind " + std::to_string(static_cast<int>(out->kind())) + " is not known");
  }
  if (!std::isfinite(out->value())) return Reject("non_finite_value", "label value is NaN/Inf");
  return {};
}

}  // namespace freshet::ingest
