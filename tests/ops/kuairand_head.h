// The head of the shared KuaiRand-Pure log as a small data folder for tests that run
// the real replay (`freshet replay kuairand`, `freshet run --replay kuairand`): the
// first rows of the log gzipped under the log's own name, beside links to the
// feature files the replay reads from the same folder.
#pragma once

#include <filesystem>
#include <string>

#include "tests/util/shared_data.h"
#include "tests/util/subprocess.h"

namespace freshet::testing {

// The shared data set's folder (SKIP_WITHOUT_DATA on it first).
inline std::string KuaiRandDir() { return SharedDataPath("kuairand-pure"); }

inline constexpr const char* kKuaiRandLogName = "log_standard_4_25_to_4_30_pure.csv.gz";

// Writes the log's first `rows` rows (plus header) to dir/kKuaiRandLogName. Returns
// the clicks among them whose label (due at time_ms + play_time_ms) lands inside
// `click_window_ms`: the positives the `wait` policy must emit. -1 on failure.
inline int WriteKuaiRandHead(const std::filesystem::path& dir, int rows, int64_t click_window_ms) {
  std::filesystem::create_directories(dir);
  for (const char* f : {"user_features_pure.csv.gz", "video_features_basic_pure.csv.gz"})
    std::filesystem::create_symlink(KuaiRandDir() + "/" + f, dir / f);
  const std::string log = (dir / kKuaiRandLogName).string();
  auto r = RunShell("zcat '" + KuaiRandDir() + "/" + kKuaiRandLogName + "' | head -n " + std::to_string(rows + 1) +
                    " | gzip > '" + log + "' && zcat '" + log + "' | tail -n +2 | awk -F, '$6 == 1 && $13 <= " +
                    std::to_string(click_window_ms) + "' | wc -l");
  return r.exit_code == 0 ? std::stoi(r.output) : -1;
}

}  // namespace freshet::testing
