// BehaviourCache on a real RocksDB in a temporary directory: the merge operator
// appends and trims (through memtable merges and after flush/compaction), MultiGet
// reads a batch of users, histories survive reopen, corrupt input is reported.
#include "store/behaviour_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace freshet::store {
namespace {

// n behaviours, items first_item.., times t0..; the other fields follow the item, so
// a suffix of one range equals the range starting at that item.
std::vector<Behaviour> Range(uint64_t first_item, int n, int64_t t0) {
  std::vector<Behaviour> v;
  for (int i = 0; i < n; ++i)
    v.push_back({first_item + i, t0 + i, static_cast<uint32_t>((first_item + i) % 7),
                 static_cast<uint32_t>(1000 + (first_item + i) % 1000)});
  return v;
}

class BehaviourCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("freshet_bc_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<KvStore> Open(int max_len) {
    KvStore::Options o;
    o.path = (dir_ / "db").string();
    BehaviourCache::Configure(&o, max_len);
    auto s = KvStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::filesystem::path dir_;
};

TEST_F(BehaviourCacheTest, EncodingRoundTripsAndIsFixedWidth) {
  const auto v = Range(1ull << 60, 3, -5);
  const std::string bytes = EncodeBehaviours(v);
  EXPECT_EQ(bytes.size(), 1 + 3 * kBehaviourRecordBytes);
  EXPECT_EQ(*DecodeBehaviours(bytes, 10), v);
  // Decoding keeps the newest max_len.
  EXPECT_EQ(*DecodeBehaviours(bytes, 2), std::vector<Behaviour>(v.begin() + 1, v.end()));
  EXPECT_EQ(DecodeBehaviours(bytes.substr(0, bytes.size() - 1), 10).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeBehaviours("", 10).status().code(), StatusCode::kDataLoss);
}

TEST_F(BehaviourCacheTest, MergeAppendsAndTrimsToMaxLen) {
  auto db = Open(/*max_len=*/5);
  BehaviourCache cache(db.get(), 5);
  ASSERT_TRUE(cache.Append(7, Range(100, 3, 0)).ok());
  EXPECT_EQ(*cache.Read(7), Range(100, 3, 0));
  // 3 + 4 = 7 > 5: the two oldest go.
  ASSERT_TRUE(cache.Append(7, Range(103, 4, 3)).ok());
  EXPECT_EQ(*cache.Read(7), Range(102, 5, 2));
  // An operand longer than max_len on its own keeps only its newest records.
  ASSERT_TRUE(cache.Append(7, Range(200, 8, 100)).ok());
  EXPECT_EQ(*cache.Read(7), Range(203, 5, 103));
  // Several operands in one batch, then through flush (base value in an SST) and more
  // operands in the memtable: the same suffix semantics.
  ASSERT_TRUE(db->Flush().ok());
  WriteBatch b;
  cache.Append(&b, 7, Range(300, 1, 200));
  cache.Append(&b, 7, Range(301, 2, 201));
  ASSERT_TRUE(db->Write(b).ok());
  auto expect = Range(206, 2, 106);
  for (const Behaviour& x : Range(300, 3, 200)) expect.push_back(x);
  EXPECT_EQ(*cache.Read(7), expect);
  ASSERT_TRUE(db->Flush().ok());
  EXPECT_EQ(*cache.Read(7), expect);
}

TEST_F(BehaviourCacheTest, ReplayedAndCorrectedBehavioursFoldInsteadOfDuplicating) {
  auto db = Open(/*max_len=*/50);
  BehaviourCache cache(db.get(), 50);
  ASSERT_TRUE(cache.Append(3, Range(10, 6, 0)).ok());
  ASSERT_TRUE(db->Flush().ok());
  // A replay after a restore appends the newest four again, plus one new behaviour.
  auto replay = Range(12, 5, 2);
  ASSERT_TRUE(cache.Append(3, replay).ok());
  EXPECT_EQ(*cache.Read(3), Range(10, 7, 0));
  // A late correction of one impression: same item and time, a new action bit and a
  // longer play time. It enriches the stored behaviour.
  Behaviour correction = Range(14, 1, 4)[0];
  correction.actions = 1u << 20;
  correction.play_ms = 999999;
  WriteBatch b;
  cache.Append(&b, 3, {correction});
  cache.Append(&b, 3, {correction});  // twice in one batch: still one behaviour
  ASSERT_TRUE(db->Write(b).ok());
  auto h = cache.Read(3);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 7u);
  EXPECT_EQ((*h)[4].actions, Range(14, 1, 4)[0].actions | (1u << 20));
  EXPECT_EQ((*h)[4].play_ms, 999999u);
  // The same item at another time is another engagement.
  ASSERT_TRUE(cache.Append(3, {{14, 77, 1, 1}}).ok());
  EXPECT_EQ(cache.Read(3)->size(), 8u);
}

TEST_F(BehaviourCacheTest, MultiReadReturnsEveryUserInOrder) {
  auto db = Open(100);
  BehaviourCache cache(db.get(), 100);
  WriteBatch b;
  for (uint64_t u = 1; u <= 50; ++u) cache.Append(&b, u * 1000003, Range(u * 10, static_cast<int>(u % 9) + 1, u));
  ASSERT_TRUE(db->Write(b).ok());
  std::vector<uint64_t> users;
  for (uint64_t u = 50; u >= 1; --u) users.push_back(u * 1000003);
  users.push_back(42);  // never seen
  auto all = cache.MultiRead(users);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), users.size());
  for (size_t i = 0; i + 1 < users.size(); ++i) {
    const uint64_t u = users[i] / 1000003;
    EXPECT_EQ((*all)[i], Range(u * 10, static_cast<int>(u % 9) + 1, u)) << "user " << u;
  }
  EXPECT_TRUE(all->back().empty());
}

TEST_F(BehaviourCacheTest, RestartKeepsTheCacheAndItsSequence) {
  uint64_t seq = 0;
  {
    auto db = Open(10);
    BehaviourCache cache(db.get(), 10);
    ASSERT_TRUE(cache.Append(1, Range(1, 6, 0)).ok());
    ASSERT_TRUE(cache.Append(1, Range(7, 6, 6)).ok());  // unflushed operands in the WAL
    seq = cache.sequence();
    EXPECT_GT(seq, 0u);
  }
  auto db = Open(10);
  BehaviourCache cache(db.get(), 10);
  EXPECT_EQ(*cache.Read(1), Range(3, 10, 2));
  EXPECT_EQ(cache.sequence(), seq);
  ASSERT_TRUE(cache.Append(1, Range(13, 1, 12)).ok());
  EXPECT_GT(cache.sequence(), seq);
  EXPECT_EQ(cache.Read(1)->back().item_id, 13u);
}

// The learner's staged appends: read on top of the committed history (trimmed as one
// history), moved into it by QueueCommit's batch, dropped by QueueDropStaged's.
TEST_F(BehaviourCacheTest, StagedAppendsReadOnTopCommitAndDrop) {
  auto db = Open(/*max_len=*/5);
  BehaviourCache committed(db.get(), 5), staged(db.get(), 5, /*staged=*/true);
  ASSERT_TRUE(committed.Append(1, Range(100, 3, 0)).ok());
  ASSERT_TRUE(staged.Append(1, Range(200, 4, 100)).ok());  // over max_len together
  ASSERT_TRUE(staged.Append(2, Range(300, 2, 0)).ok());    // nothing committed yet
  std::vector<Behaviour> one = Range(100, 3, 0), four = Range(200, 4, 100);
  one.insert(one.end(), four.begin(), four.end());
  const std::vector<Behaviour> user1(one.end() - 5, one.end());
  for (const BehaviourCache* c : {&committed, &staged}) {
    auto both = c->MultiRead({1, 2, 3});
    ASSERT_TRUE(both.ok()) << both.status();
    EXPECT_EQ((*both)[0], user1);
    EXPECT_EQ((*both)[1], Range(300, 2, 0));
    EXPECT_TRUE((*both)[2].empty());
  }
  // A dropped stage leaves the committed history as it was.
  WriteBatch drop;
  staged.QueueDropStaged(&drop);
  ASSERT_TRUE(db->Write(drop).ok());
  EXPECT_EQ(*staged.Read(1), Range(100, 3, 0));
  EXPECT_TRUE(staged.Read(2)->empty());
  // A committed stage reads the same as before the commit, and nothing stays staged.
  ASSERT_TRUE(staged.Append(1, Range(200, 4, 100)).ok());
  ASSERT_TRUE(staged.Append(2, Range(300, 2, 0)).ok());
  WriteBatch commit;
  ASSERT_TRUE(staged.QueueCommit(&commit).ok());
  ASSERT_TRUE(db->Write(commit).ok());
  EXPECT_EQ(*staged.Read(1), user1);
  EXPECT_EQ(*staged.Read(2), Range(300, 2, 0));
  int left = 0;
  ASSERT_TRUE(db->ScanPrefix(kBehaviourStagedFamily, "", [&](std::string_view, std::string_view) {
    ++left;
    return true;
  }).ok());
  EXPECT_EQ(left, 0);
}

TEST_F(BehaviourCacheTest, KeysAreFixedWidthBigEndian) {
  EXPECT_EQ(BehaviourCache::Key(1).size(), 9u);
  EXPECT_LT(BehaviourCache::Key(255), BehaviourCache::Key(256));  // byte order = numeric order
  EXPECT_LT(BehaviourCache::Key(1), BehaviourCache::Key(1ull << 56));
}

TEST_F(BehaviourCacheTest, CorruptValuesAreReportedNotMisread) {
  auto db = Open(10);
  BehaviourCache cache(db.get(), 10);
  WriteBatch b;
  b.Put(kBehaviourFamily, BehaviourCache::Key(9), "garbage");
  ASSERT_TRUE(db->Write(b).ok());
  auto r = cache.Read(9);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("user 9"), std::string::npos) << r.status();
}

TEST_F(BehaviourCacheTest, MergeIntoFamilyWithoutOperatorIsRejectedNotSticky) {
  KvStore::Options o;
  o.path = (dir_ / "plain").string();
  o.families = {"a"};
  auto db = KvStore::Open(o);
  ASSERT_TRUE(db.ok());
  WriteBatch b;
  b.Merge("a", "k", "v");
  Status s = (*db)->Write(b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("merge operator"), std::string::npos) << s;
  EXPECT_TRUE((*db)->health().ok());
}

// A serving replica's view: the learner's cache opened read-only as a secondary
// sees the learner's appends after TryCatchUpWithPrimary, never writes, and merges
// through the same operator (trim included).
TEST_F(BehaviourCacheTest, SecondaryReadsThePrimarysAppendsAfterCatchUp) {
  const std::string secondary_dir = (dir_ / "secondary").string();
  EXPECT_FALSE(BehaviourCache::OpenSecondary((dir_ / "db").string(), secondary_dir, 5).ok())
      << "no primary yet: an error, not a crash";
  auto primary = Open(5);
  ASSERT_NE(primary, nullptr);
  BehaviourCache writer(primary.get(), 5);
  ASSERT_TRUE(writer.Append(7, Range(100, 3, 1000)).ok());

  auto secondary = BehaviourCache::OpenSecondary((dir_ / "db").string(), secondary_dir, 5);
  ASSERT_TRUE(secondary.ok()) << secondary.status();
  BehaviourCache reader(secondary->get(), 5);
  auto h = reader.MultiRead({7, 8});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)[0], Range(100, 3, 1000));
  EXPECT_TRUE((*h)[1].empty());

  ASSERT_TRUE(writer.Append(7, Range(200, 4, 2000)).ok());  // 7 behaviours: trimmed to 5
  ASSERT_TRUE(writer.Append(8, Range(300, 1, 3000)).ok());
  EXPECT_EQ(*reader.Read(7), Range(100, 3, 1000)) << "not caught up yet";
  ASSERT_TRUE((*secondary)->TryCatchUpWithPrimary().ok());
  std::vector<Behaviour> expected = Range(102, 1, 1002);
  for (const Behaviour& b : Range(200, 4, 2000)) expected.push_back(b);
  EXPECT_EQ(*reader.Read(7), expected);
  EXPECT_EQ(*reader.Read(8), Range(300, 1, 3000));
  // After a flush the primary's data lives in SST files; the secondary follows.
  ASSERT_TRUE(primary->Flush().ok());
  ASSERT_TRUE(writer.Append(8, Range(301, 1, 3001)).ok());
  ASSERT_TRUE((*secondary)->TryCatchUpWithPrimary().ok());
  EXPECT_EQ(reader.Read(8)->size(), 2u);

  const Status write = reader.Append(9, Range(1, 1, 1));
  EXPECT_EQ(write.code(), StatusCode::kFailedPrecondition) << write;
  EXPECT_EQ(primary->TryCatchUpWithPrimary().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace freshet::store
