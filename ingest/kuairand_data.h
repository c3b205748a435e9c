// LoadKuaiRand: the KuaiRand-Pure log as labelled Samples for `freshet eval`, built
// from the same events `freshet replay kuairand` streams (KuaiRandReplay: features
// from the log row plus the user and basic video feature files; the whole-period
// video statistics are not used, they leak the future) and labelled with the same
// task rules the joiner applies (TaskRules: label kinds, thresholds, scales, sample
// spaces).
//
// One difference from the stream, on purpose: every label of a row counts, however
// long after the impression it arrives (the log is ground truth). The joiner under
// the `wait` policy closes each task's window_ms after the impression and treats
// later labels as late, so its samples can have fewer positives.
//
// Split: rows with time_ms < test_from_ms train, the rest test (a time split).
// kKuaiRandDay29Ms is the first time_ms the log dates 2022-04-29; the log's date
// column overlaps neighbouring days by about 45 minutes, so a handful of rows dated
// the 28th fall on the test side of this time boundary.
// Subset: keep_user_modulo = k > 1 keeps the users with user_id % k == 0.
//
//   KuaiRandDataOptions o;  o.log_path = ".../log_standard_4_25_to_4_30_pure.csv.gz";
//   StatusOr<EvalData> d = LoadKuaiRand(o, config);   // config: its tasks
//
// Thread-safety: a pure function of its options, the config and the files.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "ingest/eval_data.h"
#include "schemas/config.pb.h"

namespace freshet::ingest {

inline constexpr int64_t kKuaiRandDay29Ms = 1651158273312;

struct KuaiRandDataOptions {
  std::string log_path;
  int64_t test_from_ms = kKuaiRandDay29Ms;
  int keep_user_modulo = 1;
  int embedding_dim = 8;  // width of every sparse slot in EvalData.input
};

// Errors of KuaiRandReplay::Open and TaskRules::Create, unchanged.
StatusOr<EvalData> LoadKuaiRand(const KuaiRandDataOptions& options, const FreshetConfig& config);

}  // namespace freshet::ingest
