// Clean shutdown. StopFlag is the one thing long-running loops poll or wait on;
// SignalWatcher turns SIGINT/SIGTERM into StopFlag::Request. A second signal while
// stopping exits at once (code 130), for an operator who will not wait.
//
// Construct SignalWatcher in main() before starting any thread: it blocks the two
// signals in the calling thread, and threads created later inherit that mask, so only
// the watcher's thread ever receives them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace freshet {

class StopFlag {
 public:
  // Idempotent; the first reason is kept.
  void Request(const std::string& reason);
  bool requested() const { return requested_.load(); }
  std::string reason() const;
  // Waits up to `ms`; returns true if stop was requested.
  bool WaitForMs(int64_t ms);

 private:
  std::atomic<bool> requested_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string reason_;  // guarded by mu_
};

class SignalWatcher {
 public:
  explicit SignalWatcher(StopFlag* stop);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  void Loop();

  StopFlag* stop_;
  std::atomic<bool> exiting_{false};
  std::thread thread_;
};

}  // namespace freshet
