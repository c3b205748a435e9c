// Signal handling via sigtimedwait on a dedicated thread; see signals.h.
#include "common/signals.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/logging.h"

namespace freshet {

void StopFlag::Request(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (requested_.load()) return;
    reason_ = reason;
    requested_.store(true);
  }
  cv_.notify_all();
}

std::string StopFlag::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

bool StopFlag::WaitForMs(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return requested_.load(); });
  return requested_.load();
}

namespace {
sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

SignalWatcher::SignalWatcher(StopFlag* stop) : stop_(stop) {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] { Loop(); });
}

SignalWatcher::~SignalWatcher() {
  exiting_.store(true);
  if (thread_.joinable()) thread_.join();
}

void SignalWatcher::Loop() {
  sigset_t set = ShutdownSignals();
  timespec timeout{0, 100'000'000};  // 100 ms, to notice exiting_
  while (!exiting_.load()) {
    int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig < 0) continue;
    const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (stop_->requested()) {
      std::fprintf(stderr, "freshet: second %s while stopping, exiting now\n", name);
      std::_Exit(130);
    }
    LOG_INFO("signal_received").Kv("signal", name).Kv("action", "stopping cleanly");
    stop_->Request(name);
  }
}

}  // namespace freshet
