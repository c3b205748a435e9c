// DeviceEmbeddingStore: host id resolution, pinned staging on the copy stream, and
// the device bag / scatter / sparse optimizer launches; see embedding_store.h.
#include "learner/cuda/embedding_store.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "learner/cuda/embedding_bag.cuh"
#include "learner/cuda/row_scatter.cuh"
#include "learner/cuda/sparse_optimizer.cuh"

namespace freshet::learner::cuda {
// Per slot s, ints holds [offsets (B+1) | occurrence (nnz) | rows (U) | upload rows]
// at the recorded positions; floats holds the uploaded rows' values back to back.
struct DeviceEmbeddingStore::Staging {
  PinnedBuffer<int32_t> ints;
  PinnedBuffer<float> floats;
  DeviceBuffer<int32_t> d_ints;
  DeviceBuffer<float> d_floats;
  std::vector<size_t> offsets_at, occurrence_at, rows_at, upload_rows_at, upload_values_at;
  std::vector<int> uploads;
  cudaEvent_t consumed = nullptr;  // compute is done reading this set
  ~Staging() {
    if (consumed != nullptr) cudaEventDestroy(consumed);
  }
};

StatusOr<std::unique_ptr<DeviceEmbeddingStore>> DeviceEmbeddingStore::Create(const ModelConfig& model,
                                                                             cpu::EmbeddingTable<float>* table,
                                                                             const SparseOptimizerConfig& optimizer,
                                                                             DeviceContext* ctx) {
  if (table->num_slots() != model.sparse_slots_size())
    return InvalidArgumentError("DeviceEmbeddingStore: table has " + std::to_string(table->num_slots()) +
                                " slots, learner.model.sparse_slots " + std::to_string(model.sparse_slots_size()));
  std::unique_ptr<DeviceEmbeddingStore> s(new DeviceEmbeddingStore());
  s->ctx_ = ctx;
  s->table_ = table;
  s->optimizer_ = optimizer;
  s->state_width_ = optimizer.type() == SPARSE_FTRL ? 2 : 1;
  int column = 0;
  for (int i = 0; i < model.sparse_slots_size(); ++i) {
    const auto& cfg = model.sparse_slots(i);
    if (cfg.dim() != table->dim(i))
      return InvalidArgumentError("learner.model.sparse_slots[" + std::to_string(cfg.slot()) + "].dim differs from the table");
    s->slots_.push_back({cfg.dim(), cfg.pooling() == POOL_MEAN, column});
    column += cfg.dim();
    const int stride = cfg.dim() * (1 + s->state_width_);
    if (table->RowBytes(i) != static_cast<int64_t>(stride * sizeof(float)) + cpu::EmbeddingTable<float>::kEntryOverheadBytes)
      return InvalidArgumentError("DeviceEmbeddingStore: the table's optimizer state width differs from learner.sparse_optimizer");
    s->stride_.push_back(stride);
  }
  const size_t n = s->slots_.size();
  s->arena_.resize(n);
  s->capacity_.assign(n, 0);
  s->device_tenancy_.resize(n);
  s->rows_host_.resize(n);
  s->grads_.resize(n);
  for (int k = 0; k < 2; ++k) {
    auto st = std::make_unique<Staging>();
    RETURN_IF_CUDA_ERROR(cudaEventCreateWithFlags(&st->consumed, cudaEventDisableTiming));
    RETURN_IF_CUDA_ERROR(cudaEventRecord(st->consumed, ctx->compute()));
    s->staging_.push_back(std::move(st));
  }
  return s;
}

DeviceEmbeddingStore::~DeviceEmbeddingStore() = default;

Status DeviceEmbeddingStore::EnsureCapacity(int slot, int32_t row) {
  if (row < capacity_[slot]) return Status::Ok();
  const int32_t cap = std::max<int32_t>({row + 1, 2 * capacity_[slot], 1024});
  DeviceBuffer<float> grown;
  RETURN_IF_ERROR(grown.Resize(static_cast<size_t>(cap) * stride_[slot]));
  if (capacity_[slot] > 0)
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(grown.data(), arena_[slot].data(),
                                         static_cast<size_t>(capacity_[slot]) * stride_[slot] * sizeof(float),
                                         cudaMemcpyDeviceToDevice, ctx_->compute()));
  RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(ctx_->compute()));  // the old arena is freed next
  arena_[slot] = std::move(grown);
  capacity_[slot] = cap;
  device_tenancy_[slot].resize(cap, 0);
  return Status::Ok();
}

Status DeviceEmbeddingStore::Stage(const Batch& batch, bool training, int64_t now_ms) {
  if (batch.sparse.size() != slots_.size()) return InvalidArgumentError("DeviceEmbeddingStore: batch slot count differs");
  const auto t0 = std::chrono::steady_clock::now();
  current_ = 1 - current_;
  Staging& st = *staging_[current_];
  // The set's buffers were last read by the batch before the previous one.
  RETURN_IF_CUDA_ERROR(cudaEventSynchronize(st.consumed));
  if (training) table_->BeginBatch();
  const size_t n = slots_.size();
  std::vector<std::vector<int32_t>> occurrence(n);
  std::vector<std::vector<int32_t>> uploads(n);
  for (size_t s = 0; s < n; ++s) {
    const auto& ids = batch.sparse[s].ids;
    if (batch.sparse[s].offsets.size() != static_cast<size_t>(batch.size) + 1)
      return InvalidArgumentError("DeviceEmbeddingStore: batch sparse offsets are not (B+1)");
    std::unordered_map<int32_t, int32_t> local;
    rows_host_[s].clear();
    occurrence[s].resize(ids.size());
    for (size_t j = 0; j < ids.size(); ++j) {
      const cpu::RowId row = training ? table_->LookupOrAdmit(static_cast<int>(s), ids[j], now_ms)
                                      : table_->Lookup(static_cast<int>(s), ids[j]);
      if (!row.valid()) {
        occurrence[s][j] = -1;
        continue;
      }
      auto [it, inserted] = local.emplace(row.row, static_cast<int32_t>(rows_host_[s].size()));
      if (inserted) {
        rows_host_[s].push_back(row.row);
        RETURN_IF_ERROR(EnsureCapacity(static_cast<int>(s), row.row));
        const uint64_t tenancy = table_->Tenancy(row);
        if (device_tenancy_[s][row.row] != tenancy) {  // new to the GPU, re-numbered or re-admitted
          uploads[s].push_back(row.row);
          device_tenancy_[s][row.row] = tenancy;
        }
      }
      occurrence[s][j] = it->second;
    }
  }
  resolve_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Lay the arrays out in the pinned set, then one copy each on the copy stream.
  size_t ints = 0, floats = 0;
  st.offsets_at.assign(n, 0), st.occurrence_at.assign(n, 0), st.rows_at.assign(n, 0);
  st.upload_rows_at.assign(n, 0), st.upload_values_at.assign(n, 0), st.uploads.assign(n, 0);
  for (size_t s = 0; s < n; ++s) {
    st.offsets_at[s] = ints, ints += batch.size + 1;
    st.occurrence_at[s] = ints, ints += occurrence[s].size();
    st.rows_at[s] = ints, ints += rows_host_[s].size();
    st.upload_rows_at[s] = ints, ints += uploads[s].size();
    st.upload_values_at[s] = floats, floats += uploads[s].size() * stride_[s];
    st.uploads[s] = static_cast<int>(uploads[s].size());
  }
  RETURN_IF_ERROR(st.ints.Resize(std::max<size_t>(ints, 1)));
  RETURN_IF_ERROR(st.floats.Resize(std::max<size_t>(floats, 1)));
  for (size_t s = 0; s < n; ++s) {
    std::copy(batch.sparse[s].offsets.begin(), batch.sparse[s].offsets.end(), st.ints.data() + st.offsets_at[s]);
    std::copy(occurrence[s].begin(), occurrence[s].end(), st.ints.data() + st.occurrence_at[s]);
    std::copy(rows_host_[s].begin(), rows_host_[s].end(), st.ints.data() + st.rows_at[s]);
    std::copy(uploads[s].begin(), uploads[s].end(), st.ints.data() + st.upload_rows_at[s]);
    float* dst = st.floats.data() + st.upload_values_at[s];
    for (int32_t row : uploads[s]) {
      const float* w = table_->Weights(cpu::RowId{static_cast<int32_t>(s), row});
      dst = std::copy(w, w + stride_[s], dst);
    }
  }
  RETURN_IF_ERROR(st.d_ints.Resize(std::max<size_t>(ints, 1)));
  RETURN_IF_ERROR(st.d_floats.Resize(std::max<size_t>(floats, 1)));
  RETURN_IF_ERROR(st.d_ints.CopyFromHost(st.ints.data(), ints, ctx_->copy()));
  RETURN_IF_ERROR(st.d_floats.CopyFromHost(st.floats.data(), floats, ctx_->copy()));
  RETURN_IF_ERROR(ctx_->RecordCopyDone());
  batch_ = batch.size;
  return Status::Ok();
}

Status DeviceEmbeddingStore::Forward(int ld, float* x) {
  Staging& st = *staging_[current_];
  RETURN_IF_ERROR(ctx_->WaitCopyDone());
  for (size_t s = 0; s < slots_.size(); ++s) {
    RETURN_IF_ERROR(ScatterRows(arena_[s].data(), stride_[s], st.d_ints.data() + st.upload_rows_at[s],
                                st.d_floats.data() + st.upload_values_at[s], st.uploads[s], ctx_->compute()));
    // A slot with nothing admitted yet has no arena (null): every occurrence is −1,
    // which the bag kernel pools as zeros without reading the arena.
    const BagShape shape{batch_, slots_[s].dim, stride_[s], slots_[s].column, ld, slots_[s].mean};
    RETURN_IF_ERROR(EmbeddingBagForward(shape, arena_[s].data(), st.d_ints.data() + st.offsets_at[s],
                                        st.d_ints.data() + st.occurrence_at[s], st.d_ints.data() + st.rows_at[s], x,
                                        ctx_->compute()));
  }
  RETURN_IF_CUDA_ERROR(cudaEventRecord(st.consumed, ctx_->compute()));
  return Status::Ok();
}

Status DeviceEmbeddingStore::Backward(int ld, const float* dx) {
  Staging& st = *staging_[current_];
  for (size_t s = 0; s < slots_.size(); ++s) {
    RETURN_IF_ERROR(grads_[s].ResizeZero(rows_host_[s].size() * slots_[s].dim, ctx_->compute()));
    const BagShape shape{batch_, slots_[s].dim, stride_[s], slots_[s].column, ld, slots_[s].mean};
    RETURN_IF_ERROR(EmbeddingBagBackward(shape, dx, st.d_ints.data() + st.offsets_at[s],
                                         st.d_ints.data() + st.occurrence_at[s], grads_[s].data(), ctx_->compute()));
  }
  RETURN_IF_CUDA_ERROR(cudaEventRecord(st.consumed, ctx_->compute()));
  return Status::Ok();
}

Status DeviceEmbeddingStore::ApplySparseStep() {
  Staging& st = *staging_[current_];
  for (size_t s = 0; s < slots_.size(); ++s) {
    const int rows = static_cast<int>(rows_host_[s].size());
    const int32_t* d_rows = st.d_ints.data() + st.rows_at[s];
    if (optimizer_.type() == SPARSE_FTRL) {
      const FtrlParams p{optimizer_.ftrl_alpha(), optimizer_.ftrl_beta(), optimizer_.ftrl_l1(), optimizer_.ftrl_l2()};
      RETURN_IF_ERROR(SparseFtrlUpdate(arena_[s].data(), stride_[s], slots_[s].dim, d_rows, grads_[s].data(), rows, p,
                                       ctx_->compute()));
    } else {
      RETURN_IF_ERROR(SparseAdagradUpdate(arena_[s].data(), stride_[s], slots_[s].dim, d_rows, grads_[s].data(), rows,
                                          optimizer_.learning_rate(), optimizer_.epsilon(), ctx_->compute()));
    }
  }
  RETURN_IF_CUDA_ERROR(cudaEventRecord(st.consumed, ctx_->compute()));
  return Status::Ok();
}

Status DeviceEmbeddingStore::SyncToHost() {
  RETURN_IF_ERROR(ctx_->Synchronize());
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (capacity_[s] == 0) continue;
    std::vector<float> rows(static_cast<size_t>(capacity_[s]) * stride_[s]);
    RETURN_IF_ERROR(arena_[s].CopyToHost(rows.data(), rows.size(), ctx_->compute()));
    for (int32_t r = 0; r < capacity_[s]; ++r) {
      const cpu::RowId row{static_cast<int32_t>(s), r};
      const uint64_t tenancy = device_tenancy_[s][r];
      if (tenancy == 0 || table_->Tenancy(row) != tenancy) continue;  // freed, or the host gave the row anew
      const float* src = rows.data() + static_cast<size_t>(r) * stride_[s];
      std::copy(src, src + stride_[s], table_->Weights(row));
    }
  }
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
