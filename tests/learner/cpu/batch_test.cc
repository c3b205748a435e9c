// BatchBuilder: Sample protos → column-wise Batch (CSR ids, dense, labels/masks/weights).
#include "learner/batch.h"

#include <gtest/gtest.h>

namespace freshet {
namespace {

ModelConfig Layout() {
  ModelConfig m;
  m.add_sparse_slots()->set_slot(10);
  m.add_sparse_slots()->set_slot(20);
  auto* d = m.add_dense_slots();
  d->set_slot(1), d->set_width(2);
  m.add_dense_slots()->set_slot(2);
  return m;
}

Sample MakeSample(std::vector<uint64_t> ids10, std::vector<uint64_t> ids20, int tasks = 2) {
  Sample s;
  if (!ids10.empty()) {
    auto* f = s.add_sparse();
    f->set_slot(10);
    for (auto id : ids10) f->add_ids(id);
  }
  auto* f = s.add_sparse();
  f->set_slot(20);
  for (auto id : ids20) f->add_ids(id);
  auto* d = s.add_dense();
  d->set_slot(2);
  d->add_values(7.0f);
  for (int t = 0; t < tasks; ++t) {
    s.add_label(t == 0 ? 1.0f : 0.0f);
    s.add_mask(t == 0);
  }
  return s;
}

TEST(BatchBuilderTest, BuildsCsrAndDenseColumns) {
  BatchBuilder builder(Layout(), 2);
  Sample a = MakeSample({1, 2}, {5});
  auto* d = a.add_dense();
  d->set_slot(1);
  d->add_values(0.5f), d->add_values(-0.5f);
  a.add_weight(2.0f), a.add_weight(3.0f);
  a.set_event_time_ms(100);
  ASSERT_TRUE(builder.Add(a).ok());
  Sample b = MakeSample({}, {6, 6, 7});  // empty bag in slot 10, missing dense slot 1
  auto* unknown = b.add_sparse();
  unknown->set_slot(99);
  unknown->add_ids(1);
  b.set_event_time_ms(50);
  ASSERT_TRUE(builder.Add(b).ok());
  Batch batch = builder.Finish();
  ASSERT_EQ(batch.size, 2);
  EXPECT_EQ(batch.sparse[0].ids, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(batch.sparse[0].offsets, (std::vector<int32_t>{0, 2, 2}));
  EXPECT_EQ(batch.sparse[1].ids, (std::vector<uint64_t>{5, 6, 6, 7}));
  EXPECT_EQ(batch.sparse[1].offsets, (std::vector<int32_t>{0, 1, 4}));
  ASSERT_EQ(batch.dense.cols(), 3);
  EXPECT_EQ(batch.dense(0, 0), 0.5f);
  EXPECT_EQ(batch.dense(0, 1), -0.5f);
  EXPECT_EQ(batch.dense(0, 2), 7.0f);
  EXPECT_EQ(batch.dense(1, 0), 0.0f);  // missing slot → zeros
  EXPECT_EQ(batch.labels(0, 0), 1.0f);
  EXPECT_EQ(batch.masks(1, 1), 0.0f);
  EXPECT_EQ(batch.weights(0, 1), 3.0f);
  EXPECT_EQ(batch.weights(1, 0), 1.0f);  // no weights → 1
  EXPECT_EQ(batch.max_event_time_ms, 100);
  EXPECT_EQ(builder.unknown_slot_features(), 1);
  EXPECT_EQ(builder.size(), 0) << "Finish starts a new batch";
}

TEST(BatchBuilderTest, RejectsMismatchedSamplesWithoutAppending) {
  BatchBuilder builder(Layout(), 2, /*expected_task_layout=*/42);
  Sample s = MakeSample({1}, {2}, /*tasks=*/3);
  s.set_task_layout(42);
  EXPECT_EQ(builder.Add(s).code(), StatusCode::kInvalidArgument);
  Sample wrong_layout = MakeSample({1}, {2});
  wrong_layout.set_task_layout(7);
  EXPECT_EQ(builder.Add(wrong_layout).code(), StatusCode::kInvalidArgument);
  Sample wide = MakeSample({1}, {2});
  wide.set_task_layout(42);
  wide.mutable_dense(0)->add_values(1.0f);  // slot 2 has width 1
  EXPECT_EQ(builder.Add(wide).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(builder.size(), 0);
  Batch b = builder.Finish();
  EXPECT_EQ(b.sparse[0].offsets, (std::vector<int32_t>{0}));
}

}  // namespace
}  // namespace freshet
