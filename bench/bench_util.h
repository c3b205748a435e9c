// Pieces the benchmarks share: timing, an event sink that keeps serialized events in
// memory (so producing can be timed without the simulator's cost), and failing with
// a message.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ingest/event_sink.h"

namespace freshet::bench {

using Steady = std::chrono::steady_clock;

inline double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

// Keeps (request_id, serialized event) pairs.
struct Collector : ingest::EventSink {
  std::vector<std::pair<std::string, std::string>> impressions, labels;
  Status OnImpression(const Impression& i) override {
    impressions.emplace_back(i.request_id(), i.SerializeAsString());
    return Status::Ok();
  }
  Status OnLabel(const Label& l) override {
    labels.emplace_back(l.request_id(), l.SerializeAsString());
    return Status::Ok();
  }
};

// Prints "NAME: status" to stderr and returns the exit code 1.
inline int Fail(const char* name, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", name, s.ToString().c_str());
  return 1;
}

}  // namespace freshet::bench
