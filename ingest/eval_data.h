// EvalData: a labelled data set already in the learner's input form (Sample protos,
// the tasks they are labelled for and the slot layout they use), for `freshet eval`.
// Built by the readers beside this header: MakeSyntheticMtl (MMoE's synthetic
// regression pair, synthetic_mtl.h), LoadCensus (UCI census-income, census_data.h)
// and LoadKuaiRand (the KuaiRand-Pure log, kuairand_data.h).
//
//   StatusOr<EvalData> d = LoadCensus(options);
//   // d->train / d->test feed learner::RunEval; d->input's slots go into the model
//
// Thread-safety: plain value.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "ingest/event_sink.h"
#include "schemas/config.pb.h"
#include "schemas/model_config.pb.h"
#include "schemas/sample.pb.h"

struct gzFile_s;  // zlib

namespace freshet::ingest {

struct EvalData {
  std::string name;
  std::vector<TaskConfig> tasks;  // the labels' order = model task order
  ModelConfig input;              // only sparse_slots and dense_slots are set
  std::vector<Sample> train;      // offline training part
  std::vector<Sample> test;       // offline held-out part
  // true: train then test are in event-time order and test comes after train (a
  // time split); false: the rows have no time, the split is a seeded random one.
  bool time_ordered = false;
  std::string description;        // what was read and how it was split, one line
};

class TaskRules;

// Collects a replayed or simulated event stream (an EventSink) into one Sample per
// impression (ids, time, features) plus the labels that refer to it, then labels the
// samples with the joiner's window-closed rule: binary tasks are observed on every
// sample, regression tasks once a label arrives; a task's mask also needs its
// requires_positive task to be positive. With honour_windows, a label counts for a
// task only when it arrives within that task's window_ms of the impression, as the
// `wait` policy sees it; without, every label counts (logs whose labels have no delay).
// This matches PartitionJoin::Evaluate while a request has at most one label per
// kind, as the simulator and the KuaiRand replay emit; with several, any positive
// counts here and the first regression label to arrive wins, where the joiner takes
// the newest label per kind (value 0 retracts) and regression kinds in config order.
//
//   EvalCollector c;                       // or EvalCollector(keep) to filter impressions
//   replay->AdvanceTo(end, &c);
//   std::vector<Sample> s = c.TakeLabelled(rules, /*honour_windows=*/false);
//
// Thread-safety: none; one producer thread.
class EvalCollector : public EventSink {
 public:
  // Impressions for which keep returns false are dropped, and later their labels.
  explicit EvalCollector(std::function<bool(const Impression&)> keep = {}) : keep_(std::move(keep)) {}
  Status OnImpression(const Impression& imp) override;
  Status OnLabel(const Label& label) override;
  size_t size() const { return samples_.size(); }
  // The samples in impression order, labelled and stamped with rules' layout and
  // ORIGIN_WINDOW_CLOSED; the collector is empty afterwards.
  std::vector<Sample> TakeLabelled(const TaskRules& rules, bool honour_windows);

 private:
  struct Observed {
    LabelKind kind;
    float value;
    int64_t delay_ms;  // label time minus impression time
  };
  std::function<bool(const Impression&)> keep_;
  std::vector<Sample> samples_;
  std::vector<std::vector<Observed>> labels_;
  std::unordered_map<std::string, size_t> index_;
};

// FNV-1a 64 of `text`, never 0 (Freshet ids are non-zero): ids of categorical values.
uint64_t HashId(std::string_view text);

// Reads one line of a gzip (or plain) file opened with gzopen, without its line end;
// false at end of file or on a read error.
bool ReadGzLine(gzFile_s* file, std::string* line);

}  // namespace freshet::ingest
