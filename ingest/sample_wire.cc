// Samples assembled on the wire; see sample_wire.h.
#include "ingest/sample_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstring>

namespace freshet::ingest {

using google::protobuf::internal::WireFormatLite;

std::string JoinedSample::Serialize() const {
  const size_t header = sample.ByteSizeLong();  // sizes computed once, then serialized with them
  std::string out(header + features.size(), '\0');
  uint8_t* at = reinterpret_cast<uint8_t*>(out.data());
  sample.SerializeWithCachedSizesToArray(at);
  std::memcpy(at + header, features.data(), features.size());
  return out;
}

StatusOr<Sample> JoinedSample::ToProto() const {
  Sample s;
  if (!s.ParseFromString(Serialize())) {
    return DataLossError("sample " + sample.sample_id() + ": its feature bytes do not parse as Sample fields");
  }
  return s;
}

void AppendLengthDelimited(int field, std::string_view payload, std::string* out) {
  uint8_t head[2 * 5];  // two varint32s: the tag and the length
  uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), head);
  end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(payload.size()), end);
  out->append(reinterpret_cast<const char*>(head), static_cast<size_t>(end - head));
  out->append(payload);
}

std::string FeatureBytes(const Impression& imp) {
  std::string out;
  for (const SparseFeature& f : imp.sparse()) AppendLengthDelimited(Sample::kSparseFieldNumber, f.SerializeAsString(), &out);
  for (const DenseFeature& f : imp.dense()) AppendLengthDelimited(Sample::kDenseFieldNumber, f.SerializeAsString(), &out);
  return out;
}

std::string TakeFeatureBytes(Impression* imp) {
  std::string out = FeatureBytes(*imp);
  imp->clear_sparse();
  imp->clear_dense();
  return out;
}

}  // namespace freshet::ingest
