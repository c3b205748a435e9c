// Event decoding and validation; see event_decoder.h.
#include "ingest/event_decoder.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/common.h>
#include <google/protobuf/wire_format_lite.h>

#include <cmath>
#include <cstring>

#include "ingest/sample_wire.h"

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

Rejection Malformed() { return Reject("malformed_protobuf", "not a freshet.Impression"); }

// A dense feature's values, checked for NaN/Inf.
Rejection CheckDense(const DenseFeature& d) {
  for (float v : d.values()) {
    if (!std::isfinite(v)) return Reject("non_finite_value", "dense slot " + std::to_string(d.slot()) + " holds a NaN/Inf");
  }
  return {};
}

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Wire primitives held to the generated parser's limits, which are tighter than
// CodedInputStream's own: a tag or a length takes at most 5 bytes (CodedInputStream
// reads up to 10 and drops the high bits), field number 0 is invalid, and groups nest
// at most 100 deep.
constexpr int kMaxVarint32Bytes = 5;
constexpr int kMaxGroupDepth = 100;

bool ReadTag(CodedInputStream* in, uint32_t* tag) {
  const int at = in->CurrentPosition();
  *tag = in->ReadTag();
  return *tag != 0 && WireFormatLite::GetTagFieldNumber(*tag) != 0 && in->CurrentPosition() - at <= kMaxVarint32Bytes;
}

bool ReadSize(CodedInputStream* in, int* size) {
  const int at = in->CurrentPosition();
  return in->ReadVarintSizeAsInt(size) && in->CurrentPosition() - at <= kMaxVarint32Bytes;
}

// Skips a field this decoder does not keep, as the generated parser skips unknown fields.
bool SkipField(CodedInputStream* in, uint32_t tag, int depth = 0) {
  uint64_t v = 0;
  int n = 0;
  switch (WireFormatLite::GetTagWireType(tag)) {
    case WireFormatLite::WIRETYPE_VARINT:
      return in->ReadVarint64(&v);
    case WireFormatLite::WIRETYPE_FIXED64:
      return in->Skip(8);
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
      return ReadSize(in, &n) && in->Skip(n);
    case WireFormatLite::WIRETYPE_FIXED32:
      return in->Skip(4);
    case WireFormatLite::WIRETYPE_START_GROUP:
      if (depth >= kMaxGroupDepth) return false;
      for (uint32_t inner = 0;;) {
        if (!ReadTag(in, &inner)) return false;
        if (WireFormatLite::GetTagWireType(inner) == WireFormatLite::WIRETYPE_END_GROUP) {
          return WireFormatLite::GetTagFieldNumber(inner) == WireFormatLite::GetTagFieldNumber(tag);
        }
        if (!SkipField(in, inner, depth + 1)) return false;
      }
    default:  // an END_GROUP without its start, or wire types 6 and 7
      return false;
  }
}

// A varint the generated parser accepts whatever its version: at most 10 bytes, the
// tenth at most 1 (no bits past 64). false for anything else, and the caller leaves
// the decision to the parser.
bool PlainVarint(const uint8_t** at, const uint8_t* end, uint64_t* v) {
  uint64_t r = 0;
  const uint8_t* p = *at;
  for (int i = 0; i < 10 && p < end; ++i) {
    const uint8_t b = *p++;
    if (i == 9 && b > 1) return false;
    r |= uint64_t{b & 0x7fu} << (7 * i);
    if (b < 0x80) {
      *at = p;
      *v = r;
      return true;
    }
  }
  return false;
}

// A length-delimited field's length as the generated parser takes it: a plain varint of
// at most 5 bytes, no longer than what is left. `*at` moves past it.
bool PlainLength(const uint8_t** at, const uint8_t* end, uint64_t* n) {
  const uint8_t* start = *at;
  return PlainVarint(at, end, n) && *at - start <= kMaxVarint32Bytes && *n <= static_cast<uint64_t>(end - *at);
}

// The quick check of a feature's bytes in the form protobuf's serializers write it:
// `slot` (field 1, a varint) and the values (field 2, packed: varint ids, or floats
// that must all be finite), each any number of times. true: a valid SparseFeature
// (kDense false) or DenseFeature with finite values. false says nothing (another
// form, or bad bytes, or a NaN): the message's own parser decides then.
template <bool kDense>
bool PlainFeature(std::string_view bytes) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* const end = p + bytes.size();
  uint64_t v = 0;
  while (p < end) {
    const uint8_t tag = *p++;
    if (tag == 0x08) {  // field 1, varint
      if (!PlainVarint(&p, end, &v)) return false;
    } else if (tag == 0x12) {  // field 2, length-delimited: the packed values
      if (!PlainLength(&p, end, &v)) return false;
      const uint8_t* const values_end = p + v;
      if constexpr (kDense) {
        if (v % 4 != 0) return false;
        for (; p < values_end; p += 4) {
          float f;
          std::memcpy(&f, p, 4);
          if (!std::isfinite(f)) return false;
        }
      } else {
        while (p < values_end) {
          if (!PlainVarint(&p, values_end, &v)) return false;
        }
      }
    } else {
      return false;
    }
  }
  return true;
}

// Walks an Impression's top level: fields 1-4 into `out`'s ids and time, each feature
// (fields 5 and 6) validated (PlainFeature, else its own message's parser) and
// appended to out->features under its Sample field number. Any other field is
// skipped, as are known fields of the wrong wire type (the generated parser treats
// them as unknown). The first non-finite dense value goes to *bad_feature. false: not
// an Impression.
bool ScanImpression(std::string_view value, size_t headroom, ImpressionEvent* out, Rejection* bad_feature) {
  // Reused across calls: parsing into them reuses their capacity.
  thread_local SparseFeature sparse;
  thread_local DenseFeature dense;
  const int size = static_cast<int>(value.size());
  CodedInputStream in(reinterpret_cast<const uint8_t*>(value.data()), size);
  while (in.CurrentPosition() < size) {
    uint32_t tag = 0;
    if (!ReadTag(&in, &tag)) return false;
    const int field = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    const auto wire = WireFormatLite::GetTagWireType(tag);
    const bool len = wire == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    const bool varint = wire == WireFormatLite::WIRETYPE_VARINT;
    uint64_t v = 0;
    int n = 0;
    if (field == Impression::kRequestIdFieldNumber && len) {
      if (!ReadSize(&in, &n) || !in.ReadString(&out->request_id, n)) return false;
      // proto3 strings must be UTF-8: the generated parser refuses the message otherwise.
      if (!google::protobuf::internal::IsStructurallyValidUTF8(out->request_id.data(), n)) return false;
    } else if (field == Impression::kUserIdFieldNumber && varint) {
      if (!in.ReadVarint64(&v)) return false;
      out->user_id = v;
    } else if (field == Impression::kItemIdFieldNumber && varint) {
      if (!in.ReadVarint64(&v)) return false;
      out->item_id = v;
    } else if (field == Impression::kEventTimeMsFieldNumber && varint) {
      if (!in.ReadVarint64(&v)) return false;
      out->event_time_ms = static_cast<int64_t>(v);
    } else if ((field == Impression::kSparseFieldNumber || field == Impression::kDenseFieldNumber) && len) {
      if (!ReadSize(&in, &n) || n > size - in.CurrentPosition()) return false;
      // At the first feature: room for every feature byte (the message's size bounds
      // them), a second copy of the request id (a sample holds it as sample_id and
      // request_id) and the headroom. Serializers write the request id first.
      if (out->features.empty()) out->features.reserve(value.size() + out->request_id.size() + headroom);
      const std::string_view bytes = value.substr(static_cast<size_t>(in.CurrentPosition()), static_cast<size_t>(n));
      in.Skip(n);
      // The quick check passes the usual form; the parser judges the rest.
      if (field == Impression::kSparseFieldNumber) {
        if (!PlainFeature<false>(bytes) && !sparse.ParseFromArray(bytes.data(), n)) return false;
        AppendLengthDelimited(Sample::kSparseFieldNumber, bytes, &out->features);
      } else {
        if (!PlainFeature<true>(bytes)) {
          if (!dense.ParseFromArray(bytes.data(), n)) return false;
          if (Rejection r = CheckDense(dense); !r.ok() && bad_feature->ok()) *bad_feature = std::move(r);
        }
        AppendLengthDelimited(Sample::kDenseFieldNumber, bytes, &out->features);
      }
    } else if (!SkipField(&in, tag)) {
      return false;
    }
  }
  return true;
}

// A Label in the form protobuf's serializers write: fields 1-6 each with its own wire
// type, single-byte tags, varints in at most 10 bytes, a valid UTF-8 request id. Any
// field may come in any order and more than once (the last one counts, as for the
// parser). true: `out` holds what Label::ParseFromArray would give. false says
// nothing: another form, or bad bytes, and the parser decides (it clears `out`).
bool ScanLabel(std::string_view value, Label* out) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(value.data());
  const uint8_t* const end = p + value.size();
  out->Clear();
  uint64_t v = 0;
  while (p < end) {
    const uint8_t tag = *p++;
    if (tag == 0x35) {  // field 6, fixed32: value
      if (end - p < 4) return false;
      float f;
      std::memcpy(&f, p, 4);
      out->set_value(f);
      p += 4;
      continue;
    }
    if (tag == 0x0a) {  // field 1, length-delimited: request_id
      if (!PlainLength(&p, end, &v)) return false;
      const char* chars = reinterpret_cast<const char*>(p);
      if (!google::protobuf::internal::IsStructurallyValidUTF8(chars, static_cast<int>(v))) return false;
      out->set_request_id(chars, v);
      p += v;
      continue;
    }
    if (!PlainVarint(&p, end, &v)) return false;
    switch (tag) {
      case 0x10: out->set_user_id(v); break;
      case 0x18: out->set_item_id(v); break;
      case 0x20: out->set_event_time_ms(static_cast<int64_t>(v)); break;
      // An enum keeps the low 32 bits of its varint, known value or not (proto3).
      case 0x28: out->set_kind(static_cast<LabelKind>(static_cast<int32_t>(v))); break;
      default: return false;
    }
  }
  return true;
}

}  // namespace

Rejection DecodeImpression(std::string_view key, std::string_view value, const DecodeLimits& limits,
                           ImpressionEvent* out) {
  if (static_cast<int64_t>(value.size()) > limits.max_message_bytes) {
    return Reject("oversized", std::to_string(value.size()) + " bytes > kafka.max_message_bytes " +
                                   std::to_string(limits.max_message_bytes));
  }
  *out = ImpressionEvent();
  Rejection bad_feature;
  if (!ScanImpression(value, limits.feature_headroom, out, &bad_feature)) return Malformed();
  const ImpressionEvent& h = *out;
  Rejection r = CheckCommon(key, h.request_id, h.user_id, h.item_id, h.event_time_ms, limits);
  if (!r.ok()) return r;
  if (!bad_feature.ok()) return bad_feature;
  if (h.event_time_ms < limits.oldest_impression_ms) {
    return Reject("impression_too_old", "event_time_ms " + std::to_string(h.event_time_ms) + " is " +
                                            std::to_string(limits.oldest_impression_ms - h.event_time_ms) +
                                            " ms past watermark - ingest.max_impression_age_ms");
  }
  return {};
}

Rejection DecodeLabel(std::string_view key, std::string_view value, const DecodeLimits& limits, Label* out) {
  if (static_cast<int64_t>(value.size()) > limits.max_message_bytes) {
    return Reject("oversized", std::to_string(value.size()) + " bytes > kafka.max_message_bytes " +
                                   std::to_string(limits.max_message_bytes));
  }
  // The usual form by a scan of its bytes; anything else by the parser.
  if (!ScanLabel(value, out) && !out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
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
