// RunQueue: a min-priority queue for items that mostly arrive in order, such as
// window closes (an impression's event time + the window: impressions come roughly in
// event-time order). Items not smaller than the newest in-order item join a sorted
// run (a deque: O(1) push and pop); the others go to a binary heap. The smallest item
// is at the front of one of the two. On in-order input a pop costs one comparison
// instead of a heap's ~2 log2(n), each of which may read two records' ids from
// memory when their times tie.
//
// Pops come in exactly the order a std::priority_queue with std::greater<> gives for
// the same strict order: the queue is a drop-in replacement, output order included.
//
// Thread-safety: none.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace freshet::ingest {

// T: a strict weak order by operator>.
template <class T>
class RunQueue {
 public:
  void push(T item) {
    if (run_.empty() || !(run_.back() > item)) {
      run_.push_back(std::move(item));
    } else {
      heap_.push_back(std::move(item));
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }
  }
  // REQUIRES: !empty()
  const T& top() const { return RunFirst() ? run_.front() : heap_.front(); }
  void pop() {
    if (RunFirst()) {
      run_.pop_front();
    } else {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      heap_.pop_back();
    }
  }
  bool empty() const { return run_.empty() && heap_.empty(); }
  size_t size() const { return run_.size() + heap_.size(); }
  // Replaces the contents with `items`, in any order.
  void Assign(std::vector<T> items) {
    std::sort(items.begin(), items.end(), [](const T& a, const T& b) { return b > a; });
    run_.assign(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    heap_.clear();
  }

 private:
  // The run's front is the smallest item (on ties either may go first: equal items
  // are interchangeable under the order).
  bool RunFirst() const { return heap_.empty() || (!run_.empty() && !(run_.front() > heap_.front())); }

  std::deque<T> run_;    // non-decreasing
  std::vector<T> heap_;  // min-heap by operator>
};

}  // namespace freshet::ingest
