// CheckpointStore on a temp-dir RocksDB: round trip, retention, fallback past a
// corrupt newest checkpoint, no checkpoint at all, and the caller's writes beside it.
#include "learner/checkpoint_store.h"

#include <gtest/gtest.h>

#include "store/kv_store.h"
#include "tests/learner/online_test_util.h"

namespace freshet::learner {
namespace {

using testutil::OpenStore;
using testutil::TempDir;

CheckpointData Data(int n, size_t state_bytes) {
  CheckpointData d;
  d.manifest.set_train_step(n);
  auto* o = d.manifest.add_input_offsets();
  o->set_topic("samples");
  o->set_partition(0);
  o->set_offset(100 * n);
  d.state.resize(state_bytes);
  for (size_t i = 0; i < state_bytes; ++i) d.state[i] = static_cast<char>((i * 131 + n) & 0xFF);
  d.dedup = "dedup" + std::to_string(n);
  d.loop = "loop" + std::to_string(n);
  return d;
}

TEST(CheckpointStoreTest, RoundTripRetentionAndEmptyStore) {
  TempDir dir("ckpt");
  auto db = OpenStore(dir.path);
  ASSERT_NE(db, nullptr);
  CheckpointStore store(db.get(), /*retained=*/2);
  auto none = store.ReadNewest();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  for (int n = 1; n <= 3; ++n) {
    auto v = store.Write(Data(n, 9 << 20));  // 9 MiB: three chunks
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, static_cast<uint64_t>(n));
  }
  auto versions = store.Versions();
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(*versions, (std::vector<uint64_t>{2, 3}));
  auto newest = store.ReadNewest();
  ASSERT_TRUE(newest.ok()) << newest.status();
  ASSERT_TRUE(newest->has_value());
  const CheckpointData expect = Data(3, 9 << 20);
  EXPECT_EQ((*newest)->manifest.version(), 3u);
  EXPECT_EQ((*newest)->manifest.train_step(), 3u);
  EXPECT_EQ((*newest)->manifest.input_offsets(0).offset(), 300);
  EXPECT_TRUE((*newest)->state == expect.state);
  EXPECT_EQ((*newest)->dedup, expect.dedup);
  EXPECT_EQ((*newest)->loop, expect.loop);
  // Reopening the database finds the same newest checkpoint.
  db.reset();
  db = OpenStore(dir.path);
  CheckpointStore again(db.get(), 2);
  auto reread = again.ReadNewest();
  ASSERT_TRUE(reread.ok() && reread->has_value());
  EXPECT_EQ((*reread)->manifest.version(), 3u);
}

TEST(CheckpointStoreTest, CorruptNewestFallsBackToThePreviousOne) {
  TempDir dir("ckpt_corrupt");
  auto db = OpenStore(dir.path);
  CheckpointStore store(db.get(), 3);
  ASSERT_TRUE(store.Write(Data(1, 1000)).ok());
  ASSERT_TRUE(store.Write(Data(2, 1000)).ok());
  store::WriteBatch flip;
  flip.Put(CheckpointStore::kFamily, "s/00000000000000000002/00000000", std::string(1000, 'x'));
  ASSERT_TRUE(db->Write(flip).ok());
  auto newest = store.ReadNewest();
  ASSERT_TRUE(newest.ok()) << newest.status();
  ASSERT_TRUE(newest->has_value());
  EXPECT_EQ((*newest)->manifest.version(), 1u);
  // Every checkpoint corrupt: DataLoss naming what to do.
  flip.Clear();
  flip.Put(CheckpointStore::kFamily, "d/00000000000000000001", "not the dedup bytes");
  ASSERT_TRUE(db->Write(flip).ok());
  auto bad = store.ReadNewest();
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("move the directory aside"), std::string::npos) << bad.status();
}

// CheckpointData.also (the TWIN appends a checkpoint commits) is written by Write,
// in its batch, and survives the checkpoint's own retention deletes.
TEST(CheckpointStoreTest, CallersWritesLandWithTheCheckpoint) {
  TempDir dir("ckpt_also");
  auto db = OpenStore(dir.path);
  ASSERT_NE(db, nullptr);
  CheckpointStore store(db.get(), /*retained=*/1);
  for (int n = 1; n <= 2; ++n) {
    CheckpointData d = Data(n, 16);
    d.also.Put(CheckpointStore::kFamily, "also/" + std::to_string(n), "with checkpoint " + std::to_string(n));
    ASSERT_TRUE(store.Write(std::move(d)).ok());
  }
  for (int n = 1; n <= 2; ++n) {
    auto got = db->Get(CheckpointStore::kFamily, "also/" + std::to_string(n));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->value_or("<missing>"), "with checkpoint " + std::to_string(n));
  }
}

TEST(CheckpointStoreTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
}

}  // namespace
}  // namespace freshet::learner
