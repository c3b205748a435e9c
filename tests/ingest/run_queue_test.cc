// RunQueue against std::priority_queue as the reference: the same pushes and pops
// must give the same items in the same order, for input in order, nearly in order
// (the join's case), in reverse, at random and with ties broken by a second key.
#include "ingest/run_queue.h"

#include <gtest/gtest.h>

#include <queue>
#include <random>
#include <string>
#include <vector>

namespace freshet::ingest {
namespace {

// Like the join's Due: a time, ties broken by an id (a strict total order while ids
// are unique).
struct Item {
  int64_t at;
  std::string id;
  bool operator>(const Item& o) const { return at != o.at ? at > o.at : id > o.id; }
};

using Reference = std::priority_queue<Item, std::vector<Item>, std::greater<>>;

// Pushes items whose times follow `next_time`, popping now and then (pop_every:
// about one pop per that many pushes), then drains; every pop is compared.
template <class NextTime>
void RunAgainstReference(uint32_t seed, int n, int pop_every, NextTime next_time) {
  std::mt19937 rng(seed);
  RunQueue<Item> q;
  Reference ref;
  int popped = 0;
  for (int i = 0; i < n; ++i) {
    Item item{next_time(i, rng), "r" + std::to_string(rng() % 1000000) + "-" + std::to_string(i)};
    q.push(item);
    ref.push(item);
    ASSERT_EQ(q.size(), ref.size());
    if (rng() % static_cast<uint32_t>(pop_every) == 0) {
      ASSERT_FALSE(q.empty());
      ASSERT_EQ(q.top().at, ref.top().at) << "pop " << popped;
      ASSERT_EQ(q.top().id, ref.top().id) << "pop " << popped;
      q.pop();
      ref.pop();
      ++popped;
    }
  }
  while (!ref.empty()) {
    ASSERT_FALSE(q.empty());
    ASSERT_EQ(q.top().id, ref.top().id) << "pop " << popped;
    q.pop();
    ref.pop();
    ++popped;
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
}

TEST(RunQueueTest, InOrderTimesWithTies) {
  // Ten items per time unit: ties everywhere, broken by id.
  RunAgainstReference(1, 5000, 3, [](int i, std::mt19937&) { return int64_t{i / 10}; });
}

TEST(RunQueueTest, NearlyInOrder) {
  // Each time up to 50 units behind the running count, as late impressions are.
  for (uint32_t seed = 0; seed < 5; ++seed) {
    RunAgainstReference(seed, 5000, 4, [](int i, std::mt19937& rng) { return int64_t{i} - static_cast<int64_t>(rng() % 50); });
  }
}

TEST(RunQueueTest, ReverseOrder) {
  RunAgainstReference(2, 3000, 5, [](int i, std::mt19937&) { return int64_t{10000 - i}; });
}

TEST(RunQueueTest, RandomTimes) {
  for (uint32_t seed = 0; seed < 5; ++seed) {
    RunAgainstReference(seed, 5000, 2, [](int, std::mt19937& rng) { return static_cast<int64_t>(rng() % 100); });
  }
}

TEST(RunQueueTest, EarlyOutlierSendsTheRestToTheHeap) {
  // A first item far in the future: every later one is smaller than the run's back.
  RunAgainstReference(3, 2000, 3, [](int i, std::mt19937&) { return i == 0 ? int64_t{1} << 40 : int64_t{i}; });
}

TEST(RunQueueTest, AssignTakesAnyOrder) {
  std::vector<Item> items;
  Reference ref;
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    items.push_back({static_cast<int64_t>(rng() % 200), "r" + std::to_string(i)});
    ref.push(items.back());
  }
  RunQueue<Item> q;
  q.push({-5, "dropped by Assign"});
  q.push({-9, "also dropped"});
  q.Assign(items);
  ASSERT_EQ(q.size(), items.size());
  // Pushes after Assign mix with the assigned items.
  q.push({50, "late"});
  ref.push({50, "late"});
  while (!ref.empty()) {
    ASSERT_EQ(q.top().id, ref.top().id);
    q.pop();
    ref.pop();
  }
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace freshet::ingest
