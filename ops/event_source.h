// EventSource: what feeds `freshet run` (ops/run_command.cc) with raw impressions
// and labels: the traffic simulator (ops/simulator.h), or a replay of the
// KuaiRand-Pure log (ingest/kuairand_replay.h, the same reader `freshet replay`
// uses) when config.replay.dataset is "kuairand" (`freshet run --replay kuairand`).
//
// The replay paces log rows at replay.impressions_per_second of wall time (0: as
// fast as the sink takes them) and stamps each event, in log order, with the wall
// time it is sent, so ingest sees a live stream (its future-skew and age guards,
// the watermark and every freshness stage work on the wall clock). The log's label
// delays (play time) shrink by the speed-up: at 2,000 rows/s against the log's own
// ~0.2 rows/s, labels follow their impressions within milliseconds, well inside
// every task window, as in `freshet eval` where every label of a row counts.
// At the end of the log the source reports finished(); the caller then moves the
// watermark past the last windows (FlushWindowsAfter), as `freshet replay` does.
//
//   ASSIGN_OR_RETURN(std::string log, FindKuaiRandLog(config.replay(), data_dir));
//   ASSIGN_OR_RETURN(auto source, OpenKuaiRandSource(config.replay(), log, now_ms));
//   RETURN_IF_ERROR(source->AdvanceTo(now_ms, &sink));   // each tick
//
// Thread-safety: none; the caller serializes calls (run's main loop and its status
// handler share one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "ingest/event_sink.h"
#include "ingest/kafka_client.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

class EventSource {
 public:
  struct Stats {
    uint64_t impressions = 0;
    uint64_t labels = 0;
    std::map<LabelKind, uint64_t> labels_by_kind;
  };
  virtual ~EventSource() = default;

  // Emits every event due by wall time `now_ms`, in event-time order. Stops at the
  // first sink error and returns it; the failed event is offered again next call.
  virtual Status AdvanceTo(int64_t now_ms, ingest::EventSink* sink) = 0;
  virtual Stats stats() const = 0;
  // Events generated or read but not yet emitted (labels not yet due).
  virtual size_t pending_events() const = 0;
  // True once a finite source (a replay) has emitted everything.
  virtual bool finished() { return false; }
  // Event time of the newest event emitted (ms); 0 before the first.
  virtual int64_t newest_event_ms() const = 0;
  // One line for the start-up banner, e.g. "simulator seed=1 rate=2000 impressions/s".
  virtual std::string Describe() const = 0;
  // Where the status JSON puts this source's stats ("simulator" / "replay").
  virtual std::string kind() const = 0;
};

std::unique_ptr<EventSource> NewSimulatorSource(const SimulatorConfig& config, int64_t start_ms);

// The KuaiRand-Pure log to replay: replay.log_path when set, else
// `data_dir`/kuairand-pure/log_standard_4_25_to_4_30_pure.csv.gz. NotFound saying
// where it looked and how to point at the data (FRESHET_DATA_DIR, replay.log_path).
StatusOr<std::string> FindKuaiRandLog(const ReplayConfig& config, const std::string& data_dir);

// Opens the replay (loads the feature files beside the log); errors name the file.
StatusOr<std::unique_ptr<EventSource>> OpenKuaiRandSource(const ReplayConfig& config, const std::string& log_path,
                                                          int64_t start_ms);

// Moves every partition's watermark past the longest task window (plus allowed
// lateness) after `newest_event_ms`, so the joiner closes the stream's last windows
// (ingest/watermark_flush.h). Returns the flush's event time in *flushed_to.
Status FlushWindowsAfter(int64_t newest_event_ms, const FreshetConfig& config, ingest::KafkaProducer* producer,
                         int64_t* flushed_to);

}  // namespace freshet::ops
