// Real and fake clocks; see clock.h.
#include "common/clock.h"

#include <chrono>
#include <thread>

namespace freshet {
namespace {

class RealClock : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void SleepMs(int64_t ms) override {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

void FakeClock::SleepMs(int64_t ms) {
  const int64_t until = now_us_.load() + ms * 1000;
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_.fetch_add(1);
  cv_.wait(lock, [&] { return now_us_.load() >= until; });
  sleepers_.fetch_sub(1);
}

void FakeClock::AdvanceMs(int64_t ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    now_us_.fetch_add(ms * 1000);
  }
  cv_.notify_all();
}

void FakeClock::SetMs(int64_t ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    now_us_.store(ms * 1000);
  }
  cv_.notify_all();
}

}  // namespace freshet
