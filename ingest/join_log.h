// JoinLog: how PartitionJoin lays its state out in the store. Writing one RocksDB key
// per changed join record made checkpoints the joiner's main cost (a memtable insert,
// a key string and a WriteBatch op per record, ~10 us each). Instead each checkpoint
// appends the records and orphan entries that changed since the previous one to a
// per-partition changelog of a few large values ("segments"), and from time to time
// a full snapshot, also written as segments, replaces the log (the segments before
// it are removed with one range delete in the same batch). Loading replays the
// segments from the newest snapshot on, in order; the last entry for an id wins.
//
//   key   = 4-byte big-endian partition, 'L', 8-byte big-endian sequence number
//   value = entries, each: type byte, varint id length, id, varint payload length,
//           payload (a serialized JoinRecord, one without its features for an
//           update, or OrphanLabels; empty for deletions)
//
// Which segments are live (first and next sequence number) is in the partition's
// PartitionMeta, written in the same WriteBatch as the segments and the offsets.
//
//   std::string seg;
//   AppendJoinLogEntry(JoinLogEntry::kRecord, rid, record, &seg);
//   batch->Put(family, JoinLogSegmentKey(partition, seq++), seg);
//   RETURN_IF_ERROR(ForEachJoinLogEntry(seg, [&](JoinLogEntry type, std::string_view id,
//                                               std::string_view payload) { ...; return true; }));
//
// Thread-safety: plain functions on values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace freshet::ingest {

enum class JoinLogEntry : char {
  kRecord = 'r',          // payload: JoinRecord
  // payload: JoinRecord without its features, which stay as the record's earlier
  // kRecord entry in the live log left them (they never change, only go at close).
  kRecordUpdate = 'u',
  kRecordDeleted = 'R',   // payload empty
  kOrphans = 'o',         // payload: OrphanLabels
  kOrphansDeleted = 'O',  // payload empty
};

// Appends one entry; `payload` nullptr for the deletions.
void AppendJoinLogEntry(JoinLogEntry type, std::string_view id, const google::protobuf::MessageLite* payload,
                        std::string* segment);

// Calls fn for each entry of `segment` in order until it returns false. DATA_LOSS
// naming `where` (e.g. "segment 7 of partition 0 in DIR") when the segment is
// truncated or holds an unknown entry type.
Status ForEachJoinLogEntry(std::string_view segment, const std::string& where,
                           const std::function<bool(JoinLogEntry, std::string_view, std::string_view)>& fn);

// Keys. The partition prefix sorts a partition's keys together; under it, the meta
// key is the prefix alone, segments use 'L', and the per-record keys of the layout
// before the changelog used 'o' and 'r' (still read on load, removed by the first
// snapshot).
std::string JoinPartitionPrefix(int32_t partition);
std::string JoinLogSegmentKey(int32_t partition, uint64_t seq);
// The sequence number of a segment key under `prefix`; -1 when `key` is not one.
int64_t JoinLogSegmentSeq(std::string_view prefix, std::string_view key);
constexpr char kJoinLogSegmentType = 'L';
constexpr char kLegacyRecordType = 'r';
constexpr char kLegacyOrphanType = 'o';

}  // namespace freshet::ingest
