#include "common/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace freshet {
namespace {

using std::chrono::milliseconds;

TEST(BoundedQueueTest, FifoAndCapacity) {
  BoundedQueue<int> q(2);
  EXPECT_TRUE(q.Push(1));
  EXPECT_TRUE(q.Push(2));
  EXPECT_FALSE(q.Push(3, milliseconds(10)));  // full: times out, nothing dropped
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.full_waits(), 1u);
  EXPECT_EQ(*q.Pop(), 1);
  EXPECT_EQ(*q.Pop(), 2);
  EXPECT_FALSE(q.Pop(milliseconds(10)).has_value());
}

TEST(BoundedQueueTest, FullQueueBlocksProducerUntilConsumerPops) {
  BoundedQueue<int> q(1);
  ASSERT_TRUE(q.Push(1));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    q.Push(2);
    pushed = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(*q.Pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(*q.Pop(), 2);
}

TEST(BoundedQueueTest, CloseDrainsThenFails) {
  BoundedQueue<std::string> q(4);
  ASSERT_TRUE(q.Push(std::string("a")));
  q.Close();
  EXPECT_FALSE(q.Push(std::string("b")));
  EXPECT_EQ(*q.Pop(), "a");
  EXPECT_FALSE(q.Pop().has_value());
}

TEST(BoundedQueueTest, ManyProducersConsumersLoseNothing) {
  BoundedQueue<int> q(8);
  std::atomic<long> sum{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 3; ++p) threads.emplace_back([&, p] { for (int i = 1; i <= 1000; ++i) q.Push(i + p * 1000); });
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) consumers.emplace_back([&] { while (auto v = q.Pop()) sum += *v; });
  for (auto& t : threads) t.join();
  q.Close();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(sum.load(), 3000L * 3001 / 2);
}

}  // namespace
}  // namespace freshet
