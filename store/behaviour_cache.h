// BehaviourCache: per user, the most recent `max_len` engaged behaviours (item id,
// time, action bits, play time) in one RocksDB column family, the long history the
// TWIN module (learner/cpu/twin.h, docs/models.md §4) searches.
//
//   key   = "u" + user id, 8 bytes big-endian (fixed width, so keys sort by user)
//   value = 1 format byte (kBehaviourFormat) + N fixed-width 24-byte records,
//           oldest first: item u64 | time_ms i64 | actions u32 | play_ms u32 (LE)
//
// Staged appends (the learner's): appends made since the last checkpoint go to a
// second family, kBehaviourStagedFamily, with the same operator; reads lay them over
// the committed history; a checkpoint moves them into the committed family in its
// own WriteBatch (QueueCommit), and a restore drops them (QueueDropStaged), so the
// committed history is exactly the checkpoint's and a replay sees no appends from
// past the checkpoint. Readers (serving's secondary) see both, so they stay fresh.
//
// Fixed-width records make the merge operator's trim a substring (no decoding) and a
// read one memcpy per field; 10,000 behaviours are 240 kB per user. Appends are
// RocksDB merges (an AssociativeMergeOperator that concatenates and keeps the newest
// max_len records), so the learner never reads before it writes, and appends ride in
// the same WriteBatch as the rest of a checkpoint. An appended behaviour with the
// (item, time) of one among the last 256 stored, not older than it, is folded into
// it (action bits OR-ed, play time maxed): replaying samples after a restore, or a
// late-label correction of the same impression, does not duplicate history (the
// look-back stops at the first older behaviour, so out-of-order histories may miss a
// fold).
//
//   KvStore::Options o;  o.path = dir;
//   BehaviourCache::Configure(&o, /*max_len=*/10000);     // family + merge operator
//   auto store = KvStore::Open(o);
//   BehaviourCache cache(store->get(), 10000);
//   WriteBatch b;  cache.Append(&b, user, {{item, t, kClick, 0}});  store->Write(b);
//   StatusOr<std::vector<std::vector<Behaviour>>> h = cache.MultiRead({u1, u2});
//
// Thread-safety: as KvStore (every method may run concurrently).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/kv_store.h"

namespace freshet::store {

struct Behaviour {
  uint64_t item_id = 0;
  int64_t time_ms = 0;    // event time of the engagement
  uint32_t actions = 0;   // bit t set: task t's label was positive
  uint32_t play_ms = 0;   // play time, saturated at 2^32−1 ms
  bool operator==(const Behaviour&) const = default;
};

inline constexpr char kBehaviourFamily[] = "behaviour";
inline constexpr char kBehaviourStagedFamily[] = "behaviour_staged";
inline constexpr char kBehaviourFormat = 1;
inline constexpr size_t kBehaviourRecordBytes = 24;

// Encodes records (oldest first) as a value / merge operand.
std::string EncodeBehaviours(const std::vector<Behaviour>& behaviours);
// Decodes a value, keeping at most the newest `max_len`. DataLoss when the bytes are
// not a whole number of records or the format byte is unknown.
StatusOr<std::vector<Behaviour>> DecodeBehaviours(std::string_view value, size_t max_len);

class BehaviourCache {
 public:
  // Adds the families (committed and staged) and their append-and-trim merge
  // operator to `options`.
  // REQUIRES: max_len >= 1.
  static void Configure(KvStore::Options* options, int max_len);
  // The operator itself (tests, tools).
  static std::shared_ptr<rocksdb::MergeOperator> MakeMergeOperator(int max_len);
  static std::string Key(uint64_t user_id);
  // Opens the store at `path`, written by another process's cache, as a read-only
  // RocksDB secondary (its own files in `secondary_path`) with this family's merge
  // operator. NotFound until the primary has created the family.
  static StatusOr<std::unique_ptr<KvStore>> OpenSecondary(const std::string& path, const std::string& secondary_path,
                                                          int max_len);

  // REQUIRES: `store` was opened with Configure(…, max_len) and outlives this.
  // staged: appends go to the staged family until QueueCommit (the learner, whose
  // checkpoints commit them); otherwise straight to the committed history.
  BehaviourCache(KvStore* store, int max_len, bool staged = false)
      : store_(store), max_len_(max_len), staged_(staged) {}

  // Queues an append of `behaviours` (oldest first) to the user's history (staged or
  // committed, see the constructor); see the header comment for how repeats of a
  // stored behaviour are folded.
  void Append(WriteBatch* batch, uint64_t user_id, const std::vector<Behaviour>& behaviours) const;
  // Appends and writes at once.
  [[nodiscard]] Status Append(uint64_t user_id, const std::vector<Behaviour>& behaviours);

  // Queues into `batch` the move of every staged append into the committed history
  // (a merge per user, then the staged family's deletion). Write it with the
  // checkpoint that covers those appends. The store's error if the scan fails.
  [[nodiscard]] Status QueueCommit(WriteBatch* batch) const;
  // Queues the deletion of every staged append (they were made past the checkpoint
  // being restored; the replay makes them again).
  void QueueDropStaged(WriteBatch* batch) const;

  // Histories of `users` (committed with staged appends on top; two MultiGets),
  // oldest first, each at most max_len; an unknown user has an empty history.
  // DataLoss names the user whose value is corrupt.
  StatusOr<std::vector<std::vector<Behaviour>>> MultiRead(const std::vector<uint64_t>& users) const;
  StatusOr<std::vector<Behaviour>> Read(uint64_t user_id) const;

  // The store's newest sequence number: what a checkpoint manifest records
  // (ModelManifest.behaviour_cache_sequence).
  uint64_t sequence() const { return store_->LatestSequence(); }
  int max_len() const { return max_len_; }

 private:
  KvStore* store_;
  int max_len_;
  bool staged_;
};

}  // namespace freshet::store
