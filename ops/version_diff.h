// VersionDiff: what changed between two published model versions, for
// `freshet ops diff V1 V2` (ops/ops_command.cc). The learner daemon serves it at
// GET /v1/diff?from=V1&to=V2[&format=text] (RegisterVersionDiff), reading both
// versions from the publisher's snapshot store (publisher/snapshot_store.h) as FULL
// updates, so a diff across deltas and retention cuts compares whole models.
//
// Per dense tensor: L2 norm of (to − from), L2 norms of both sides and the relative
// change ‖to − from‖ / ‖from‖; tensors present on one side only, or whose shape
// changed, are listed as added / removed / reshaped. Per embedding table (slot):
// rows added (in `to` only), removed (in `from` only, e.g. evicted), changed (any
// value differs) and unchanged, with the L2 norm of the changed rows' differences.
// Metrics: every metric either manifest recorded at cut time (auc/<task>,
// log_loss/<task>, ...), both values side by side.
//
//   ASSIGN_OR_RETURN(ModelUpdate a, snapshots.Materialize(3));
//   ASSIGN_OR_RETURN(ModelUpdate b, snapshots.Materialize(7));
//   ASSIGN_OR_RETURN(ModelManifest ma, snapshots.Manifest(3));
//   ASSIGN_OR_RETURN(ModelManifest mb, snapshots.Manifest(7));
//   ASSIGN_OR_RETURN(VersionDiff d, DiffVersions(a, b, ma, mb));
//   std::string text = DiffText(d);
//
// Thread-safety: the functions are pure; RegisterVersionDiff's handler reads the
// snapshot store, which is safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/admin_http.h"
#include "common/status.h"
#include "publisher/snapshot_store.h"
#include "schemas/model.pb.h"

namespace freshet::ops {

struct TensorDiff {
  enum class Change { kUnchanged, kChanged, kAdded, kRemoved, kReshaped };
  std::string name;
  std::vector<int64_t> shape;  // `to`'s shape (`from`'s when removed)
  Change change = Change::kUnchanged;
  double l2_diff = 0;   // ‖to − from‖ (kChanged / kUnchanged only)
  double l2_from = 0;   // ‖from‖ (0 when added)
  double l2_to = 0;     // ‖to‖ (0 when removed)
  double relative = 0;  // l2_diff / l2_from; +inf when from is all zeros and to is not
};

struct TableDiff {
  uint32_t slot = 0;
  uint32_t dim = 0;
  uint64_t added = 0;      // rows in `to` only
  uint64_t changed = 0;    // rows in both with some value different
  uint64_t removed = 0;    // rows in `from` only
  uint64_t unchanged = 0;
  double l2_diff = 0;      // ‖to − from‖ over the changed rows
};

struct MetricDiff {
  std::string name;  // e.g. "auc/click"
  std::optional<double> from, to;
};

struct VersionDiff {
  ModelManifest from, to;  // as stored (kind, base and row counts of the version itself)
  std::vector<TensorDiff> tensors;  // sorted by name
  std::vector<TableDiff> tables;    // sorted by slot
  std::vector<MetricDiff> metrics;  // sorted by name
};

const char* ChangeName(TensorDiff::Change change);

// Compares two FULL updates (SnapshotStore::Materialize). `from_manifest` and
// `to_manifest` are the versions' stored manifests, reported as they are.
// InvalidArgument when a slot's embedding width differs between the two.
StatusOr<VersionDiff> DiffVersions(const ModelUpdate& from_full, const ModelUpdate& to_full,
                                   const ModelManifest& from_manifest, const ModelManifest& to_manifest);

// The diff as a JSON object (fields as in the structs above) and as the table
// `freshet ops diff` prints.
std::string DiffJson(const VersionDiff& diff);
std::string DiffText(const VersionDiff& diff);

// GET /v1/diff?from=V1&to=V2[&format=text] on `admin`: 200 with the diff; 400 when a
// version is missing or not a number; 404 naming the version that is not stored (and
// the versions that are). Call before admin->Start(). `snapshots` must outlive it.
void RegisterVersionDiff(AdminServer* admin, const publisher::SnapshotStore* snapshots);

}  // namespace freshet::ops
