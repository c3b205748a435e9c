// ModelUpdate ⇄ CPU model: what a published version carries (schemas/model.proto)
// and how a serving replica applies it.
//
//   FULL   every dense Param (by name, shape [rows, cols]), every BN running buffer
//          ("bn_state.<i>", shape [n]) and every embedding row, grouped per slot.
//   DELTA  every dense Param (the publisher then drops the unchanged ones with
//          DeltaTracker::DropUnchangedDense), all BN buffers (they are small and
//          move every training step), the touched rows still in the table, and the
//          evicted keys. Applying it deletes the evicted rows first, then writes the
//          rows sent, so a row evicted and admitted again in the same version ends
//          up present with its new weights.
//
// Every update's manifest carries the model's shape fingerprint (ModelFingerprint:
// parameter names and shapes, BN buffer sizes, slot widths, tasks) and the CRC32C of
// all dense parameters after the update (same bytes and order as the learner's
// checkpoint manifest). ApplyUpdate refuses an update whose fingerprint differs from
// the target model's (FailedPrecondition) and verifies the dense CRC afterwards
// (DataLoss), which also catches a delta applied onto the wrong base content.
//
// Serving keeps a model of its own, built by BuildServingModel, and applies each
// update onto a fresh copy (CopyModel) so that the model it serves never changes.
//
//   ModelManifest m;  m.set_version(8);  m.set_base_version(7);
//   ModelUpdate delta = MakeDeltaUpdate(trainer.model(), m, {.touched = keys, .evicted = gone});
//   auto next = BuildServingModel(config.learner(), tasks);
//   CopyModel(*served, next->get());
//   RETURN_IF_ERROR(ApplyUpdate(delta, next->get()));
//
// Thread-safety: free functions; the models passed in must not be mutated
// concurrently (reading a model while another thread runs inference on it is fine:
// inference changes only scratch buffers).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "learner/cpu/model.h"
#include "schemas/config.pb.h"
#include "schemas/model.pb.h"

namespace freshet::publisher {

using ServingModel = cpu::Model<float>;

// "shape-" + 16 hex digits; equal for two models iff they can exchange updates.
std::string ModelFingerprint(const ServingModel& model);
// CRC32C over every dense Param's values, in params() order.
uint32_t DenseCrc32c(const ServingModel& model);

// A FULL update of `model`. Copies `manifest` and sets its kind, base_version (0),
// model_fingerprint, dense_crc32c and sparse_rows_added (= rows in the table).
ModelUpdate MakeFullUpdate(const ServingModel& model, ModelManifest manifest);

struct DeltaContent {
  std::vector<cpu::EmbeddingKey> touched; // rows updated since the base version
  std::vector<cpu::EmbeddingKey> evicted; // rows deleted since the base version
};
// A DELTA update of `model`. Copies `manifest` (whose base_version the caller sets)
// and sets kind, fingerprint, dense_crc32c, sparse_rows_updated (= rows sent) and
// sparse_rows_deleted. Touched keys no longer in the table are skipped (evicted
// rows are listed in `evicted`); duplicate keys are sent once.
ModelUpdate MakeDeltaUpdate(const ServingModel& model, ModelManifest manifest, const DeltaContent& content);

// Applies `update` onto `model`. FULL REQUIRES a model without embedding rows (fresh
// from BuildServingModel) and must list every dense Param and BN buffer. Errors:
// FailedPrecondition (fingerprint mismatch, FULL onto a non-empty table),
// InvalidArgument (unknown tensor, wrong shape, bad slot or row width, missing
// tensors in a FULL), DataLoss (dense CRC mismatch after applying). On error the
// model is partly updated: apply onto a copy and discard it.
Status ApplyUpdate(const ModelUpdate& update, ServingModel* model);

// Builds an empty serving model for the learner config: same layout as the
// learner's, with an embedding table that never admits, evicts or budgets (a
// one-counter sketch, no TTL, no byte limit): it holds what updates put in it.
StatusOr<std::unique_ptr<ServingModel>> BuildServingModel(const LearnerConfig& learner,
                                                          const std::vector<TaskConfig>& tasks);

// Copies dense Params, BN buffers and every embedding row of `from` into `to`.
// REQUIRES: same fingerprint; `to` has no embedding rows.
void CopyModel(const ServingModel& from, ServingModel* to);

}  // namespace freshet::publisher
