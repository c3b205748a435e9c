// SnapshotStore: the publisher's model versions in RocksDB (store/kv_store.h), in the
// column family "snapshots" of the learner's store. One version = its ModelUpdate
// payload (FULL: every dense tensor and embedding row; DELTA: what changed since
// base_version) and its ModelManifest, written in ONE WriteBatch with the manifest
// last, so a version exists exactly when its manifest does (DESIGN.md §3–4):
//
//   family "snapshots", keys by zero-padded version v:
//     p/<v>/<chunk>  the serialized ModelUpdate in 4 MiB chunks
//     x/<v>          chunk count, byte count, CRC32C of the payload
//     m/<v>          the ModelManifest (also inside the payload); listed without
//                    reading payloads
//     z/pin          the pinned version ("" or absent: not pinned)
//
// Retention (same batch as each write): keep the newest `retain_full` FULL versions
// and every version after the oldest of them; the pinned version's chain (its FULL
// and the deltas up to it) is never deleted. Materialize(V) rebuilds version V as a
// FULL update: the newest FULL ≤ V with the deltas after it applied in order (a
// DELTA must name the version before it as base, else DataLoss).
//
//   ASSIGN_OR_RETURN(auto snapshots, SnapshotStore::Open(db, /*retain_full=*/3));
//   update.mutable_manifest()->set_version(snapshots->newest_version() + 1);
//   RETURN_IF_ERROR(snapshots->Write(update));
//   ASSIGN_OR_RETURN(ModelUpdate full, snapshots->Materialize(v));
//
// Thread-safety: one writer (Write, SetPin) at a time; reads (List, Read,
// Materialize, newest_version, pinned) from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "schemas/model.pb.h"

namespace freshet::store {
class KvStore;
}

namespace freshet::publisher {

// Applies `delta` (a DELTA onto `full`'s version, or a FULL that replaces it) to the
// FULL update `full`: dense tensors replaced by name, rows upserted by (slot, id),
// evicted rows removed; the result's manifest is delta's with kind FULL, base 0 and
// row counts of the whole model. Rows come out sorted by (slot, id).
// InvalidArgument when a tensor's shape or a slot's width changes.
Status ApplyUpdateToFull(const ModelUpdate& delta, ModelUpdate* full);

class SnapshotStore {
 public:
  static constexpr const char* kFamily = "snapshots";
  // The families a KvStore must be opened with.
  static std::vector<std::string> Families() { return {kFamily}; }

  // Reads the manifests present (so version numbers continue after a restart).
  // `store` must outlive the result and have been opened with Families().
  static StatusOr<std::unique_ptr<SnapshotStore>> Open(store::KvStore* store, int retain_full);

  // Writes `update` as version update.manifest().version(), which must exceed
  // newest_version() (InvalidArgument otherwise), then applies retention.
  Status Write(const ModelUpdate& update);
  // As Write, with `payload` = update.SerializeAsString() already made by the caller.
  Status Write(const ModelUpdate& update, const std::string& payload);
  // Manifests present, ascending by version; `pinned` set on the pinned one.
  StatusOr<std::vector<ModelManifest>> List() const;
  // The manifest of version v (no payload read). NotFound when absent.
  StatusOr<ModelManifest> Manifest(uint64_t version) const;
  // The stored update of version v. NotFound when absent; DataLoss when its bytes
  // do not verify.
  StatusOr<ModelUpdate> Read(uint64_t version) const;
  // Version v as a FULL update (see the header comment). NotFound when v or the
  // FULL it builds on is gone.
  StatusOr<ModelUpdate> Materialize(uint64_t version) const;
  // The newest version that materializes (corrupt ones are skipped, logged), or
  // nullopt when none is stored.
  StatusOr<std::optional<ModelUpdate>> MaterializeNewest() const;

  // 0 when none was ever written (in the retained window).
  uint64_t newest_version() const;
  std::optional<uint64_t> newest_full_version() const;
  // Pins `version` (which must exist) or clears the pin (nullopt); persisted.
  Status SetPin(std::optional<uint64_t> version);
  std::optional<uint64_t> pinned() const;

 private:
  SnapshotStore(store::KvStore* store, int retain_full) : store_(store), retain_full_(retain_full) {}
  // Versions strictly below this are deleted by retention after adding `version`.
  uint64_t RetentionCut(uint64_t version, UpdateKind kind) const;

  store::KvStore* store_;
  int retain_full_;
  mutable std::mutex mu_;
  std::map<uint64_t, UpdateKind> kinds_;  // guarded by mu_: version → kind, as stored
  std::optional<uint64_t> pinned_;        // guarded by mu_
};

}  // namespace freshet::publisher
