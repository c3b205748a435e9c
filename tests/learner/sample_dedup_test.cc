// SampleDedup: horizon in stream time, the max-entries bound, exact save/restore.
#include "learner/sample_dedup.h"

#include <gtest/gtest.h>

namespace freshet::learner {
namespace {

TEST(SampleDedupTest, ForgetsIdsOlderThanTheHorizonInEventTime) {
  SampleDedup d(/*horizon_ms=*/3000, /*max_entries=*/100);
  const uint64_t a = SampleIdHash("a"), b = SampleIdHash("b"), c = SampleIdHash("c");
  d.Insert(a, 1000);
  d.Insert(b, 2000);
  EXPECT_TRUE(d.Contains(a));
  d.Insert(c, 4000);  // a is exactly 3000 old: kept
  EXPECT_TRUE(d.Contains(a));
  d.Insert(SampleIdHash("d"), 4001);  // a is 3001 old: forgotten
  EXPECT_FALSE(d.Contains(a));
  EXPECT_TRUE(d.Contains(b));
  EXPECT_TRUE(d.Contains(c));
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.forgotten_early(), 0);
  EXPECT_NE(SampleIdHash("a"), SampleIdHash("a#c:click"));
}

TEST(SampleDedupTest, MaxEntriesForgetsTheOldestAndCountsIt) {
  SampleDedup d(1'000'000, 3);
  for (int i = 0; i < 5; ++i) d.Insert(SampleIdHash("id" + std::to_string(i)), 100);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.forgotten_early(), 2);
  EXPECT_FALSE(d.Contains(SampleIdHash("id0")));
  EXPECT_TRUE(d.Contains(SampleIdHash("id4")));
  d.Insert(SampleIdHash("id4"), 200);  // re-insert: no new entry
  EXPECT_EQ(d.size(), 3u);
}

TEST(SampleDedupTest, SaveLoadIsExactAndCorruptionIsRefused) {
  SampleDedup d(5000, 1000);
  for (int i = 0; i < 100; ++i) d.Insert(SampleIdHash("x" + std::to_string(i)), 1000 + 97 * i);
  const std::string bytes = d.Save();
  SampleDedup e(5000, 1000);
  ASSERT_TRUE(e.Load(bytes).ok());
  EXPECT_EQ(e.Save(), bytes);
  EXPECT_EQ(e.size(), d.size());
  // Same future behaviour: the same ids expire.
  d.Insert(SampleIdHash("new"), 20000);
  e.Insert(SampleIdHash("new"), 20000);
  EXPECT_EQ(e.Save(), d.Save());

  SampleDedup f(5000, 1000);
  EXPECT_EQ(f.Load(bytes.substr(0, bytes.size() - 3)).code(), StatusCode::kDataLoss);
  EXPECT_EQ(f.Load("garbage-bytes-garbage").code(), StatusCode::kDataLoss);
  EXPECT_EQ(f.size(), 0u);  // unchanged after a failed load
}

}  // namespace
}  // namespace freshet::learner
