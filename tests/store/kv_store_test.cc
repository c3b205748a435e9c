// KvStore on a real RocksDB in a temporary directory: families, atomic batches that
// survive reopen, MultiGet, prefix scans, checkpoints, errors that name the path.
#include "store/kv_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

namespace freshet::store {
namespace {

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("freshet_kv_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<KvStore> Open(std::vector<std::string> families = {"a", "b"}) {
    KvStore::Options o;
    o.path = (dir_ / "db").string();
    o.families = std::move(families);
    auto s = KvStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::filesystem::path dir_;
};

TEST_F(KvStoreTest, BatchAcrossFamiliesIsDurableAcrossReopen) {
  {
    auto db = Open();
    WriteBatch b;
    b.Put("a", "k1", "v1");
    b.Put("b", "k1", "other");
    b.Put("a", "k2", "v2");
    b.Delete("a", "k2");
    ASSERT_TRUE(db->Write(b).ok());
  }
  auto db = Open();
  EXPECT_EQ(**db->Get("a", "k1"), "v1");
  EXPECT_EQ(**db->Get("b", "k1"), "other");
  EXPECT_FALSE(db->Get("a", "k2")->has_value());
  EXPECT_FALSE(db->Get("default", "k1")->has_value());
}

TEST_F(KvStoreTest, BatchNamingUnknownFamilyWritesNothing) {
  auto db = Open();
  WriteBatch b;
  b.Put("a", "k", "v");
  b.Put("nope", "k", "v");
  Status s = db->Write(b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nope"), std::string::npos) << s;
  EXPECT_FALSE(db->Get("a", "k")->has_value());  // all or nothing
  EXPECT_TRUE(db->health().ok());                // a rejected batch is not a store failure
}

TEST_F(KvStoreTest, MultiGetAndPrefixScan) {
  auto db = Open();
  WriteBatch b;
  for (int i = 0; i < 20; ++i) b.Put("a", (i < 10 ? "p1/" : "p2/") + std::to_string(100 + i), std::to_string(i));
  ASSERT_TRUE(db->Write(b).ok());
  auto got = db->MultiGet("a", {"p1/100", "zzz", "p2/119"});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ(*(*got)[0], "0");
  EXPECT_FALSE((*got)[1].has_value());
  EXPECT_EQ(*(*got)[2], "19");
  std::vector<std::string> keys;
  ASSERT_TRUE(db->ScanPrefix("a", "p2/", [&](std::string_view k, std::string_view) {
                  keys.emplace_back(k);
                  return true;
                }).ok());
  ASSERT_EQ(keys.size(), 10u);
  EXPECT_EQ(keys.front(), "p2/110");
  EXPECT_EQ(keys.back(), "p2/119");
  int seen = 0;
  ASSERT_TRUE(db->ScanPrefix("a", "p1/", [&](std::string_view, std::string_view) { return ++seen < 3; }).ok());
  EXPECT_EQ(seen, 3);  // stops when the callback says so
}

TEST_F(KvStoreTest, DeleteRange) {
  auto db = Open();
  WriteBatch b;
  for (char c = 'a'; c <= 'f'; ++c) b.Put("b", std::string(1, c), "x");
  b.DeleteRange("b", "b", "e");
  ASSERT_TRUE(db->Write(b).ok());
  std::string left;
  ASSERT_TRUE(db->ScanPrefix("b", "", [&](std::string_view k, std::string_view) {
                  left += k;
                  return true;
                }).ok());
  EXPECT_EQ(left, "aef");
}

TEST_F(KvStoreTest, CheckpointIsAConsistentCopy) {
  auto db = Open();
  WriteBatch b;
  b.Put("a", "k", "before");
  ASSERT_TRUE(db->Write(b).ok());
  const std::string cp = (dir_ / "cp").string();
  ASSERT_TRUE(db->Checkpoint(cp).ok());
  b.Clear();
  b.Put("a", "k", "after");
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ(db->Checkpoint(cp).code(), StatusCode::kAlreadyExists);
  KvStore::Options o;
  o.path = cp;
  o.families = {"a"};
  auto copy = KvStore::Open(o);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(**(*copy)->Get("a", "k"), "before");
  EXPECT_EQ(**db->Get("a", "k"), "after");
  // The copy keeps every family, including ones not asked for.
  auto fams = (*copy)->families();
  EXPECT_NE(std::find(fams.begin(), fams.end(), "b"), fams.end());
}

TEST_F(KvStoreTest, SecondOpenNamesPathAndWhatToDo) {
  auto db = Open();
  KvStore::Options o;
  o.path = (dir_ / "db").string();
  auto again = KvStore::Open(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable) << again.status();
  EXPECT_NE(again.status().message().find(o.path), std::string::npos);
  EXPECT_NE(again.status().message().find("another process"), std::string::npos) << again.status();
}

TEST_F(KvStoreTest, UnwritableDirectoryIsAnError) {
  KvStore::Options o;
  o.path = "/proc/freshet_cannot_be_here/db";
  auto db = KvStore::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find(o.path), std::string::npos) << db.status();
}

}  // namespace
}  // namespace freshet::store
