// KuaiRandReplay: turns the KuaiRand-Pure exposure log (data/kuairand-pure, see its
// README) into the raw event stream Freshet ingests. Each log row becomes one
// Impression at time_ms and its labels at time_ms + play_time_ms, emitted in
// event-time order (non-decreasing event_time_ms across both kinds).
//
// Ids: request_id "kr-<row index>" (0-based data row of the log, stable across
// replays), user_id = log user_id + 1, item_id = video_id + 1 (Freshet ids are
// non-zero).
//
// Labels: LABEL_CLICK (is_click), LABEL_LIKE, LABEL_FOLLOW, LABEL_COMMENT,
// LABEL_FORWARD, LABEL_HATE, LABEL_LONG_VIEW (long_view), value 1, only for flags that
// are 1; plus LABEL_PLAY_TIME with value play_time_ms for every row.
//
// Features. Categorical values that are not ids are hashed (FNV-1a 64 of the CSV
// text, never 0); ids are the column value + 1. Empty fields and users/videos absent
// from the feature files leave their slots out. video_features_statistic is not used:
// it aggregates the whole period and would leak the future.
//   Sparse slots:
//     0 user (user_id+1)            1 video (video_id+1)        2 tab (hash)
//     3 user_active_degree          4 is_lowactive_period        5 is_live_streamer
//     6 is_video_author             7 follow_user_num_range      8 fans_user_num_range
//     9 friend_user_num_range      10 register_days_range       11..28 onehot_feat0..17
//    29 author_id (+1)             30 video_type                31 upload_type
//    32 music_type                 33 tag (one id per tag, tag+1; "20,43" gives two)
//   Dense slots, one value each:
//     0 log1p(duration_ms / 1000)  1 log1p(follow_user_num)    2 log1p(fans_user_num)
//     3 log1p(friend_user_num)     4 log1p(register_days)
//
// Malformed rows (wrong column count, unparsable numbers, negative play time) are
// skipped and counted; the first few are kept as "FILE:LINE: reason". Rows whose time
// goes backwards are emitted anyway and counted in out_of_order_rows.
//
// Thread-safety: none; drive one instance from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "ingest/event_sink.h"
#include "schemas/events.pb.h"

struct gzFile_s;  // zlib

namespace freshet::ingest {

// Splits one CSV line (RFC 4180 quoting: "a,b" and "" for a quote) into `fields`.
// Returns false on an unterminated quote.
bool SplitCsvLine(std::string_view line, std::vector<std::string>* fields);

class KuaiRandReplay {
 public:
  static constexpr int kSparseSlots = 34;
  static constexpr int kDenseSlots = 5;
  static constexpr int kMaxErrorsKept = 5;

  struct Options {
    std::string log_path;
    // Empty: user_features_pure.csv.gz / video_features_basic_pure.csv.gz next to the log.
    std::string user_features_path;
    std::string video_features_path;
  };
  struct Stats {
    uint64_t rows = 0;       // data rows read from the log, malformed included
    uint64_t malformed_rows = 0;  // log and feature files together
    uint64_t out_of_order_rows = 0;
    uint64_t impressions = 0;
    uint64_t labels = 0;
    std::map<LabelKind, uint64_t> labels_by_kind;
    uint64_t users_with_features = 0;
    uint64_t videos_with_features = 0;
    std::vector<std::string> errors;  // the first kMaxErrorsKept, "FILE:LINE: reason"
  };

  // Loads both feature files and opens the log; NOT_FOUND / DATA_LOSS name the file.
  static StatusOr<std::unique_ptr<KuaiRandReplay>> Open(const Options& options);
  ~KuaiRandReplay();

  // Emits, in event-time order, every event due at or before `event_ms`. Stops at the
  // first sink error and returns it; the failed event is offered again next call.
  Status AdvanceTo(int64_t event_ms, EventSink* sink);
  // Event time of the next event to emit; nullopt once everything is emitted.
  std::optional<int64_t> NextEventMs();
  bool done() { return !NextEventMs().has_value(); }
  const Stats& stats() const { return stats_; }

 private:
  struct UserFeatures {
    std::vector<std::pair<uint32_t, uint64_t>> sparse;
    std::vector<std::pair<uint32_t, float>> dense;
  };
  struct VideoFeatures {
    std::vector<std::pair<uint32_t, uint64_t>> sparse;
  };
  struct PendingLabel {
    int64_t due_ms;
    uint64_t seq;
    Label label;
    bool operator>(const PendingLabel& o) const { return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq; }
  };
  struct Row {
    Impression impression;
    int64_t play_time_ms = 0;
    std::vector<LabelKind> positives;
  };

  explicit KuaiRandReplay(Options options);
  Status LoadUsers(const std::string& path);
  Status LoadVideos(const std::string& path);
  // Reads log rows until one parses; leaves next_row_ empty at end of file.
  void ReadNextRow();
  bool ParseRow(const std::vector<std::string>& f, uint64_t index, Row* row, std::string* error);
  void NoteError(const std::string& file, uint64_t line, const std::string& reason);

  Options options_;
  gzFile_s* log_ = nullptr;
  uint64_t log_line_ = 0;  // lines read, header included
  uint64_t data_rows_ = 0;
  std::vector<int> log_columns_;  // index of each needed column in the log header
  size_t log_fields_ = 0;        // columns in the log header
  std::unordered_map<uint64_t, UserFeatures> users_;
  std::unordered_map<uint64_t, VideoFeatures> videos_;
  std::optional<Row> next_row_;
  int64_t last_row_ms_ = INT64_MIN;
  uint64_t next_seq_ = 0;
  std::priority_queue<PendingLabel, std::vector<PendingLabel>, std::greater<PendingLabel>> pending_;
  std::vector<std::string> fields_;
  std::string line_;
  Stats stats_;
};

}  // namespace freshet::ingest
