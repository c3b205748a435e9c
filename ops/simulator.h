// TrafficSimulator: synthetic short-video traffic for `freshet run` and tests. Users
// and items have latent interest vectors; engagement probabilities follow their
// affinity, so a model can learn something real. Each impression gets delayed labels
// (click after seconds, follow after minutes) drawn from per-kind log-normal delays.
//
// Deterministic: the same config (seed, rates) and start time give the same events
// with the same ids, times and features, whatever clock drives AdvanceTo.
//
// Sparse slots: 0 user, 1 item, 2 author, 3 category, 4 region, 5 device,
// 6 hour of day, 7 item tags (1-3 ids). Dense slots 0-7, one value each: log
// duration, log popularity rank, user activity, observed item quality, sin/cos hour,
// position in request, log user tenure.
//
// Thread-safety: none; drive it from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <queue>
#include <random>
#include <vector>

#include "common/status.h"
#include "ingest/event_sink.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"

namespace freshet::ops {

using EventSink = ingest::EventSink;  // ingest/event_sink.h

class TrafficSimulator {
 public:
  static constexpr int kSparseSlots = 8;
  static constexpr int kDenseSlots = 8;

  TrafficSimulator(const SimulatorConfig& config, int64_t start_ms);

  // Emits, in time order, every impression whose time is <= now_ms and every label
  // due by then. Stops at the first sink error and returns it (nothing is skipped:
  // the failed event is emitted again by the next call).
  Status AdvanceTo(int64_t now_ms, EventSink* sink);

  struct Stats {
    uint64_t impressions = 0;
    uint64_t labels = 0;
    std::map<LabelKind, uint64_t> labels_by_kind;
  };
  const Stats& stats() const { return stats_; }
  size_t pending_events() const { return pending_.size(); }

 private:
  struct User {
    std::vector<float> latent;
    float bias, activity;
    uint32_t region, device, tenure_days;
  };
  struct Item {
    std::vector<float> latent;
    float bias, duration_s;
    uint32_t author, category, popularity_rank;
    std::vector<uint64_t> tags;
  };
  // An event waiting for its emission time. Impressions held back (early labels)
  // carry the whole message; labels carry only what they need.
  struct Pending {
    int64_t due_ms;
    uint64_t seq;  // tie-break for a stable order
    bool is_impression;
    Impression impression;
    Label label;
    bool operator>(const Pending& o) const { return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq; }
  };

  double Uniform();  // [0, 1)
  double Normal();
  double LogNormalDelayMs(LabelKind kind);
  uint32_t SampleItem();
  uint32_t SampleUser();
  Impression MakeImpression(uint64_t index, int64_t event_ms, const User& user, uint32_t user_index,
                            const Item& item, uint32_t item_index);
  void ScheduleLabels(const Impression& imp, const User& user, const Item& item);
  void Schedule(int64_t due_ms, Pending p);

  SimulatorConfig config_;
  int64_t start_ms_;
  std::mt19937_64 rng_;
  std::vector<User> users_;
  std::vector<Item> items_;
  std::vector<double> item_cdf_;  // by popularity rank
  std::vector<double> user_cdf_;  // by activity rank (= user index); empty: uniform
  std::vector<uint32_t> item_by_rank_;
  std::map<LabelKind, std::pair<double, double>> delays_;  // kind -> (ln median, sigma)
  uint64_t next_index_ = 0;  // next impression to generate
  uint64_t next_seq_ = 0;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> pending_;
  Stats stats_;
};

}  // namespace freshet::ops
