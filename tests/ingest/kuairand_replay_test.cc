// KuaiRandReplay: the real KuaiRand-Pure log replays to exactly its rows and label
// sums in event-time order; a tiny hand-written log checks quoting, tags, ordering,
// malformed rows and sink retries.
#include "ingest/kuairand_replay.h"
#include "tests/util/shared_data.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace freshet::ingest {
namespace {

struct Event {
  bool impression;
  std::string request_id;
  int64_t time_ms;
  LabelKind kind;
  float value;
};

class RecordingSink : public EventSink {
 public:
  Status OnImpression(const Impression& imp) override {
    if (fail_next_) {
      fail_next_ = false;
      return UnavailableError("injected");
    }
    events.push_back({true, imp.request_id(), imp.event_time_ms(), LABEL_KIND_UNSPECIFIED, 0});
    impressions[imp.request_id()] = imp;
    return Status::Ok();
  }
  Status OnLabel(const Label& label) override {
    events.push_back({false, label.request_id(), label.event_time_ms(), label.kind(), label.value()});
    return Status::Ok();
  }
  void FailNext() { fail_next_ = true; }
  std::vector<Event> events;
  std::map<std::string, Impression> impressions;

 private:
  bool fail_next_ = false;
};

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

bool HasSlot(const Impression& imp, uint32_t slot) {
  for (const auto& s : imp.sparse()) {
    if (s.slot() == slot && s.ids_size() > 0) return true;
  }
  return false;
}

TEST(KuaiRandReplayTest, RealLogReplaysEveryRowAndLabelInOrder) {
  const std::string dir = freshet::testing::SharedDataPath("kuairand-pure");
  const std::string log = dir + "/log_standard_4_25_to_4_30_pure.csv.gz";
  SKIP_WITHOUT_DATA(log);

  // Independent count: the log has no quoted fields, so a plain split is exact.
  gzFile f = gzopen(log.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  char buf[1024];
  ASSERT_NE(gzgets(f, buf, sizeof(buf)), nullptr);
  std::string header(buf);
  header.erase(header.find_last_not_of("\r\n") + 1);
  std::map<std::string, int> col;
  const auto names = Split(header);
  for (size_t i = 0; i < names.size(); ++i) col[names[i]] = static_cast<int>(i);
  const std::map<std::string, LabelKind> flags = {
      {"is_click", LABEL_CLICK},     {"is_like", LABEL_LIKE},       {"is_follow", LABEL_FOLLOW},
      {"is_comment", LABEL_COMMENT}, {"is_forward", LABEL_FORWARD}, {"is_hate", LABEL_HATE},
      {"long_view", LABEL_LONG_VIEW}};
  std::map<LabelKind, uint64_t> expected_kinds;
  std::vector<int64_t> play_time;
  while (gzgets(f, buf, sizeof(buf)) != nullptr) {
    std::string line(buf);
    line.erase(line.find_last_not_of("\r\n") + 1);
    const auto v = Split(line);
    ASSERT_EQ(v.size(), names.size());
    for (const auto& [name, kind] : flags) expected_kinds[kind] += std::stoll(v[col[name]]);
    play_time.push_back(std::stoll(v[col["play_time_ms"]]));
  }
  gzclose(f);
  expected_kinds[LABEL_PLAY_TIME] = play_time.size();
  ASSERT_GT(play_time.size(), 1000u);

  const auto t0 = std::chrono::steady_clock::now();
  auto replay = KuaiRandReplay::Open({log, "", ""});
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  const auto t1 = std::chrono::steady_clock::now();
  RecordingSink sink;
  ASSERT_TRUE((*replay)->AdvanceTo(INT64_MAX, &sink).ok());
  const double load = std::chrono::duration<double>(t1 - t0).count();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("feature load %.2f s; replayed %zu rows, %zu events in %.2f s: %.0f rows/s into a recording sink\n",
              load, play_time.size(), sink.events.size(), secs, play_time.size() / secs);

  const auto& st = (*replay)->stats();
  EXPECT_TRUE((*replay)->done());
  EXPECT_EQ(st.malformed_rows, 0u) << (st.errors.empty() ? "" : st.errors[0]);
  EXPECT_EQ(st.out_of_order_rows, 0u);
  EXPECT_EQ(st.rows, play_time.size());
  EXPECT_EQ(st.impressions, play_time.size());
  EXPECT_EQ(sink.impressions.size(), play_time.size());
  std::map<LabelKind, uint64_t> got_kinds;
  int64_t last = INT64_MIN;
  uint64_t with_user = 0, with_video = 0;
  for (const auto& e : sink.events) {
    ASSERT_GE(e.time_ms, last) << e.request_id;
    last = e.time_ms;
    const auto it = sink.impressions.find(e.request_id);
    ASSERT_NE(it, sink.impressions.end());
    const int64_t row = std::stoll(e.request_id.substr(3));
    if (e.impression) {
      const Impression& imp = it->second;
      EXPECT_NE(imp.user_id(), 0u);
      EXPECT_NE(imp.item_id(), 0u);
      EXPECT_TRUE(HasSlot(imp, 0) && HasSlot(imp, 1) && HasSlot(imp, 2)) << e.request_id;
      EXPECT_GE(imp.dense_size(), 1);
      with_user += HasSlot(imp, 3);
      with_video += HasSlot(imp, 29);
      continue;
    }
    ++got_kinds[e.kind];
    ASSERT_EQ(e.time_ms, it->second.event_time_ms() + play_time[row]) << e.request_id;
    if (e.kind == LABEL_PLAY_TIME) EXPECT_EQ(e.value, static_cast<float>(play_time[row]));
    else EXPECT_EQ(e.value, 1.0f);
  }
  EXPECT_EQ(got_kinds, expected_kinds);
  EXPECT_EQ(st.labels_by_kind, expected_kinds);
  EXPECT_GT(with_user, play_time.size() * 9 / 10);
  EXPECT_GT(with_video, play_time.size() * 9 / 10);
  for (const auto& [kind, n] : expected_kinds) std::printf("  %s=%llu\n", LabelKind_Name(kind).c_str(), (unsigned long long)n);
}

void WriteGz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(f);
}

TEST(KuaiRandReplayTest, SplitsQuotedFields) {
  std::vector<std::string> f;
  ASSERT_TRUE(SplitCsvLine(R"csv(1,"[100,1k)",,"say ""hi""",x)csv", &f));
  EXPECT_EQ(f, (std::vector<std::string>{"1", "[100,1k)", "", "say \"hi\"", "x"}));
  EXPECT_FALSE(SplitCsvLine(R"csv(1,"open)csv", &f));
}

TEST(KuaiRandReplayTest, TinyLogQuotingTagsOrderMalformedAndRetry) {
  const std::string dir = ::testing::TempDir() + "/kuairand_tiny";
  std::filesystem::create_directories(dir);
  const std::string head =
      "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,long_view,"
      "play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab\n";
  WriteGz(dir + "/log.csv.gz", head +
      "0,5,20220425,0,1000,1,1,0,0,0,0,1,5000,9000,0,0,0,0,1\n"
      "1,7,20220425,0,2000,0,0,0,0,0,0,0,0,3000,0,0,0,0,2\n"
      "1,7,20220425,0,oops,0,0,0,0,0,0,0,0,3000,0,0,0,0,2\n"
      "2,5,20220425\n"
      "1,9,20220425,0,7000,0,0,1,0,0,0,0,100,3000,0,0,0,0,1\n");
  std::string users = "user_id,user_active_degree,is_lowactive_period,is_live_streamer,is_video_author,"
                      "follow_user_num,follow_user_num_range,fans_user_num,fans_user_num_range,friend_user_num,"
                      "friend_user_num_range,register_days,register_days_range";
  for (int i = 0; i < 18; ++i) users += ",onehot_feat" + std::to_string(i);
  users += "\n0,full_active,0,1,1,514,500+,150,\"[100,1k)\",34,\"[30,60)\",799,730+";
  for (int i = 0; i < 18; ++i) users += ",1";
  users += "\n1,broken,\"[1,5)\"\n";
  WriteGz(dir + "/user_features_pure.csv.gz", users);
  WriteGz(dir + "/video_features_basic_pure.csv.gz",
          "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,"
          "server_height,music_id,music_type,tag\n"
          "5,100,NORMAL,2022-04-10,Web,0.0,358016.0,960.0,720.0,9148581891,9.0,\"20,43\"\n"
          "7,101,AD,2022-04-10,UNKNOWN,0.0,,720.0,1440.0,0,,\n");

  auto replay = KuaiRandReplay::Open({dir + "/log.csv.gz", "", ""});
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  RecordingSink sink;
  sink.FailNext();
  EXPECT_FALSE((*replay)->AdvanceTo(INT64_MAX, &sink).ok());  // the first impression is offered again
  EXPECT_EQ((*replay)->NextEventMs(), 1000);
  ASSERT_TRUE((*replay)->AdvanceTo(6000, &sink).ok());
  EXPECT_EQ((*replay)->NextEventMs(), 7000);
  ASSERT_TRUE((*replay)->AdvanceTo(INT64_MAX, &sink).ok());
  EXPECT_TRUE((*replay)->done());

  std::vector<std::string> order;
  for (const auto& e : sink.events) {
    order.push_back(e.request_id + (e.impression ? ":imp" : ":" + LabelKind_Name(e.kind)) + "@" +
                    std::to_string(e.time_ms));
  }
  EXPECT_EQ(order, (std::vector<std::string>{
                       "kr-0:imp@1000", "kr-1:imp@2000", "kr-1:LABEL_PLAY_TIME@2000", "kr-0:LABEL_CLICK@6000",
                       "kr-0:LABEL_LIKE@6000", "kr-0:LABEL_LONG_VIEW@6000", "kr-0:LABEL_PLAY_TIME@6000",
                       "kr-4:imp@7000", "kr-4:LABEL_FOLLOW@7100", "kr-4:LABEL_PLAY_TIME@7100"}));

  const auto& st = (*replay)->stats();
  EXPECT_EQ(st.rows, 5u);
  EXPECT_EQ(st.impressions, 3u);
  EXPECT_EQ(st.malformed_rows, 3u);  // two log rows, one user row
  EXPECT_EQ(st.users_with_features, 1u);
  EXPECT_EQ(st.videos_with_features, 2u);
  ASSERT_EQ(st.errors.size(), 3u);
  EXPECT_NE(st.errors[0].find("user_features_pure.csv.gz:3:"), std::string::npos) << st.errors[0];
  EXPECT_NE(st.errors[1].find("log.csv.gz:4: column time_ms"), std::string::npos) << st.errors[1];
  EXPECT_NE(st.errors[2].find("log.csv.gz:5: expected 19 fields, got 3"), std::string::npos) << st.errors[2];

  const Impression& imp = sink.impressions.at("kr-0");
  EXPECT_EQ(imp.user_id(), 1u);
  EXPECT_EQ(imp.item_id(), 6u);
  std::map<uint32_t, std::vector<uint64_t>> sparse;
  for (const auto& s : imp.sparse()) sparse[s.slot()].assign(s.ids().begin(), s.ids().end());
  EXPECT_EQ(sparse.size(), static_cast<size_t>(KuaiRandReplay::kSparseSlots));
  EXPECT_EQ(sparse[33], (std::vector<uint64_t>{21, 44}));  // tag "20,43"
  EXPECT_EQ(sparse[29], (std::vector<uint64_t>{101}));
  EXPECT_NE(sparse[8], sparse[9]);  // "[100,1k)" and "[30,60)" hash apart
  EXPECT_EQ(imp.dense_size(), KuaiRandReplay::kDenseSlots);
  EXPECT_NEAR(imp.dense(2).values(0), std::log1p(150.0), 1e-5);  // fans_user_num
  // kr-1: user 1's row was malformed, video 7 has no tag and no music type.
  const Impression& bare = sink.impressions.at("kr-1");
  EXPECT_FALSE(HasSlot(bare, 3));
  EXPECT_FALSE(HasSlot(bare, 33));
  EXPECT_FALSE(HasSlot(bare, 32));
  EXPECT_TRUE(HasSlot(bare, 30));
  EXPECT_EQ(bare.dense_size(), 1);
}

}  // namespace
}  // namespace freshet::ingest
