// SampleDedup: hash set + insertion-ordered expiry queue (see sample_dedup.h).
#include "learner/sample_dedup.h"

#include <algorithm>

#include "learner/cpu/serialize.h"

namespace freshet::learner {
namespace {
constexpr uint64_t kDedupMagic = 0x3150554445445246ull;  // "FRDEDUP1"
}  // namespace

uint64_t SampleIdHash(std::string_view sample_id) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : sample_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

SampleDedup::SampleDedup(int64_t horizon_ms, int64_t max_entries)
    : horizon_ms_(std::max<int64_t>(0, horizon_ms)), max_entries_(std::max<int64_t>(1, max_entries)) {}

void SampleDedup::Insert(uint64_t id_hash, int64_t event_time_ms) {
  newest_ms_ = std::max(newest_ms_, event_time_ms);
  if (ids_.insert(id_hash).second) order_.push_back({id_hash, event_time_ms});
  Expire();
}

void SampleDedup::Expire() {
  // Expiry walks the insertion order: an id inserted early but with a late event time
  // shields the ones behind it until it expires. That keeps ids a little longer than
  // the horizon, never shorter, which errs on the side of skipping a replay.
  while (!order_.empty() && newest_ms_ - order_.front().event_time_ms > horizon_ms_) {
    ids_.erase(order_.front().id);
    order_.pop_front();
  }
  while (static_cast<int64_t>(order_.size()) > max_entries_) {
    ids_.erase(order_.front().id);
    order_.pop_front();
    ++forgotten_early_;
  }
}

std::string SampleDedup::Save() const {
  cpu::ByteWriter w;
  w.Put(kDedupMagic);
  w.Put(newest_ms_);
  w.Put(forgotten_early_);
  w.Put<uint64_t>(order_.size());
  for (const Entry& e : order_) {
    w.Put(e.id);
    w.Put(e.event_time_ms);
  }
  return w.Release();
}

Status SampleDedup::Load(std::string_view bytes) {
  cpu::ByteReader r(bytes);
  uint64_t magic = 0, count = 0;
  int64_t newest = 0, forgotten = 0;
  RETURN_IF_ERROR(r.Get(&magic));
  if (magic != kDedupMagic) return DataLossError("not a dedup state (bad magic)");
  RETURN_IF_ERROR(r.Get(&newest));
  RETURN_IF_ERROR(r.Get(&forgotten));
  RETURN_IF_ERROR(r.Get(&count));
  if (count > bytes.size() / 16) return DataLossError("dedup state: entry count exceeds its bytes");
  std::deque<Entry> order;
  std::unordered_set<uint64_t> ids;
  ids.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    Entry e{};
    RETURN_IF_ERROR(r.Get(&e.id));
    RETURN_IF_ERROR(r.Get(&e.event_time_ms));
    if (!ids.insert(e.id).second) return DataLossError("dedup state: repeated id");
    order.push_back(e);
  }
  if (!r.done()) return DataLossError("dedup state has trailing bytes");
  order_ = std::move(order);
  ids_ = std::move(ids);
  newest_ms_ = newest;
  forgotten_early_ = forgotten;
  return Status::Ok();
}

}  // namespace freshet::learner
