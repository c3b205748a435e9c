// IdTable: heap nodes indexed by a string id in one flat open-addressing array
// (linear probing, backward-shift deletion, at most half full). The join's record map
// is looked up once per label and inserted into once per impression, over a working
// set of about 10^5 records per partition: with std::unordered_map each lookup chased
// the bucket array, the node and the node's cached hash past the record (three cache
// misses, and an integer division for the bucket). Here a lookup reads one slot (the
// full 64-bit hash beside the node pointer, so a mismatch almost never touches the
// node) and then the node's id.
//
// Nodes are allocated one by one and never move: a Node* stays valid until Release.
// Node must have a `std::string id` member and be default constructible. Hash maps
// an id to 64 bits (tests pass a colliding one to exercise long probe runs).
//
// Thread-safety: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace freshet::ingest {

template <class Node, class Hash = std::hash<std::string_view>>
class IdTable {
 public:
  IdTable() = default;
  IdTable(const IdTable&) = delete;
  IdTable& operator=(const IdTable&) = delete;
  ~IdTable() { Clear(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // An id's hash: tables with the same Hash can share one computation of it.
  static uint64_t HashOf(std::string_view id) { return static_cast<uint64_t>(Hash()(id)); }

  // The node with this id, or nullptr.
  Node* Find(std::string_view id) const { return Find(id, HashOf(id)); }
  // The same, given HashOf(id).
  Node* Find(std::string_view id, uint64_t h) const {
    if (size_ == 0) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == nullptr) return nullptr;
      if (s.hash == h && s.node->id == id) return s.node;
    }
  }

  // The node with this id, created (default-constructed, id moved in) when there is
  // none. second: whether it was created; `id` is left as it was when it was not.
  std::pair<Node*, bool> Emplace(std::string&& id) { return Emplace(std::move(id), HashOf(id)); }
  // The same, given HashOf(id).
  std::pair<Node*, bool> Emplace(std::string&& id, uint64_t h) {
    if (2 * (size_ + 1) > slots_.size()) Grow();
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == nullptr) break;
      if (s.hash == h && s.node->id == id) return {s.node, false};
    }
    auto node = std::make_unique<Node>();
    node->id = std::move(id);
    slots_[i] = {h, node.get()};
    ++size_;
    return {node.release(), true};
  }

  // Starts loading what a lookup of the id with hash `h` reads first: its home slot
  // (PrefetchSlot), or, once that slot is cached, the node it points at
  // (PrefetchNode; the node's first two cache lines). A lookup that comes a little
  // later then finds them in cache instead of waiting for memory; a wrong guess
  // (another id's node, after a collision) only costs the prefetch.
  void PrefetchSlot(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_]);
  }
  void PrefetchNode(uint64_t h) const {
    if (slots_.empty()) return;
    const Node* node = slots_[h & mask_].node;
    if (node == nullptr) return;
    __builtin_prefetch(node);
    __builtin_prefetch(reinterpret_cast<const char*>(node) + 64);
  }

  // Takes `node` out of the table and hands it back (its id can be moved from).
  // REQUIRES: node is in this table.
  std::unique_ptr<Node> Release(Node* node) {
    size_t i = HashOf(node->id) & mask_;
    while (slots_[i].node != node) i = (i + 1) & mask_;
    // Backward shift: move later entries of the probe run into the hole when their
    // home slot is not cyclically within (hole, their slot].
    for (size_t j = (i + 1) & mask_; slots_[j].node != nullptr; j = (j + 1) & mask_) {
      const size_t home = slots_[j].hash & mask_;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return std::unique_ptr<Node>(node);
  }

  // Calls f(Node&) for every node, in slot order.
  template <class F>
  void ForEach(F&& f) {
    for (const Slot& s : slots_) {
      if (s.node != nullptr) f(*s.node);
    }
  }

  void Clear() {
    for (Slot& s : slots_) delete s.node;
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    Node* node = nullptr;
  };

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : 2 * old.size(), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.node == nullptr) continue;
      size_t i = s.hash & mask_;
      while (slots_[i].node != nullptr) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace freshet::ingest
