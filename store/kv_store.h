// KvStore: a small wrapper over one RocksDB database with named column families.
// Callers get atomic multi-family write batches, point and multi-point reads,
// prefix scans and consistent on-disk checkpoints, all returning Status; RocksDB's
// headers stay in kv_store.cc so code that includes this header does not pay for
// them. Used by ingest (join state + consumed offsets, one batch per checkpoint) and,
// later, by the learner (parameters, snapshots) and the behaviour caches.
//
// Errors are sticky (leveldb's habit): after the first failed write every later
// write returns that error, because a store that lost a write can no longer promise
// that its families are consistent; health() reports it so /readyz turns red.
//
// Thread-safety: every method may be called from several threads (RocksDB is
// thread-safe); a WriteBatch is a plain value owned by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rocksdb {
class MergeOperator;
}  // namespace rocksdb

namespace freshet::store {

// Writes to apply atomically, possibly across column families. Families are named;
// KvStore::Write rejects a batch naming a family the store was not opened with.
class WriteBatch {
 public:
  void Put(std::string_view family, std::string_view key, std::string_view value);
  void Delete(std::string_view family, std::string_view key);
  // Deletes every key in [begin, end).
  void DeleteRange(std::string_view family, std::string_view begin, std::string_view end);
  // Merges `operand` into the key's value with the family's merge operator.
  // REQUIRES (at Write): the family was opened with a merge operator.
  void Merge(std::string_view family, std::string_view key, std::string_view operand);

  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // Bytes of keys and values queued.
  size_t bytes() const { return bytes_; }
  void Clear();

  struct Op {
    enum Kind { kPut, kDelete, kDeleteRange, kMerge } kind;
    std::string family;
    std::string key;
    std::string value;  // kPut: the value; kDeleteRange: the end key; kMerge: the operand
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

class KvStore {
 public:
  struct Options {
    std::string path;                     // the database directory
    std::vector<std::string> families;    // opened (created if missing) besides "default"
    bool create_if_missing = true;
    // fsync the WAL on every Write. false survives a process crash (the OS holds the
    // WAL) but not a power loss; callers that replay from Kafka can afford that.
    bool sync_writes = false;
    // Shared block cache for reads; 0 = RocksDB's default (8 MB).
    int64_t block_cache_bytes = 64 << 20;
    // Merge operator per family name (e.g. the behaviour cache's append-and-trim).
    // A family holding merge operands must be opened with its operator every time.
    std::map<std::string, std::shared_ptr<rocksdb::MergeOperator>> merge_operators;
    // Non-empty: open `path` read-only as a RocksDB secondary instance of the process
    // that writes it (e.g. a serving replica reading the learner's behaviour cache),
    // keeping the secondary's own info log in this directory. Every family must exist
    // in the primary; Write fails (FailedPrecondition); TryCatchUpWithPrimary() makes
    // the primary's newer writes visible. Default "": an ordinary (primary) open.
    std::string secondary_path;
  };

  // Opens (creating the directory when allowed) the database and its families. An
  // existing database may hold more families than asked for; they are opened too.
  // Errors name the path and what to do (e.g. another process holds the lock).
  static StatusOr<std::unique_ptr<KvStore>> Open(const Options& options);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Applies `batch` atomically: all of it or none. REQUIRES: every family in the
  // batch was opened. After a failure the store is read-only (sticky error).
  Status Write(const WriteBatch& batch);
  // nullopt when the key is absent.
  StatusOr<std::optional<std::string>> Get(std::string_view family, std::string_view key) const;
  // One result per key, in order.
  StatusOr<std::vector<std::optional<std::string>>> MultiGet(std::string_view family,
                                                             const std::vector<std::string>& keys) const;
  // Calls `fn(key, value)` for every key starting with `prefix`, in key order, until
  // it returns false. The view is a consistent snapshot taken at the call.
  Status ScanPrefix(std::string_view family, std::string_view prefix,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Writes a consistent copy of the whole database (all families) into `dir`, which
  // must not exist yet; files are hard-linked where possible.
  Status Checkpoint(const std::string& dir) const;
  // Flushes memtables to SST files (tests, clean shutdown).
  Status Flush();
  // Secondary instances: reads the primary's new log and manifest entries so later
  // reads see its writes up to now. FailedPrecondition on a primary.
  Status TryCatchUpWithPrimary();

  // The sequence number of the newest write (RocksDB's, monotonic across reopen).
  // Checkpoint manifests record it (ModelManifest.behaviour_cache_sequence).
  uint64_t LatestSequence() const;

  // OK, or the first write error (sticky).
  Status health() const;
  const std::string& path() const;
  std::vector<std::string> families() const;
  // RocksDB's estimate of live keys in `family` (cheap; for gauges).
  int64_t EstimateKeys(std::string_view family) const;

 private:
  struct Impl;
  explicit KvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshet::store
