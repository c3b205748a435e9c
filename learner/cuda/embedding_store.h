// DeviceEmbeddingStore: the row storage of a cpu::EmbeddingTable on the GPU, with the
// id → row map left on the host (issue 8: "the id→row map may stay on the host at
// first"). The CPU table still decides admission, eviction and row numbers; the GPU
// holds the values that training updates.
//
//   Stage(batch)        host: resolve ids (LookupOrAdmit when training), write the
//                       CSR arrays into pinned memory, copy them on the COPY stream;
//                       rows the GPU has not held yet are uploaded with their initial
//                       host values (one scatter launch)
//   Forward(x)          compute stream waits for the copy, pools every slot into x
//   Backward(dx)        row gradients (U_s, dim) per slot, atomics over occurrences
//   ApplySparseStep()   sparse Adagrad / FTRL on the touched rows, on device
//   SyncToHost()        device rows → the host table (checkpoint, snapshot, serving)
//
// Staging uses two pinned + device buffer sets in turn, so the next batch's Stage
// (and its H2D copy) overlaps this batch's compute; an event per set keeps a set from
// being overwritten while kernels still read it.
//
// Row ownership: after a row's first upload the device copy is the truth, host values
// are stale until SyncToHost. The device remembers the host table's tenancy of each
// row it holds (EmbeddingTable::Tenancy): a row the host has since handed out again
// (to another id, or to the same id evicted and re-admitted with fresh values) is
// uploaded again, and SyncToHost writes back only rows whose tenancy still holds.
//
// Thread-safety: none; owned by the trainer thread like the CPU table.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "learner/batch.h"
#include "learner/cpu/embedding_table.h"
#include "learner/cuda/device.cuh"
#include "schemas/model_config.pb.h"

namespace freshet::learner::cuda {

class DeviceEmbeddingStore {
 public:
  struct Slot {
    int dim = 0;
    bool mean = false;
    int column = 0;  // first column in x
  };

  // slots from ModelConfig.sparse_slots in order (x = [slot 0 | slot 1 | ... | dense]).
  // InvalidArgument when the table's slot count or dims differ from the config.
  static StatusOr<std::unique_ptr<DeviceEmbeddingStore>> Create(const ModelConfig& model,
                                                                cpu::EmbeddingTable<float>* table,
                                                                const SparseOptimizerConfig& optimizer,
                                                                DeviceContext* ctx);
  ~DeviceEmbeddingStore();

  [[nodiscard]] Status Stage(const Batch& batch, bool training, int64_t now_ms);
  // x: device (B, ld). REQUIRES: Stage of the same batch.
  [[nodiscard]] Status Forward(int ld, float* x);
  // dx: device (B, ld). Fills grad(s) (U_s, dim).
  [[nodiscard]] Status Backward(int ld, const float* dx);
  [[nodiscard]] Status ApplySparseStep();
  [[nodiscard]] Status SyncToHost();

  const std::vector<Slot>& slots() const { return slots_; }
  const DeviceBuffer<float>& grad(int slot) const { return grads_[slot]; }
  int distinct_rows(int slot) const { return static_cast<int>(rows_host_[slot].size()); }
  int batch_size() const { return batch_; }
  // Seconds spent on the host resolving ids this run (the id→row map's cost).
  double resolve_seconds() const { return resolve_seconds_; }

 private:
  struct Staging;  // one pinned + device set; two alternate
  DeviceEmbeddingStore() = default;
  Status EnsureCapacity(int slot, int32_t row);

  DeviceContext* ctx_ = nullptr;
  cpu::EmbeddingTable<float>* table_ = nullptr;
  SparseOptimizerConfig optimizer_;
  int state_width_ = 1;
  std::vector<Slot> slots_;
  std::vector<int> stride_;                          // floats per arena row
  std::vector<DeviceBuffer<float>> arena_;           // per slot: capacity × stride
  std::vector<int32_t> capacity_;                    // rows per arena
  std::vector<std::vector<uint64_t>> device_tenancy_;  // per slot, per row: the host tenancy the GPU holds (0: none)
  std::vector<std::vector<int32_t>> rows_host_;      // per slot: distinct rows of the staged batch
  std::vector<DeviceBuffer<float>> grads_;           // per slot: (U, dim)
  std::vector<std::unique_ptr<Staging>> staging_;    // 2
  int current_ = 0;                                  // staging set of the staged batch
  int batch_ = 0;
  double resolve_seconds_ = 0;
};

}  // namespace freshet::learner::cuda
