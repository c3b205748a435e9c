// BoundedQueue<T>: a blocking multi-producer multi-consumer FIFO with a hard capacity.
// A full queue makes producers wait (backpressure), it never drops; how often a
// producer had to wait is counted so it can be exported as a metric. Close() wakes
// everyone: pushes then fail, pops drain what is left and then fail.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "common/check.h"

namespace freshet {

template <typename T>
class BoundedQueue {
 public:
  // REQUIRES: capacity > 0
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) { CHECK_GT(capacity, 0u); }

  // Blocks while full. Returns false (and leaves `item` unmoved) if the queue is
  // closed or `timeout` passes first.
  bool Push(T& item, std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    std::unique_lock<std::mutex> lock(mu_);
    if (items_.size() >= capacity_ && !closed_) {
      ++full_waits_;
      auto ready = [&] { return items_.size() < capacity_ || closed_; };
      if (timeout == std::chrono::milliseconds::max()) {
        not_full_.wait(lock, ready);
      } else if (!not_full_.wait_for(lock, timeout, ready)) {
        return false;
      }
    }
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  bool Push(T&& item, std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    return Push(item, timeout);
  }

  // Blocks while empty. Returns nullopt once closed and drained, or on timeout.
  std::optional<T> Pop(std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [&] { return !items_.empty() || closed_; };
    if (timeout == std::chrono::milliseconds::max()) {
      not_empty_.wait(lock, ready);
    } else if (!not_empty_.wait_for(lock, timeout, ready)) {
      return std::nullopt;
    }
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  // How many Push calls found the queue full and had to wait.
  uint64_t full_waits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return full_waits_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;     // guarded by mu_
  bool closed_ = false;     // guarded by mu_
  uint64_t full_waits_ = 0;  // guarded by mu_
};

}  // namespace freshet
