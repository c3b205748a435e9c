// CheckpointStore: the learner's checkpoints in RocksDB (store/kv_store.h). One
// checkpoint = everything needed to resume training exactly, written in ONE
// WriteBatch (DESIGN.md §3–4), so a crash leaves either the old or the new one:
//
//   family "learner_checkpoints", keys by zero-padded version v:
//     s/<v>/<chunk>  Trainer::SaveState bytes in 4 MiB chunks (parameters, BN stats,
//                    optimizer state, embedding rows + admission sketch + eviction log)
//     d/<v>          SampleDedup::Save bytes
//     x/<v>          loop state (counters, stream time) + chunk count + CRC32C of the
//                    state and dedup bytes
//     m/<v>          the ModelManifest (version, train_step, consumed offsets, dense
//                    CRC32C, metrics); written last in the batch, read first
//   The caller's own writes (CheckpointData.also) go first in the same batch, so they
//   land exactly when the checkpoint does; older versions beyond `retained` are
//   deleted in it too.
//
// ReadNewest walks manifests from the newest down and returns the first checkpoint
// whose bytes verify, so one corrupt checkpoint falls back to the previous one.
//
// Thread-safety: as KvStore (any thread); one writer at a time is assumed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "schemas/model.pb.h"
#include "store/kv_store.h"

namespace freshet::learner {

struct CheckpointData {
  ModelManifest manifest;   // version is assigned by Write
  std::string state;        // Trainer::SaveState
  std::string dedup;        // SampleDedup::Save
  std::string loop;         // TrainingLoop's own counters (opaque here)
  store::WriteBatch also;   // more writes that must land with this checkpoint (TWIN's staged appends)
};

uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

class CheckpointStore {
 public:
  static constexpr const char* kFamily = "learner_checkpoints";
  // The families a KvStore must be opened with.
  static std::vector<std::string> Families() { return {kFamily}; }

  // `store` must outlive this object and have been opened with Families().
  CheckpointStore(store::KvStore* store, int retained);

  // Writes `data` as version newest+1 (or data.manifest.version if larger) in one
  // WriteBatch; returns the version written. Errors are the store's (sticky there).
  StatusOr<uint64_t> Write(CheckpointData data);
  // The newest checkpoint that verifies, or nullopt when there is none. DataLoss only
  // when checkpoints exist and none verifies (say which; the operator decides).
  StatusOr<std::optional<CheckpointData>> ReadNewest() const;
  // Versions present, ascending.
  StatusOr<std::vector<uint64_t>> Versions() const;

 private:
  StatusOr<CheckpointData> Read(uint64_t version) const;

  store::KvStore* store_;
  int retained_;
};

}  // namespace freshet::learner
