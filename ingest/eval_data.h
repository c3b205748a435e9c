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
#include <string>
#include <string_view>
#include <vector>

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

// FNV-1a 64 of `text`, never 0 (Freshet ids are non-zero): ids of categorical values.
uint64_t HashId(std::string_view text);

// Reads one line of a gzip (or plain) file opened with gzopen, without its line end;
// false at end of file or on a read error.
bool ReadGzLine(gzFile_s* file, std::string* line);

}  // namespace freshet::ingest
