// DeviceEmbeddingStore against the CPU embedding path: two tables built with the same
// options, one trained through the store on the GPU, one by the CPU loops of
// cpu::Model (pooling, row gradients) and cpu::SparseOptimizer, for several steps
// with new ids arriving; pooled inputs each step and every row after SyncToHost must
// match. Tolerance 1e-5: element-wise float math, atomics reorder repeated-row sums.
#include <gtest/gtest.h>

#include <unordered_map>

#include "learner/cpu/optimizer.h"
#include "learner/cuda/embedding_store.h"
#include "tests/learner/cuda/parity_util.h"

// Inside testing:: so parity_util.h's helpers need no using-declarations.
namespace freshet::learner::cuda::testing {
namespace {


ModelConfig TwoSlots() {
  ModelConfig m;
  auto* s = m.add_sparse_slots();
  s->set_slot(3), s->set_dim(4), s->set_pooling(POOL_SUM);
  s = m.add_sparse_slots();
  s->set_slot(9), s->set_dim(3), s->set_pooling(POOL_MEAN);
  return m;
}

Batch RandomIds(cpu::Rng* rng, int batch, int vocab) {
  Batch b;
  b.size = batch;
  for (int s = 0; s < 2; ++s) {
    Batch::SparseSlot slot;
    slot.offsets.push_back(0);
    for (int i = 0; i < batch; ++i) {
      const int n = static_cast<int>(rng->Next() % 4);
      for (int j = 0; j < n; ++j) slot.ids.push_back(rng->Next() % vocab);
      slot.offsets.push_back(static_cast<int32_t>(slot.ids.size()));
    }
    b.sparse.push_back(std::move(slot));
  }
  return b;
}

TEST(CudaEmbeddingStoreTest, TrainsLikeTheCpuPath) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  const ModelConfig model = TwoSlots();
  SparseOptimizerConfig opt_config;  // Adagrad defaults
  cpu::EmbeddingTableOptions options;
  options.slot_dims = {4, 3};
  options.cms_width = 256;
  options.min_count = 2;  // some ids pool as zeros until seen twice
  options.state_init = opt_config.initial_accumulator();
  cpu::EmbeddingTable<float> gpu_table(options), cpu_table(options);
  auto store = DeviceEmbeddingStore::Create(model, &gpu_table, opt_config, ctx.get());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  cpu::SparseOptimizer<float> opt(opt_config);
  const int B = 24, ld = 9;  // x = [slot 3 (4) | slot 9 (3) | 2 other columns]
  cpu::Rng rng(31);
  DeviceBuffer<float> x;
  for (int step = 0; step < 4; ++step) {
    const Batch batch = RandomIds(&rng, B, 30 + 10 * step);  // the vocabulary grows: new rows each step
    const MatF dx = Random(&rng, B, ld);
    // CPU reference (cpu::Model::EmbedBatch + Backward for these slots).
    cpu_table.BeginBatch();
    MatF x_ref = MatF::Zero(B, ld);
    std::vector<cpu::Model<float>::SparseGrad> grads(2);
    for (int s = 0; s < 2; ++s) {
      const auto& slot = (*store)->slots()[s];
      std::unordered_map<int32_t, int32_t> local;
      std::vector<int32_t> occ;
      for (uint64_t id : batch.sparse[s].ids) {
        const cpu::RowId row = cpu_table.LookupOrAdmit(s, id, step);
        if (!row.valid()) { occ.push_back(-1); continue; }
        auto [it, inserted] = local.emplace(row.row, static_cast<int32_t>(grads[s].rows.size()));
        if (inserted) grads[s].rows.push_back(row);
        occ.push_back(it->second);
      }
      grads[s].grad = MatF::Zero(static_cast<int>(grads[s].rows.size()), slot.dim);
      const auto& off = batch.sparse[s].offsets;
      for (int b = 0; b < B; ++b) {
        const int n = off[b + 1] - off[b];
        const float scale = slot.mean && n > 0 ? 1.f / n : 1.f;
        for (int j = off[b]; j < off[b + 1]; ++j) {
          if (occ[j] < 0) continue;
          x_ref.row(b).segment(slot.column, slot.dim) +=
              Eigen::Map<const cpu::RowVec<float>>(cpu_table.Weights(grads[s].rows[occ[j]]), slot.dim);
          grads[s].grad.row(occ[j]) += scale * dx.row(b).segment(slot.column, slot.dim);
        }
        if (slot.mean && n > 0) x_ref.row(b).segment(slot.column, slot.dim) /= static_cast<float>(n);
      }
    }
    opt.Step(&cpu_table, grads);
    // GPU.
    ASSERT_TRUE(x.ResizeZero(static_cast<size_t>(B) * ld, ctx->compute()).ok());
    auto gdx = ToDevice(*ctx, dx);
    ASSERT_TRUE((*store)->Stage(batch, /*training=*/true, step).ok());
    ASSERT_TRUE((*store)->Forward(ld, x.data()).ok());
    ASSERT_TRUE((*store)->Backward(ld, gdx.data()).ok());
    ASSERT_TRUE((*store)->ApplySparseStep().ok());
    ExpectClose("x step " + std::to_string(step), x_ref, ToHost(*ctx, x, B, ld), 1e-5, 1e-5);
  }
  ASSERT_TRUE((*store)->SyncToHost().ok());
  EXPECT_EQ(gpu_table.stats().rows, cpu_table.stats().rows);
  int compared = 0;
  cpu_table.ForEachRow([&](const cpu::EmbeddingKey& key, const float* w) {
    const cpu::RowId row = gpu_table.Lookup(key.slot, key.id);
    ASSERT_TRUE(row.valid());
    const int stride = 2 * cpu_table.dim(key.slot);  // weights + Adagrad accumulator
    MatF a = Eigen::Map<const MatF>(w, 1, stride), b = Eigen::Map<const MatF>(gpu_table.Weights(row), 1, stride);
    ExpectClose("row", a, b, 1e-5, 1e-5);
    ++compared;
  });
  EXPECT_GT(compared, 20);
}

// An id evicted on the host and re-admitted into the same row number starts from
// fresh values on the GPU too, not from what the device trained before the eviction.
TEST(CudaEmbeddingStoreTest, ReadmittedRowStartsFresh) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  const ModelConfig model = TwoSlots();
  SparseOptimizerConfig opt_config;
  cpu::EmbeddingTableOptions options;
  options.slot_dims = {4, 3};
  options.cms_width = 256;
  options.ttl_ms = 10;
  options.state_init = opt_config.initial_accumulator();
  cpu::EmbeddingTable<float> table(options), fresh(options);
  auto store = DeviceEmbeddingStore::Create(model, &table, opt_config, ctx.get());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const int B = 1, ld = 9;
  Batch batch;  // one example: id 7 in slot 3, id 5 in slot 9
  batch.size = B;
  batch.sparse.resize(2);
  for (auto& slot : batch.sparse) slot.offsets = {0, 1};
  batch.sparse[0].ids = {7};
  batch.sparse[1].ids = {5};
  DeviceBuffer<float> x;
  auto step = [&](int64_t now_ms) {  // Stage starts the table's batch itself
    ASSERT_TRUE(x.ResizeZero(static_cast<size_t>(B) * ld, ctx->compute()).ok());
    ASSERT_TRUE((*store)->Stage(batch, /*training=*/true, now_ms).ok());
    ASSERT_TRUE((*store)->Forward(ld, x.data()).ok());
  };
  step(0);
  auto gdx = ToDevice(*ctx, MatF::Constant(B, ld, 1.f));
  ASSERT_TRUE((*store)->Backward(ld, gdx.data()).ok());
  ASSERT_TRUE((*store)->ApplySparseStep().ok());
  const cpu::RowId first = table.Lookup(0, 7);
  ASSERT_EQ(table.EvictExpired(20), 2);
  step(21);  // re-admitted: the host drew fresh values into the freed row
  ASSERT_EQ(table.Lookup(0, 7).row, first.row) << "the test needs the same row number";
  const cpu::RowId init = fresh.LookupOrAdmit(0, 7, 0);
  const MatF got = ToHost(*ctx, x, B, ld).leftCols(4);
  ExpectClose("re-admitted row", Eigen::Map<const MatF>(fresh.Weights(init), 1, 4), got, 0, 0);
}

}  // namespace
}  // namespace freshet::learner::cuda::testing
