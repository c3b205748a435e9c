// KuaiRandReplay; see kuairand_replay.h.
#include "ingest/kuairand_replay.h"

#include "ingest/eval_data.h"

#include <zlib.h>

#include <charconv>
#include <cmath>
#include <filesystem>

namespace freshet::ingest {
namespace {

constexpr const char* kLogColumns[] = {"user_id", "video_id", "time_ms", "is_click", "is_like", "is_follow",
                                       "is_comment", "is_forward", "is_hate", "long_view", "play_time_ms",
                                       "duration_ms", "tab"};
enum LogCol { kUser, kVideo, kTime, kClick, kLike, kFollow, kComment, kForward, kHate, kLongView, kPlayTime,
              kDuration, kTab, kNumLogCols };
constexpr LabelKind kFlagKinds[] = {LABEL_CLICK, LABEL_LIKE, LABEL_FOLLOW, LABEL_COMMENT,
                                    LABEL_FORWARD, LABEL_HATE, LABEL_LONG_VIEW};  // kClick..kLongView

// User categorical columns in slot order 3..28, then the dense count columns 1..4.
std::vector<std::string> UserSparseColumns() {
  std::vector<std::string> c = {"user_active_degree", "is_lowactive_period", "is_live_streamer",
                                "is_video_author", "follow_user_num_range", "fans_user_num_range",
                                "friend_user_num_range", "register_days_range"};
  for (int i = 0; i < 18; ++i) c.push_back("onehot_feat" + std::to_string(i));
  return c;
}
constexpr const char* kUserDenseColumns[] = {"follow_user_num", "fans_user_num", "friend_user_num", "register_days"};
constexpr uint32_t kUserSparseFirstSlot = 3;
constexpr uint32_t kAuthorSlot = 29, kVideoTypeSlot = 30, kUploadTypeSlot = 31, kMusicTypeSlot = 32, kTagSlot = 33;


bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Integers that pandas wrote as floats ("9.0") too.
bool ParseNumber(std::string_view s, double* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(*out);
}


// Maps header names to indices; NOT_FOUND names the first missing column.
Status IndexColumns(const std::string& path, const std::vector<std::string>& header,
                    const std::vector<std::string>& wanted, std::vector<int>* index) {
  index->clear();
  for (const auto& w : wanted) {
    int found = -1;
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == w) found = static_cast<int>(i);
    }
    if (found < 0) return NotFoundError(path + ":1: header has no column '" + w + "'");
    index->push_back(found);
  }
  return Status::Ok();
}

// Opens a gz CSV and parses its header.
StatusOr<gzFile> OpenCsv(const std::string& path, std::vector<std::string>* header) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return NotFoundError("cannot open " + path);
  gzbuffer(f, 1 << 17);
  std::string line;
  if (!ReadGzLine(f, &line) || !SplitCsvLine(line, header)) {
    gzclose(f);
    return DataLossError(path + ":1: missing or malformed header");
  }
  return f;
}

}  // namespace

bool SplitCsvLine(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  fields->push_back(std::move(cur));
  return !quoted;
}

KuaiRandReplay::KuaiRandReplay(Options options) : options_(std::move(options)) {}

KuaiRandReplay::~KuaiRandReplay() {
  if (log_ != nullptr) gzclose(log_);
}

StatusOr<std::unique_ptr<KuaiRandReplay>> KuaiRandReplay::Open(const Options& options) {
  Options o = options;
  const std::filesystem::path dir = std::filesystem::path(o.log_path).parent_path();
  if (o.user_features_path.empty()) o.user_features_path = (dir / "user_features_pure.csv.gz").string();
  if (o.video_features_path.empty()) o.video_features_path = (dir / "video_features_basic_pure.csv.gz").string();
  std::unique_ptr<KuaiRandReplay> r(new KuaiRandReplay(o));
  std::vector<std::string> header;
  ASSIGN_OR_RETURN(r->log_, OpenCsv(o.log_path, &header));
  r->log_line_ = 1;
  r->log_fields_ = header.size();
  RETURN_IF_ERROR(IndexColumns(o.log_path, header, {std::begin(kLogColumns), std::end(kLogColumns)},
                               &r->log_columns_));
  RETURN_IF_ERROR(r->LoadUsers(o.user_features_path));
  RETURN_IF_ERROR(r->LoadVideos(o.video_features_path));
  r->ReadNextRow();
  return r;
}

void KuaiRandReplay::NoteError(const std::string& file, uint64_t line, const std::string& reason) {
  ++stats_.malformed_rows;
  if (stats_.errors.size() < kMaxErrorsKept) {
    stats_.errors.push_back(file + ":" + std::to_string(line) + ": " + reason);
  }
}

Status KuaiRandReplay::LoadUsers(const std::string& path) {
  std::vector<std::string> header;
  ASSIGN_OR_RETURN(gzFile f, OpenCsv(path, &header));
  const std::vector<std::string> sparse_cols = UserSparseColumns();
  std::vector<std::string> wanted = {"user_id"};
  wanted.insert(wanted.end(), sparse_cols.begin(), sparse_cols.end());
  wanted.insert(wanted.end(), std::begin(kUserDenseColumns), std::end(kUserDenseColumns));
  std::vector<int> idx;
  Status s = IndexColumns(path, header, wanted, &idx);
  uint64_t line_no = 1;
  std::string line;
  while (s.ok() && ReadGzLine(f, &line)) {
    ++line_no;
    int64_t id = 0;
    if (!SplitCsvLine(line, &fields_) || fields_.size() != header.size()) {
      NoteError(path, line_no, "expected " + std::to_string(header.size()) + " fields, got " +
                                   std::to_string(fields_.size()) + " (or an unterminated quote)");
      continue;
    }
    if (!ParseInt(fields_[idx[0]], &id) || id < 0) {
      NoteError(path, line_no, "bad user_id '" + fields_[idx[0]] + "'");
      continue;
    }
    UserFeatures u;
    for (size_t i = 0; i < sparse_cols.size(); ++i) {
      const std::string& v = fields_[idx[1 + i]];
      if (!v.empty()) u.sparse.emplace_back(kUserSparseFirstSlot + i, HashId(v));
    }
    for (size_t i = 0; i < std::size(kUserDenseColumns); ++i) {
      double v = 0;
      if (ParseNumber(fields_[idx[1 + sparse_cols.size() + i]], &v) && v >= 0) {
        u.dense.emplace_back(1 + i, static_cast<float>(std::log1p(v)));
      }
    }
    users_[static_cast<uint64_t>(id)] = std::move(u);
  }
  gzclose(f);
  stats_.users_with_features = users_.size();
  return s;
}

Status KuaiRandReplay::LoadVideos(const std::string& path) {
  std::vector<std::string> header;
  ASSIGN_OR_RETURN(gzFile f, OpenCsv(path, &header));
  std::vector<int> idx;
  Status s = IndexColumns(path, header, {"video_id", "author_id", "video_type", "upload_type", "music_type", "tag"},
                          &idx);
  uint64_t line_no = 1;
  std::string line;
  std::vector<std::string> tags;
  while (s.ok() && ReadGzLine(f, &line)) {
    ++line_no;
    int64_t id = 0, author = 0;
    if (!SplitCsvLine(line, &fields_) || fields_.size() != header.size()) {
      NoteError(path, line_no, "expected " + std::to_string(header.size()) + " fields, got " +
                                   std::to_string(fields_.size()) + " (or an unterminated quote)");
      continue;
    }
    if (!ParseInt(fields_[idx[0]], &id) || id < 0) {
      NoteError(path, line_no, "bad video_id '" + fields_[idx[0]] + "'");
      continue;
    }
    VideoFeatures v;
    if (ParseInt(fields_[idx[1]], &author) && author >= 0) v.sparse.emplace_back(kAuthorSlot, author + 1);
    const uint32_t hashed[] = {kVideoTypeSlot, kUploadTypeSlot, kMusicTypeSlot};
    for (int i = 0; i < 3; ++i) {
      if (!fields_[idx[2 + i]].empty()) v.sparse.emplace_back(hashed[i], HashId(fields_[idx[2 + i]]));
    }
    SplitCsvLine(fields_[idx[5]], &tags);  // "20,43" arrives unquoted here
    for (const auto& t : tags) {
      int64_t tag = 0;
      if (ParseInt(t, &tag) && tag >= 0) v.sparse.emplace_back(kTagSlot, tag + 1);
    }
    videos_[static_cast<uint64_t>(id)] = std::move(v);
  }
  gzclose(f);
  stats_.videos_with_features = videos_.size();
  return s;
}

bool KuaiRandReplay::ParseRow(const std::vector<std::string>& f, uint64_t index, Row* row, std::string* error) {
  int64_t v[kNumLogCols] = {};
  for (int c = 0; c < kNumLogCols; ++c) {
    const std::string& text = f[log_columns_[c]];
    if (!ParseInt(text, &v[c])) {
      double d = 0;  // duration_ms and friends may be written as floats
      if (!ParseNumber(text, &d) || d != std::floor(d)) {
        *error = std::string("column ") + kLogColumns[c] + " is not an integer: '" + text + "'";
        return false;
      }
      v[c] = static_cast<int64_t>(d);
    }
  }
  if (v[kUser] < 0 || v[kVideo] < 0) {
    *error = "negative user_id or video_id";
    return false;
  }
  if (v[kTime] <= 0 || v[kPlayTime] < 0) {
    *error = "time_ms must be > 0 and play_time_ms >= 0";
    return false;
  }
  Impression& imp = row->impression;
  imp.Clear();
  imp.set_request_id("kr-" + std::to_string(index));
  imp.set_user_id(static_cast<uint64_t>(v[kUser]) + 1);
  imp.set_item_id(static_cast<uint64_t>(v[kVideo]) + 1);
  imp.set_event_time_ms(v[kTime]);
  std::map<uint32_t, SparseFeature*> sparse;
  auto add_sparse = [&](uint32_t slot, uint64_t id) {
    SparseFeature*& s = sparse[slot];
    if (s == nullptr) {
      s = imp.add_sparse();
      s->set_slot(slot);
    }
    s->add_ids(id);
  };
  add_sparse(0, imp.user_id());
  add_sparse(1, imp.item_id());
  add_sparse(2, HashId(f[log_columns_[kTab]]));
  auto add_dense = [&](uint32_t slot, float value) {
    DenseFeature* d = imp.add_dense();
    d->set_slot(slot);
    d->add_values(value);
  };
  if (v[kDuration] >= 0) add_dense(0, static_cast<float>(std::log1p(v[kDuration] / 1000.0)));
  if (auto u = users_.find(static_cast<uint64_t>(v[kUser])); u != users_.end()) {
    for (const auto& [slot, id] : u->second.sparse) add_sparse(slot, id);
    for (const auto& [slot, value] : u->second.dense) add_dense(slot, value);
  }
  if (auto vid = videos_.find(static_cast<uint64_t>(v[kVideo])); vid != videos_.end()) {
    for (const auto& [slot, id] : vid->second.sparse) add_sparse(slot, id);
  }
  row->play_time_ms = v[kPlayTime];
  row->positives.clear();
  for (int c = kClick; c <= kLongView; ++c) {
    if (v[c] != 0 && v[c] != 1) {
      *error = std::string("flag ") + kLogColumns[c] + " is not 0/1: " + std::to_string(v[c]);
      return false;
    }
    if (v[c] == 1) row->positives.push_back(kFlagKinds[c - kClick]);
  }
  return true;
}

void KuaiRandReplay::ReadNextRow() {
  next_row_.reset();
  Row row;
  std::string error;
  while (ReadGzLine(log_, &line_)) {
    ++log_line_;
    if (line_.empty()) continue;
    const uint64_t index = data_rows_++;
    ++stats_.rows;
    if (!SplitCsvLine(line_, &fields_)) {
      error = "unterminated quote";
    } else if (fields_.size() != log_fields_) {
      error = "expected " + std::to_string(log_fields_) + " fields, got " + std::to_string(fields_.size());
    } else if (ParseRow(fields_, index, &row, &error)) {
      next_row_ = std::move(row);
      return;
    }
    NoteError(options_.log_path, log_line_, error);
  }
  int err = Z_OK;
  const char* msg = gzerror(log_, &err);
  if (err != Z_OK && err != Z_STREAM_END) {
    NoteError(options_.log_path, log_line_ + 1, std::string("read error: ") + (msg ? msg : "?"));
  }
}

std::optional<int64_t> KuaiRandReplay::NextEventMs() {
  std::optional<int64_t> next;
  if (next_row_) next = next_row_->impression.event_time_ms();
  if (!pending_.empty() && (!next || pending_.top().due_ms < *next)) next = pending_.top().due_ms;
  return next;
}

Status KuaiRandReplay::AdvanceTo(int64_t event_ms, EventSink* sink) {
  while (true) {
    const bool label_first =
        !pending_.empty() && (!next_row_ || pending_.top().due_ms < next_row_->impression.event_time_ms());
    if (label_first) {
      if (pending_.top().due_ms > event_ms) return Status::Ok();
      const Label& label = pending_.top().label;
      RETURN_IF_ERROR(sink->OnLabel(label));
      ++stats_.labels;
      ++stats_.labels_by_kind[label.kind()];
      pending_.pop();
      continue;
    }
    if (!next_row_ || next_row_->impression.event_time_ms() > event_ms) return Status::Ok();
    const Impression& imp = next_row_->impression;
    RETURN_IF_ERROR(sink->OnImpression(imp));
    ++stats_.impressions;
    if (imp.event_time_ms() < last_row_ms_) ++stats_.out_of_order_rows;
    last_row_ms_ = std::max(last_row_ms_, imp.event_time_ms());
    const int64_t due = imp.event_time_ms() + next_row_->play_time_ms;
    auto schedule = [&](LabelKind kind, float value) {
      PendingLabel p{due, next_seq_++, Label()};
      p.label.set_request_id(imp.request_id());
      p.label.set_user_id(imp.user_id());
      p.label.set_item_id(imp.item_id());
      p.label.set_event_time_ms(due);
      p.label.set_kind(kind);
      p.label.set_value(value);
      pending_.push(std::move(p));
    };
    for (LabelKind kind : next_row_->positives) schedule(kind, 1.0f);
    schedule(LABEL_PLAY_TIME, static_cast<float>(next_row_->play_time_ms));
    ReadNextRow();
  }
}

}  // namespace freshet::ingest
