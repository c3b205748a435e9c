// JoinLog segment encoding and keys; see join_log.h.
#include "ingest/join_log.h"

#include <google/protobuf/message_lite.h>

namespace freshet::ingest {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

bool KnownType(char c) {
  return c == static_cast<char>(JoinLogEntry::kRecord) || c == static_cast<char>(JoinLogEntry::kRecordUpdate) ||
         c == static_cast<char>(JoinLogEntry::kRecordDeleted) ||
         c == static_cast<char>(JoinLogEntry::kOrphans) || c == static_cast<char>(JoinLogEntry::kOrphansDeleted);
}

}  // namespace

void AppendJoinLogEntry(JoinLogEntry type, std::string_view id, const google::protobuf::MessageLite* payload,
                        std::string* segment) {
  segment->push_back(static_cast<char>(type));
  PutVarint(id.size(), segment);
  segment->append(id);
  if (!payload) {
    PutVarint(0, segment);
    return;
  }
  const size_t size = payload->ByteSizeLong();
  PutVarint(size, segment);
  const size_t at = segment->size();
  segment->resize(at + size);
  // Serialised straight into the segment: no temporary string per record.
  payload->SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(segment->data() + at));
}

Status ForEachJoinLogEntry(std::string_view segment, const std::string& where,
                           const std::function<bool(JoinLogEntry, std::string_view, std::string_view)>& fn) {
  std::string_view in = segment;
  while (!in.empty()) {
    const char type = in.front();
    in.remove_prefix(1);
    uint64_t id_len = 0, payload_len = 0;
    if (!KnownType(type) || !GetVarint(&in, &id_len) || id_len > in.size()) {
      return DataLossError("join state " + where + " is corrupt at byte " +
                           std::to_string(segment.size() - in.size()) + "; remove the directory to rebuild from Kafka");
    }
    const std::string_view id = in.substr(0, id_len);
    in.remove_prefix(id_len);
    if (!GetVarint(&in, &payload_len) || payload_len > in.size()) {
      return DataLossError("join state " + where + " is truncated; remove the directory to rebuild from Kafka");
    }
    const std::string_view payload = in.substr(0, payload_len);
    in.remove_prefix(payload_len);
    if (!fn(static_cast<JoinLogEntry>(type), id, payload)) break;
  }
  return Status::Ok();
}

std::string JoinPartitionPrefix(int32_t partition) {
  const uint32_t p = static_cast<uint32_t>(partition);
  return std::string{static_cast<char>(p >> 24), static_cast<char>(p >> 16), static_cast<char>(p >> 8),
                     static_cast<char>(p)};
}

std::string JoinLogSegmentKey(int32_t partition, uint64_t seq) {
  std::string key = JoinPartitionPrefix(partition);
  key.push_back(kJoinLogSegmentType);
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

int64_t JoinLogSegmentSeq(std::string_view prefix, std::string_view key) {
  if (key.size() != prefix.size() + 9 || key.substr(0, prefix.size()) != prefix ||
      key[prefix.size()] != kJoinLogSegmentType) {
    return -1;
  }
  uint64_t seq = 0;
  for (size_t i = prefix.size() + 1; i < key.size(); ++i) seq = seq << 8 | static_cast<uint8_t>(key[i]);
  return static_cast<int64_t>(seq);
}

}  // namespace freshet::ingest
