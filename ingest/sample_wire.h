// Samples assembled on the wire: an impression's features are kept as the bytes they
// arrived in and appended to each Sample built from it, instead of being parsed into
// nested messages, copied into the join state, re-serialized at every checkpoint and
// again into every sample. A SparseFeature/DenseFeature is the same message in an
// Impression (fields 5/6) and in a Sample (fields 7/8); only the outer tag differs.
//
// A protobuf parser merges concatenated encodings (repeated fields may come in any
// order on the wire), so `sample` serialized followed by `features` parses as the one
// complete Sample. Feature bytes come from DecodeImpression (validated there: each
// feature parses, dense values are finite) or from FeatureBytes.
//
//   JoinedSample s;                       // s.sample: ids, labels, masks, ...
//   s.features = record.features();       // Sample fields 7 and 8 on the wire
//   producer->Produce(topic, key, s.Serialize());
//
// Thread-safety: plain values.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::ingest {

struct JoinedSample {
  Sample sample;          // every field but sparse and dense
  std::string features;   // Sample.sparse (field 7) and Sample.dense (field 8) as wire bytes

  // The complete Sample's bytes: `sample` serialized, then `features`.
  std::string Serialize() const;
  // The complete Sample (tests and tools; the joiner only serializes). DATA_LOSS if
  // the features do not parse, which validated features never cause.
  StatusOr<Sample> ToProto() const;
};

// Appends field `field` of wire type LEN holding `payload`.
void AppendLengthDelimited(int field, std::string_view payload, std::string* out);

// The sparse and dense features of `imp` as JoinedSample::features.
std::string FeatureBytes(const Impression& imp);
// The same, and clears them from *imp: what remains is the header a join record keeps.
std::string TakeFeatureBytes(Impression* imp);

}  // namespace freshet::ingest
