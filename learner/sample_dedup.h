// SampleDedup: the learner's memory of sample_ids it has already trained, so that
// at-least-once delivery (replays after a crash, a joiner re-emitting after its own
// restart) becomes effectively-once training (DESIGN.md §4).
//
// Ids are remembered by a 64-bit FNV-1a hash of sample_id (a false "duplicate" needs
// a 64-bit collision among the ids inside the horizon: ~N²/2⁶⁵, 3e-8 for 10⁶ ids).
// The horizon is in STREAM time (sample event time), not wall time, so what is
// remembered depends only on the samples trained, and restore is exact:
//   an id is forgotten once newest_event_time − its event_time > horizon_ms,
//   or, past max_entries, the oldest-inserted ids are forgotten early (counted).
// A replay of a sample older than the horizon is trained again; size the horizon to
// cover the longest replay (ingest's checkpoint interval + correction horizon).
//
// Thread-safety: none; owned by the training thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/status.h"

namespace freshet::learner {

uint64_t SampleIdHash(std::string_view sample_id);

class SampleDedup {
 public:
  // REQUIRES: horizon_ms >= 0, max_entries >= 1.
  SampleDedup(int64_t horizon_ms, int64_t max_entries);

  bool Contains(uint64_t id_hash) const { return ids_.count(id_hash) > 0; }
  // Remembers a trained id (no-op if already remembered) and expires old ones.
  void Insert(uint64_t id_hash, int64_t event_time_ms);

  size_t size() const { return ids_.size(); }
  int64_t newest_event_time_ms() const { return newest_ms_; }
  // Ids forgotten before the horizon because of max_entries.
  int64_t forgotten_early() const { return forgotten_early_; }

  // Bit-exact save/restore (ids, insertion order, times, counters).
  std::string Save() const;
  // DataLoss when the bytes are truncated or corrupt; the object is unchanged then.
  [[nodiscard]] Status Load(std::string_view bytes);

 private:
  void Expire();

  int64_t horizon_ms_;
  int64_t max_entries_;
  struct Entry {
    uint64_t id;
    int64_t event_time_ms;
  };
  std::deque<Entry> order_;            // insertion order
  std::unordered_set<uint64_t> ids_;   // the same ids, for lookup
  int64_t newest_ms_ = INT64_MIN;
  int64_t forgotten_early_ = 0;
};

}  // namespace freshet::learner
