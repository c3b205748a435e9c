// PartitionJoin's persistence: checkpoints as changelog segments and snapshots in
// RocksDB (a temporary directory), loading them back, the older per-record layout,
// corruption, and the changelog's entry format.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "ingest/join_log.h"
#include "ingest/partition_join.h"
#include "store/kv_store.h"
#include "tests/ingest/join_test_fixture.h"

namespace freshet::ingest {
namespace {

using namespace jointest;

class JoinStoreTest : public JoinTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("freshet_join_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    store::KvStore::Options o;
    o.path = dir_.string();
    o.families = {PartitionJoin::kRecordFamily, PartitionJoin::kMetaFamily};
    store_ = std::move(store::KvStore::Open(o)).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Save() {
    store::WriteBatch b;
    join_->CollectChanges("imp", "lab", &b);
    ASSERT_TRUE(store_->Write(b).ok());
  }
  // Partition 0 as loaded from the store now.
  std::unique_ptr<PartitionJoin> Reload() {
    auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? std::move(loaded).value() : nullptr;
  }
  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> store_;
};

TEST_F(JoinStoreTest, RestoredStateContinuesExactlyLikeAnUninterruptedRun) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    // Reference: one run, no restart.
    Make(policy);
    auto feed_a = [&](PartitionJoin* j) {
      j->AddImpression(Imp("a", T), &out_);
      j->AddLabel(Lab("b", LABEL_CLICK, T + 1500), &out_);  // orphan at the checkpoint
      j->AddLabel(Lab("a", LABEL_CLICK, T + 1000), &out_);
      j->SetConsumed(true, 11);
      j->SetConsumed(false, 22);
    };
    auto feed_b = [&](PartitionJoin* j) {
      j->AddImpression(Imp("b", T + 500), &out_);
      j->AddLabel(Lab("a", LABEL_LIKE, T + 40000), &out_);  // late like for a
      j->AddLabel(Lab("x", LABEL_COLLECT, T + 45000), &out_);
      j->AddImpression(Imp("y", T + 45000), &out_);
    };
    feed_a(join_.get());
    feed_b(join_.get());
    auto reference = Canonical(out_);
    ASSERT_GE(reference.size(), 2u);

    // Interrupted: checkpoint after feed_a, drop the object, load, continue.
    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy);
    feed_a(join_.get());
    Save();
    auto before = out_;
    auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->next_offset(true), 11);
    EXPECT_EQ((*loaded)->next_offset(false), 22);
    EXPECT_EQ((*loaded)->orphan_labels(), 1u);
    EXPECT_EQ((*loaded)->watermark(), join_->watermark());
    join_ = std::move(loaded).value();
    feed_b(join_.get());
    EXPECT_EQ(Canonical(out_), reference);
    out_.clear();
  }
}

TEST_F(JoinStoreTest, LoadRefusesStateOfAnotherTaskLayout) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_tasks(2)->set_name("play_ms"); });
  auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find(dir_.string()), std::string::npos);
  // Another partition has no state: loads empty.
  auto empty = PartitionJoin::Load(*store_, 3, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->open_records(), 0u);
  EXPECT_EQ((*empty)->next_offset(true), -1);
}

TEST_F(JoinStoreTest, ForgottenRecordsAreGoneAfterReload) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_correction_horizon_ms(0); });
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  EXPECT_EQ(Reload()->open_records(), 1u);
  Tick(T + 31000);  // closes and forgets "a" (the tick impression stays open)
  Save();
  auto loaded = Reload();
  EXPECT_EQ(loaded->open_records(), 1u);
  EXPECT_EQ(loaded->closed_records(), 0u);
}

TEST_F(JoinStoreTest, RecordForgottenAndSeenAgainBetweenCheckpointsIsStoredLive) {
  Make(POLICY_WAIT, [](FreshetConfig* c) { c->mutable_ingest()->set_correction_horizon_ms(0); });
  join_->AddImpression(Imp("a", T), &out_);
  join_->AddImpression(Imp("b", T + 20000), &out_);
  join_->AddImpression(Imp("c", T + 21000), &out_);
  Tick(T + 31000);  // closes and forgets "a" while "b" and "c" are unsaved changes
  ASSERT_TRUE(Find("a").has_value());
  join_->AddImpression(Imp("a", T + 32000), &out_);  // the same id again: a new record
  Save();
  out_.clear();
  join_ = Reload();
  ASSERT_NE(join_, nullptr);
  EXPECT_EQ(join_->open_records(), 4u);  // a (the second), b, c and the tick impression
  Tick(T + 100000);
  ASSERT_TRUE(Find("a").has_value());
  EXPECT_EQ(Find("a")->event_time_ms(), T + 32000);
  EXPECT_TRUE(Find("b").has_value());
  EXPECT_TRUE(Find("c").has_value());
}

// Between two checkpoints one orphan is taken by its impression, one gains a label,
// and one expires and orphans again with another label: the second checkpoint's
// changelog holds each as it stands (deletions before the live entries).
TEST_F(JoinStoreTest, OrphansChangedBetweenCheckpointsReloadAsTheyStand) {
  Make(POLICY_WAIT);
  join_->AddLabel(Lab("taken", LABEL_CLICK, T + 1000), &out_);
  join_->AddLabel(Lab("grown", LABEL_CLICK, T + 30000), &out_);
  join_->AddLabel(Lab("again", LABEL_LIKE, T + 1000), &out_);
  Save();
  join_->AddImpression(Imp("taken", T + 500), &out_);
  join_->AddLabel(Lab("grown", LABEL_LIKE, T + 31000), &out_);
  Tick(T + 1000 + 60000 + 1000);  // "again" expires (TTL 60 s); "taken" closes with its click
  ASSERT_EQ(join_->orphan_labels(), 2u);
  join_->AddLabel(Lab("again", LABEL_CLICK, T + 62500), &out_);
  Save();
  ASSERT_TRUE(Find("taken").has_value());
  EXPECT_EQ(Find("taken")->label(0), 1);
  out_.clear();

  join_ = Reload();
  ASSERT_NE(join_, nullptr);
  EXPECT_EQ(join_->orphan_labels(), 3u);  // grown's two and again's new one; not taken's
  join_->AddImpression(Imp("grown", T + 29000), &out_);
  join_->AddImpression(Imp("again", T + 62000), &out_);
  Tick(T + 200000);
  ASSERT_TRUE(Find("grown").has_value());
  EXPECT_EQ(LabelValues(*Find("grown")), (std::vector<float>{1, 1, 0, 0}));
  ASSERT_TRUE(Find("again").has_value());
  // The click only: the expired like is gone (it would put like in the click's space).
  EXPECT_EQ(LabelValues(*Find("again")), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(Masks(*Find("again")), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(join_->orphan_labels(), 0u);
}

TEST_F(JoinStoreTest, ChangedRecordIsWrittenWithoutItsFeaturesAndReloadsWithThem) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy);
    Impression big = Imp("a", T);
    for (int i = 0; i < 200; ++i) big.mutable_sparse(0)->add_ids(1000 + i);  // features dominate the record
    join_->AddImpression(big, &out_);
    store::WriteBatch first;
    join_->CollectChanges("imp", "lab", &first);
    ASSERT_TRUE(store_->Write(first).ok());
    join_->AddLabel(Lab("a", LABEL_CLICK, T + 1000), &out_);  // changes the stored record
    store::WriteBatch second;
    join_->CollectChanges("imp", "lab", &second);
    ASSERT_TRUE(store_->Write(second).ok());
    EXPECT_LT(second.bytes() * 4, first.bytes()) << "the update carried the features again";

    out_.clear();
    join_ = Reload();
    ASSERT_NE(join_, nullptr);
    // After the reload, the next sample of "a" carries the features of the first,
    // full entry and the click of the update: under immediate the like's duplicate
    // (like is in its space because click is positive), otherwise the window's sample.
    if (policy == POLICY_IMMEDIATE) join_->AddLabel(Lab("a", LABEL_LIKE, T + 2000), &out_);
    Tick(T + 200000);
    std::optional<Sample> s = Find(policy == POLICY_IMMEDIATE ? "a#p:like" : "a");
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->sparse_size(), 1);
    EXPECT_EQ(s->sparse(0).ids_size(), 201);
    if (policy == POLICY_IMMEDIATE) {
      EXPECT_TRUE(s->mask(1));
      EXPECT_EQ(s->label(1), 1.0f);
    } else {
      EXPECT_TRUE(s->mask(0));
      EXPECT_EQ(s->label(0), 1.0f);
    }
  }
}

// Count of changelog segments stored for partition 0.
size_t SegmentCount(const store::KvStore& store) {
  size_t n = 0;
  const std::string prefix = JoinPartitionPrefix(0);
  Status s = store.ScanPrefix(PartitionJoin::kRecordFamily, prefix, [&](std::string_view key, std::string_view) {
    n += JoinLogSegmentSeq(prefix, key) >= 0;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return n;
}

TEST_F(JoinStoreTest, SnapshotsBoundTheChangelogAndKeepTheState) {
  for (LabelPolicy policy : {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE}) {
    SCOPED_TRACE(PolicyLabel(policy));
    // 60 rounds of an impression, its click and an orphan, one checkpoint each; the
    // watermark closes and forgets older records as it goes.
    auto feed = [&](PartitionJoin* j, int from, int to) {
      for (int i = from; i < to; ++i) {
        const int64_t t = T + i * 2000;
        j->AddImpression(Imp("r" + std::to_string(i), t), &out_);
        j->AddLabel(Lab("r" + std::to_string(i), LABEL_CLICK, t + 500), &out_);
        j->AddLabel(Lab("o" + std::to_string(i), LABEL_LIKE, t + 700), &out_);
      }
    };
    auto short_memory = [](FreshetConfig* c) {  // so records and orphans are forgotten within the run
      c->mutable_ingest()->set_correction_horizon_ms(4000);
      c->mutable_ingest()->set_orphan_ttl_ms(6000);
    };
    Make(policy, short_memory);
    feed(join_.get(), 0, 60);
    const auto reference = Canonical(out_);
    const size_t open = join_->open_records(), closed = join_->closed_records(), orphans = join_->orphan_labels();

    std::filesystem::remove_all(dir_);
    store_.reset();
    SetUp();
    out_.clear();
    Make(policy, short_memory);
    join_->SetSnapshotMinEntries(8);
    size_t most_segments = 0;
    for (int round = 0; round < 60; ++round) {
      feed(join_.get(), round, round + 1);
      Save();
      most_segments = std::max(most_segments, SegmentCount(*store_));
      if (round % 20 == 19) {  // restart from the store now and then
        join_ = Reload();
        join_->SetSnapshotMinEntries(8);
      }
    }
    EXPECT_EQ(Canonical(out_), reference);
    auto loaded = Reload();
    EXPECT_EQ(loaded->open_records(), open);
    EXPECT_EQ(loaded->closed_records(), closed);
    EXPECT_EQ(loaded->orphan_labels(), orphans);
    // Without snapshots there would be one segment per checkpoint (60).
    EXPECT_LT(most_segments, 20u);
    out_.clear();
  }
}

TEST_F(JoinStoreTest, LoadsPerRecordKeysAndFeaturesOfTheOlderLayoutAndReplacesThem) {
  Make(POLICY_WAIT);
  const std::string prefix = JoinPartitionPrefix(0);
  JoinRecord rec;
  *rec.mutable_impression() = Imp("a", T);
  OrphanLabels orphans;
  *orphans.add_labels() = Lab("b", LABEL_CLICK, T + 100);
  PartitionMeta meta;
  meta.set_task_layout(rules_->layout());
  meta.set_policy(POLICY_WAIT);
  meta.set_impressions_offset(5);
  meta.set_labels_offset(6);
  store::WriteBatch b;
  b.Put(PartitionJoin::kRecordFamily, prefix + "ra", rec.SerializeAsString());
  b.Put(PartitionJoin::kRecordFamily, prefix + "ob", orphans.SerializeAsString());
  b.Put(PartitionJoin::kMetaFamily, PartitionMetaKey(0), meta.SerializeAsString());
  ASSERT_TRUE(store_->Write(b).ok());

  join_ = Reload();
  EXPECT_EQ(join_->open_records(), 1u);
  EXPECT_EQ(join_->orphan_labels(), 1u);
  EXPECT_EQ(join_->next_offset(true), 5);
  Save();  // rewritten as a snapshot; the old keys are gone
  EXPECT_FALSE(store_->Get(PartitionJoin::kRecordFamily, prefix + "ra")->has_value());
  EXPECT_FALSE(store_->Get(PartitionJoin::kRecordFamily, prefix + "ob")->has_value());
  EXPECT_EQ(SegmentCount(*store_), 1u);
  join_ = Reload();
  EXPECT_EQ(join_->open_records(), 1u);
  join_->AddImpression(Imp("b", T + 50), &out_);  // joins the orphan click
  Tick(T + 40000);
  const std::optional<Sample> s = Find("b");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->label(0), 1.0f);
  // "a" was stored the way records were before JoinRecord.features: its features
  // inside the impression. They moved over on load and reach its sample.
  const std::optional<Sample> a = Find("a");
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->sparse_size(), 1);
  EXPECT_EQ(a->sparse(0).ids(0), 9u);
  ASSERT_EQ(a->dense_size(), 1);
  EXPECT_EQ(a->dense(0).values(0), 0.5f);
}

TEST_F(JoinStoreTest, CorruptSegmentIsDataLossNamingTheStore) {
  Make(POLICY_WAIT);
  join_->AddImpression(Imp("a", T), &out_);
  Save();
  store::WriteBatch b;
  b.Put(PartitionJoin::kRecordFamily, JoinLogSegmentKey(0, 0), std::string("r\x05" "ab", 4));  // id length 5, 2 bytes left
  ASSERT_TRUE(store_->Write(b).ok());
  auto loaded = PartitionJoin::Load(*store_, 0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(dir_.string()), std::string::npos);
  EXPECT_NE(loaded.status().message().find("segment 0 of partition 0"), std::string::npos) << loaded.status();
}

TEST(JoinLogTest, EntriesRoundTripInOrder) {
  std::string seg;
  Label l = Lab("x", LABEL_LIKE, T);
  OrphanLabels o;
  *o.add_labels() = l;
  const std::string long_id(300, 'q');  // a two-byte varint length
  AppendJoinLogEntry(JoinLogEntry::kOrphans, "x", &o, &seg);
  AppendJoinLogEntry(JoinLogEntry::kRecordDeleted, long_id, nullptr, &seg);
  std::vector<std::pair<JoinLogEntry, std::string>> seen;
  ASSERT_TRUE(ForEachJoinLogEntry(seg, "test", [&](JoinLogEntry t, std::string_view id, std::string_view payload) {
                seen.emplace_back(t, std::string(id));
                if (t == JoinLogEntry::kOrphans) {
                  OrphanLabels back;
                  EXPECT_TRUE(back.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
                  EXPECT_EQ(back.labels(0).kind(), LABEL_LIKE);
                } else {
                  EXPECT_TRUE(payload.empty());
                }
                return true;
              }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(JoinLogEntry::kOrphans, std::string("x")));
  EXPECT_EQ(seen[1], std::make_pair(JoinLogEntry::kRecordDeleted, long_id));
  EXPECT_EQ(ForEachJoinLogEntry(std::string_view(seg).substr(0, seg.size() - 3), "test",
                                [](JoinLogEntry, std::string_view, std::string_view) { return true; }).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(JoinLogSegmentSeq(JoinPartitionPrefix(3), JoinLogSegmentKey(3, 258)), 258);
  EXPECT_EQ(JoinLogSegmentSeq(JoinPartitionPrefix(3), JoinLogSegmentKey(4, 258)), -1);
}

}  // namespace
}  // namespace freshet::ingest
