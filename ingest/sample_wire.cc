// Samples assembled on the wire; see sample_wire.h.
#include "ingest/sample_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cassert>
#include <cstring>

namespace freshet::ingest {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

constexpr uint32_t Tag(int field, WireFormatLite::WireType type) {
  return static_cast<uint32_t>(field) << 3 | static_cast<uint32_t>(type);
}
// Every tag of a Sample field fits one byte (fields 1-15).
static_assert(Tag(Sample::kTaskLayoutFieldNumber, WireFormatLite::WIRETYPE_FIXED32) < 0x80);

size_t VarintSize(uint64_t v) { return CodedOutputStream::VarintSize64(v); }
// A LEN field of `n` bytes: tag, length, payload.
size_t LenFieldSize(size_t n) { return 1 + VarintSize(n) + n; }

uint8_t* PutVarint(uint64_t v, uint8_t* at) { return CodedOutputStream::WriteVarint64ToArray(v, at); }
uint8_t* PutVarintField(int field, uint64_t v, uint8_t* at) {
  *at++ = static_cast<uint8_t>(Tag(field, WireFormatLite::WIRETYPE_VARINT));
  return PutVarint(v, at);
}
uint8_t* PutLenHead(int field, size_t n, uint8_t* at) {
  *at++ = static_cast<uint8_t>(Tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  return PutVarint(n, at);
}
uint8_t* PutBytesField(int field, std::string_view s, uint8_t* at) {
  at = PutLenHead(field, s.size(), at);
  std::memcpy(at, s.data(), s.size());
  return at + s.size();
}
uint8_t* PutFloat(float f, uint8_t* at) {
  return CodedOutputStream::WriteLittleEndian32ToArray(WireFormatLite::EncodeFloat(f), at);
}

// The header's encoded size. Proto3 leaves out fields holding their default (empty
// string, 0, false) and packs repeated scalars; so does this.
size_t HeaderSize(const SampleHeader& h) {
  const size_t n = h.label.size();
  size_t size = 0;
  if (!h.sample_id.empty()) size += LenFieldSize(h.sample_id.size());
  if (!h.request_id.empty()) size += LenFieldSize(h.request_id.size());
  if (h.user_id != 0) size += 1 + VarintSize(h.user_id);
  if (h.item_id != 0) size += 1 + VarintSize(h.item_id);
  if (h.event_time_ms != 0) size += 1 + VarintSize(static_cast<uint64_t>(h.event_time_ms));
  if (h.emit_time_ms != 0) size += 1 + VarintSize(static_cast<uint64_t>(h.emit_time_ms));
  if (n > 0) size += 2 * LenFieldSize(4 * n) + LenFieldSize(n);  // label, weight; mask
  if (h.correction) size += 2;
  if (h.origin != 0) size += 1 + VarintSize(static_cast<uint64_t>(static_cast<int64_t>(h.origin)));
  if (h.task_layout != 0) size += 5;
  return size;
}

// AppendSampleHeader, given HeaderSize(h).
void AppendHeader(const SampleHeader& h, size_t size, std::string* out) {
  const size_t n = h.label.size();
  assert(n <= kMaxSampleTasks);
  const size_t start = out->size();
  out->resize(start + size);
  uint8_t* at = reinterpret_cast<uint8_t*>(out->data()) + start;
  uint8_t* const end = at + size;
  if (!h.sample_id.empty()) at = PutBytesField(Sample::kSampleIdFieldNumber, h.sample_id, at);
  if (!h.request_id.empty()) at = PutBytesField(Sample::kRequestIdFieldNumber, h.request_id, at);
  if (h.user_id != 0) at = PutVarintField(Sample::kUserIdFieldNumber, h.user_id, at);
  if (h.item_id != 0) at = PutVarintField(Sample::kItemIdFieldNumber, h.item_id, at);
  if (h.event_time_ms != 0) {
    at = PutVarintField(Sample::kEventTimeMsFieldNumber, static_cast<uint64_t>(h.event_time_ms), at);
  }
  if (h.emit_time_ms != 0) {
    at = PutVarintField(Sample::kEmitTimeMsFieldNumber, static_cast<uint64_t>(h.emit_time_ms), at);
  }
  if (n > 0) {
    at = PutLenHead(Sample::kLabelFieldNumber, 4 * n, at);
    for (float v : h.label) at = PutFloat(v, at);
    at = PutLenHead(Sample::kMaskFieldNumber, n, at);
    for (size_t t = 0; t < n; ++t) *at++ = static_cast<uint8_t>(h.mask >> t & 1);
    at = PutLenHead(Sample::kWeightFieldNumber, 4 * n, at);
    for (size_t t = 0; t < n; ++t) at = PutFloat(1.0f, at);
  }
  if (h.correction) at = PutVarintField(Sample::kCorrectionFieldNumber, 1, at);
  if (h.origin != 0) {  // an enum is written as its int32 value, sign-extended
    at = PutVarintField(Sample::kOriginFieldNumber, static_cast<uint64_t>(static_cast<int64_t>(h.origin)), at);
  }
  if (h.task_layout != 0) {
    *at++ = static_cast<uint8_t>(Tag(Sample::kTaskLayoutFieldNumber, WireFormatLite::WIRETYPE_FIXED32));
    at = CodedOutputStream::WriteLittleEndian32ToArray(h.task_layout, at);
  }
  assert(at == end);
  (void)end;
}

}  // namespace

void AppendSampleHeader(const SampleHeader& h, std::string* out) { AppendHeader(h, HeaderSize(h), out); }

size_t SampleHeaderBound(size_t tasks) {
  constexpr size_t kVarint = 10, kLenHead = 1 + 5;  // a varint at its longest; a LEN field's tag and length
  return 2 * kLenHead                               // sample_id, request_id
         + 4 * (1 + kVarint)                        // user_id, item_id, event and emit times
         + 2 * (kLenHead + 4 * tasks) + kLenHead + tasks  // label, weight; mask
         + 2 + (1 + kVarint) + 5;                   // correction, origin, task_layout
}

std::string SampleBytes(std::string_view features, const SampleHeader& h) {
  const size_t header = HeaderSize(h);
  std::string out;
  out.reserve(features.size() + header);
  out.append(features);
  AppendHeader(h, header, &out);
  return out;
}

StatusOr<Sample> JoinedSample::ToProto() const {
  Sample s;
  if (!s.ParseFromString(bytes)) return DataLossError("a joined sample's bytes do not parse as a Sample");
  return s;
}

void AppendLengthDelimited(int field, std::string_view payload, std::string* out) {
  uint8_t head[2 * 5];  // two varint32s: the tag and the length
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), head);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(payload.size()), end);
  out->append(reinterpret_cast<const char*>(head), static_cast<size_t>(end - head));
  out->append(payload);
}

std::string FeatureBytes(const Impression& imp) {
  std::string out;
  for (const SparseFeature& f : imp.sparse()) AppendLengthDelimited(Sample::kSparseFieldNumber, f.SerializeAsString(), &out);
  for (const DenseFeature& f : imp.dense()) AppendLengthDelimited(Sample::kDenseFieldNumber, f.SerializeAsString(), &out);
  return out;
}

ImpressionEvent SplitImpression(const Impression& imp) {
  return {imp.request_id(), imp.user_id(), imp.item_id(), imp.event_time_ms(), FeatureBytes(imp)};
}

}  // namespace freshet::ingest
