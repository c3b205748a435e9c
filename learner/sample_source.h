// SampleSource: where the online learner reads serialized Samples from. The learner
// library does not link Kafka (DESIGN.md §2: learner depends on store, not ingest);
// the daemon supplies a Kafka consumer-group implementation (ops/learn_command.cc,
// NewKafkaSampleSource) and unit tests an in-memory one.
//
// Contract (the librdkafka consumer loop, STYLE.md): records of one partition come
// in offset order; Commit is advisory (the learner's own checkpoint holds the offsets
// it resumes from, see on_assign); a rebalance calls on_assign again.
//
// Thread-safety: every method is called from one thread at a time (the learner's
// consumer thread, or the thread that stops it after joining it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace freshet::learner {

struct SourceRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string value;  // a serialized freshet::Sample
};

struct SourceOffset {
  int32_t partition = 0;
  int64_t offset = -1;  // the next offset to read; < 0: the group's committed one
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Begins consuming. `on_assign` is called on every assignment before records of
  // those partitions are returned, and may overwrite each start offset.
  virtual Status Start(std::function<void(std::vector<SourceOffset>*)> on_assign) = 0;
  // One record, nullopt on timeout. An error is fatal for the source.
  virtual StatusOr<std::optional<SourceRecord>> Poll(int timeout_ms) = 0;
  // Records progress in the source (Kafka group offsets), for lag tools.
  virtual Status Commit(const std::vector<SourceOffset>& offsets) = 0;
  // UNAVAILABLE when the source cannot be reached (readiness).
  virtual Status CheckReachable(int timeout_ms) = 0;
  // Stops consuming (leaves the group). Idempotent.
  virtual Status Close() = 0;
};

}  // namespace freshet::learner
