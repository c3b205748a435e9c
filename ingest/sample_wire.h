// Samples assembled on the wire. An impression's features are kept as the bytes they
// arrived in, and each Sample built from it is those bytes followed by the rest of
// the Sample encoded here by hand. No Sample message is built, filled, serialized and
// destroyed per sample, and under `wait` the window's sample takes the record's
// feature bytes over without copying them.
//
// A SparseFeature/DenseFeature is the same message in an Impression (fields 5/6) and
// in a Sample (fields 7/8); only the outer tag differs. A protobuf parser takes fields
// in any order and merges repeated ones, so the features followed by the other fields
// parse as the one complete Sample. Feature bytes come from DecodeImpression
// (validated there: each feature parses, dense values are finite) or from FeatureBytes.
//
//   SampleHeader h;                       // ids, labels, mask, origin, ...
//   std::string bytes = SampleBytes(record.features, h);
//   producer->Produce(topic, std::to_string(h.user_id), bytes);
//
// Thread-safety: plain values and functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::ingest {

// Every Sample field but the features (sparse 7, dense 8).
struct SampleHeader {
  std::string_view sample_id;
  std::string_view request_id;
  uint64_t user_id = 0;
  uint64_t item_id = 0;
  int64_t event_time_ms = 0;
  int64_t emit_time_ms = 0;
  std::span<const float> label;  // one per task; the mask and weights have as many entries
  uint64_t mask = 0;             // bit t: Sample.mask[t]
  bool correction = false;
  SampleOrigin origin = SAMPLE_ORIGIN_UNSPECIFIED;
  uint32_t task_layout = 0;
};
// At most this many tasks (the mask is a 64-bit set); more is a caller's bug.
inline constexpr size_t kMaxSampleTasks = 64;

// Appends `h` as Sample fields 1-6 and 9-14, byte for byte what Sample's own
// serializer writes for the same values (every weight is 1: Sample.weight carries the
// prediction-independent factor only; see partition_join.h).
void AppendSampleHeader(const SampleHeader& h, std::string* out);
// An upper bound on the bytes AppendSampleHeader appends for `tasks` tasks, besides
// the sample_id's and request_id's own bytes (add those for a bound on the whole
// header).
size_t SampleHeaderBound(size_t tasks);
// `features` then the header: a complete Sample.
std::string SampleBytes(std::string_view features, const SampleHeader& h);

// What a join emits: a complete Sample's bytes and the samples topic's key.
struct JoinedSample {
  std::string bytes;
  uint64_t user_id = 0;  // the key (samples of one user stay on one partition)

  // The Sample (tests and tools; the joiner only produces the bytes). DATA_LOSS if
  // the bytes do not parse, which validated features never cause.
  StatusOr<Sample> ToProto() const;
};

// An impression as the join keeps it: the ids and the event time as plain values,
// the features as a Sample's fields 7 and 8 (wire bytes, appended to every Sample
// built from it).
struct ImpressionEvent {
  std::string request_id;
  uint64_t user_id = 0;
  uint64_t item_id = 0;
  int64_t event_time_ms = 0;
  std::string features;
};
// `imp` split into the above (tests, tools, stored records of an older layout).
ImpressionEvent SplitImpression(const Impression& imp);

// Appends field `field` of wire type LEN holding `payload`.
void AppendLengthDelimited(int field, std::string_view payload, std::string* out);

// The sparse and dense features of `imp` as a Sample's fields 7 and 8.
std::string FeatureBytes(const Impression& imp);

}  // namespace freshet::ingest
