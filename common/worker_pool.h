// WorkerPool: a few persistent threads that split work: a CPU model's large layers
// (LearnerConfig.threads), the joiner's partitions (IngestConfig.join_threads). A
// call hands out `parts` pieces of work numbered 0..parts−1
// and returns when all are done; the caller's thread does its share, so threads = 1
// means no extra thread at all and plain sequential execution.
//
// Results do not depend on which thread runs a part: callers give every part a fixed,
// disjoint region of the output (a column block of a GEMM, a range of rows), so a
// model computes bit-identical values for every thread count as long as the split
// itself is fixed (expert_group.cc splits by `parts`, which is threads()).
//
//   WorkerPool pool(2);
//   pool.Run(pool.threads(), [&](int part) { /* write region `part` only */ });
//
// Workers start on the first Run (a model that never trains costs no thread). Each
// one spins briefly after a Run before sleeping, because a training step issues a few
// hundred Runs back to back and a futex wake-up per Run would eat the gain.
//
// Thread-safety: Run must be called from one thread at a time (the model's owner);
// `fn` runs concurrently on up to threads() threads and must not throw.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace freshet {

class WorkerPool {
 public:
  // REQUIRES: threads >= 1.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return threads_; }

  // Runs fn(part) for every part in [0, parts); part p runs on thread p % threads()
  // (thread 0 is the caller). Returns after every part has finished.
  void Run(int parts, const std::function<void(int)>& fn);

 private:
  void StartWorkers();
  void WorkerLoop(int index);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;   // workers wait here for a new generation
  std::condition_variable done_;   // the caller waits here for pending_ == 0
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};    // workers still running the current generation
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;  // valid while a Run is in progress
  int parts_ = 0;
};

}  // namespace freshet
