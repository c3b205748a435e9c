// WorkerPool: generation counter + spin-then-sleep hand-off (see worker_pool.h).
#include "common/worker_pool.h"

#include <chrono>

#include "common/check.h"

namespace freshet {
namespace {

// How long a thread busy-waits for the next Run / for its peers before sleeping.
// Long enough to bridge the gap between two layers of one step, short enough that
// an idle learner does not hold a core.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

WorkerPool::WorkerPool(int threads) : threads_(threads) { CHECK_GE(threads, 1); }

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void WorkerPool::StartWorkers() {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

void WorkerPool::Run(int parts, const std::function<void(int)>& fn) {
  if (threads_ == 1 || parts <= 1) {
    for (int p = 0; p < parts; ++p) fn(p);
    return;
  }
  if (workers_.empty()) StartWorkers();
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    parts_ = parts;
    pending_.store(threads_ - 1);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (int p = 0; p < parts; p += threads_) fn(p);
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  while (pending_.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() < deadline) CpuRelax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_.load() == 0; });
  }
  fn_ = nullptr;
}

void WorkerPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < deadline)
      CpuRelax();
    const std::function<void(int)>* fn;
    int parts;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (stop_.load()) return;
      fn = fn_;
      parts = parts_;
    }
    for (int p = index; p < parts; p += threads_) (*fn)(p);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
  }
}

}  // namespace freshet
