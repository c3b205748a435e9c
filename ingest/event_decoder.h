// Decoding and validation of raw Kafka messages on the joiner's input topics. A
// message is either a usable Impression/Label or a rejection with a stable reason
// code (the `reason` label of freshet_ingest_deadletter_total and DeadLetter.reason)
// and a detail for humans. Pure functions over bytes, so the libFuzzer target and
// unit tests drive them directly.
//
// Reason codes: oversized, malformed_protobuf, missing_request_id, missing_user_id,
// missing_item_id, missing_event_time, non_finite_value, unknown_label_kind,
// key_mismatch, event_time_in_future, impression_too_old.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ingest/sample_wire.h"
#include "schemas/events.pb.h"

namespace freshet::ingest {

struct Rejection {
  std::string reason;  // empty: accepted
  std::string detail;
  bool ok() const { return reason.empty(); }
};

struct DecodeLimits {
  int64_t max_message_bytes = 1 << 20;
  int64_t now_ms = 0;                  // wall clock
  int64_t max_future_skew_ms = 300000;
  // Impressions older than this event time are rejected (watermark −
  // max_impression_age_ms); INT64_MIN disables the check.
  int64_t oldest_impression_ms = INT64_MIN;
  // Room an impression's feature bytes get beyond their own and the request id's, for
  // what the caller appends to them: the join passes SampleHeaderBound(tasks), so that
  // the window's sample takes the bytes over without growing them.
  size_t feature_headroom = 0;
};

// `key` is the Kafka message key; a non-empty key must equal request_id (both input
// topics are keyed by it, so a mismatch means the event sits on the wrong partition
// and could never join).
//
// DecodeImpression accepts exactly the bytes that Impression::ParseFromArray accepts
// (unknown fields are skipped; a repeated scalar field keeps its last value), without
// building the nested feature messages: it walks the top level itself. A feature in the
// form serializers write (slot, packed values) is checked by a scan of its bytes; any
// other form goes to the matching message's own parser, into a reused scratch message.
Rejection DecodeImpression(std::string_view key, std::string_view value, const DecodeLimits& limits,
                           ImpressionEvent* out);
// DecodeLabel accepts exactly the bytes Label::ParseFromArray accepts and fills `out`
// as the parser would; the usual form is read by a scan of its bytes, any other by
// the parser.
Rejection DecodeLabel(std::string_view key, std::string_view value, const DecodeLimits& limits, Label* out);

}  // namespace freshet::ingest
