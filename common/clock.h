// Clock seam: every component that reads time or sleeps takes a Clock*, so tests can
// drive time by hand (FakeClock) instead of sleeping.
//
// Thread-safety: both implementations are safe to use from several threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace freshet {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall time: event times are compared with it).
  virtual int64_t NowMs() const = 0;
  // Microseconds on a monotonic scale, for measuring durations.
  virtual int64_t MonotonicUs() const = 0;
  virtual void SleepMs(int64_t ms) = 0;

  // The process's real clock. Stateless, so sharing it is safe.
  static Clock* Real();
};

// Another clock's wall time as of the last Tick(): a loop that handles events in
// batches ticks once per batch, and every event of the batch sees the same time,
// without a clock read per event. Durations (MonotonicUs) and sleeps go to the base.
// Tick() on one thread; NowMs() from any.
class BatchClock : public Clock {
 public:
  explicit BatchClock(Clock* base) : base_(base), now_ms_(base->NowMs()) {}
  void Tick() { now_ms_.store(base_->NowMs(), std::memory_order_relaxed); }
  int64_t NowMs() const override { return now_ms_.load(std::memory_order_relaxed); }
  int64_t MonotonicUs() const override { return base_->MonotonicUs(); }
  void SleepMs(int64_t ms) override { base_->SleepMs(ms); }

 private:
  Clock* base_;
  std::atomic<int64_t> now_ms_;
};

// Time moves only when the test says so. SleepMs blocks until another thread has
// advanced the clock far enough.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_us_(start_ms * 1000) {}

  int64_t NowMs() const override { return now_us_.load() / 1000; }
  int64_t MonotonicUs() const override { return now_us_.load(); }
  void SleepMs(int64_t ms) override;

  void AdvanceMs(int64_t ms);
  void SetMs(int64_t ms);
  // Threads currently blocked in SleepMs (lets tests wait until a sleeper is parked).
  int sleepers() const { return sleepers_.load(); }

 private:
  std::atomic<int> sleepers_{0};
  std::atomic<int64_t> now_us_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace freshet
