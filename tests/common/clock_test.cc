#include "common/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/signals.h"

namespace freshet {
namespace {

TEST(FakeClockTest, AdvanceWakesSleepers) {
  FakeClock clock(1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepMs(500);
    woke = true;
  });
  while (clock.sleepers() == 0) std::this_thread::yield();
  clock.AdvanceMs(200);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(woke.load());
  clock.AdvanceMs(300);
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(clock.NowMs(), 1500);
}

TEST(RealClockTest, MonotonicMoves) {
  Clock* c = Clock::Real();
  int64_t a = c->MonotonicUs();
  c->SleepMs(2);
  EXPECT_GE(c->MonotonicUs() - a, 2000);
  EXPECT_GT(c->NowMs(), 1'600'000'000'000);
}

TEST(StopFlagTest, RequestWakesWaitersAndKeepsFirstReason) {
  StopFlag stop;
  EXPECT_FALSE(stop.WaitForMs(1));
  std::thread t([&] { stop.Request("SIGTERM"); });
  EXPECT_TRUE(stop.WaitForMs(5000));
  t.join();
  stop.Request("later");
  EXPECT_EQ(stop.reason(), "SIGTERM");
}

}  // namespace
}  // namespace freshet
