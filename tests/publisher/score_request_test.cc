// POST /v1/score bodies: exact 64-bit ids, round trip through JSON, and every kind of
// bad input refused with an error naming the field.
#include "publisher/score_request.h"

#include <gtest/gtest.h>

#include "tests/learner/cpu/test_util.h"

namespace freshet::publisher {
namespace {

TEST(ScoreRequestTest, ParsesExactIdsAndRoundTrips) {
  const std::string json = R"({"user_id": 18446744073709551615, "sparse": {"1": [9007199254740993, "5"]},
      "dense": {"2": [0.25]}, "items": [{"item_id": 3, "sparse": {"2": []}, "dense": {"1": [1e-3, -2.5]}}]})";
  StatusOr<ScoreRequest> r = ParseScoreRequest(json, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->user_id, 18446744073709551615ull);
  EXPECT_EQ(r->user.sparse.at(1), (std::vector<uint64_t>{9007199254740993ull, 5}));  // 2^53 + 1: not via double
  EXPECT_EQ(r->user.dense.at(2), std::vector<float>{0.25f});
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].item_id, 3u);
  EXPECT_TRUE(r->items[0].features.sparse.at(2).empty());
  EXPECT_EQ(r->items[0].features.dense.at(1), (std::vector<float>{1e-3f, -2.5f}));
  StatusOr<ScoreRequest> again = ParseScoreRequest(ScoreRequestToJson(*r), 10);
  ASSERT_TRUE(again.ok()) << again.status() << " in " << ScoreRequestToJson(*r);
  EXPECT_EQ(again->user.sparse, r->user.sparse);
  EXPECT_EQ(again->items[0].features.dense, r->items[0].features.dense);  // floats survive exactly
}

TEST(ScoreRequestTest, BadBodiesNameTheField) {
  const std::pair<std::string, std::string> cases[] = {
      {"{not json", "not valid JSON"},
      {R"({"items": []})", "at least one candidate"},
      {R"({"user_id": -1, "items": [{}]})", "user_id"},
      {R"({"sparse": {"1": [1.5]}, "items": [{}]})", "sparse.1"},
      {R"({"dense": {"2": ["x"]}, "items": [{}]})", "dense.2"},
      {R"({"dense": {"2": [1e99]}, "items": [{}]})", "finite"},
      {R"({"sparse": [1, 2], "items": [{}]})", "must be an object"},
      {R"({"items": [{"sparse": {"1": {"a": 1}}}]})", "items[0].sparse.1"},
      {R"({"itmes": [{}], "items": [{}]})", "unknown field itmes"},
      {R"({"items": [{}, {}, {}]})", "serving.max_score_items"},
  };
  for (const auto& [body, expected] : cases) {
    StatusOr<ScoreRequest> r = ParseScoreRequest(body, 2);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(expected), std::string::npos) << body << " → " << r.status();
  }
}

TEST(ScoreRequestTest, BatchHasOneRowPerItemWithUserAndItemFeatures) {
  const ModelConfig model = cpu::testing::SmallConfig(FAMILY_MMOE).model();  // sparse 1,2,5; dense 1(2), 2(1)
  ScoreRequest r;
  r.user.sparse[1] = {4, 5};
  r.user.dense[2] = {0.5f};
  r.items.resize(2);
  r.items[0].features.sparse[2] = {7};
  r.items[1].features.dense[1] = {1.0f, 2.0f};
  StatusOr<Batch> b = BuildScoreBatch(r, model, 3);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->size, 2);
  EXPECT_EQ(b->sparse[0].ids, (std::vector<uint64_t>{4, 5, 4, 5}));
  EXPECT_EQ(b->sparse[0].offsets, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(b->sparse[1].ids, std::vector<uint64_t>{7});
  EXPECT_EQ(b->dense(0, 2), 0.5f);
  EXPECT_EQ(b->dense(1, 1), 2.0f);
  EXPECT_EQ(b->dense(0, 0), 0.0f) << "a missing dense slot is zeros, as in training";

  const std::pair<ScoreRequest, std::string> bad[] = {
      {[&] { auto x = r; x.user.sparse[9] = {1}; return x; }(), "user.sparse.9"},
      {[&] { auto x = r; x.items[1].features.dense[1] = {1.0f}; return x; }(), "items[1].dense.1 has 1 values"},
      {[&] { auto x = r; x.items[0].features.sparse[1] = {1}; return x; }(), "also a user feature"},
      {[&] { auto x = r; x.items[0].features.dense[7] = {1}; return x; }(), "no such dense slot"},
  };
  for (const auto& [request, expected] : bad) {
    StatusOr<Batch> e = BuildScoreBatch(request, model, 3);
    ASSERT_FALSE(e.ok()) << expected;
    EXPECT_NE(e.status().message().find(expected), std::string::npos) << e.status();
  }
}

TEST(ScoreRequestTest, HistoryAndTimeParseRoundTripAndAttachToEveryRow) {
  const std::string json = R"({"user_id": 4, "time_ms": 1700000000000, "items": [{"item_id": 1}, {"item_id": 2}],
      "history": [{"item_id": 18446744073709551615, "time_ms": -3, "action_bits": 5, "play_ms": 4294967295},
                  {"item_id": 9, "time_ms": 1699999999000, "action_bits": 0, "play_ms": 0}]})";
  StatusOr<ScoreRequest> r = ParseScoreRequest(json, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->time_ms, 1700000000000);
  ASSERT_TRUE(r->history.has_value());
  const std::vector<store::Behaviour> expected = {{18446744073709551615ull, -3, 5, 4294967295u},
                                                  {9, 1699999999000, 0, 0}};
  EXPECT_EQ(*r->history, expected);
  StatusOr<ScoreRequest> again = ParseScoreRequest(ScoreRequestToJson(*r), 10);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->history, r->history);
  EXPECT_EQ(again->time_ms, r->time_ms);
  EXPECT_FALSE(ParseScoreRequest(R"({"items": [{}]})", 10)->history.has_value()) << "absent, not empty";

  LearnerConfig config = cpu::testing::SmallConfig(FAMILY_MMOE);
  config.mutable_model()->mutable_twin()->set_enabled(true);
  config.mutable_model()->mutable_twin()->set_item_slot(1);
  config.mutable_model()->mutable_twin()->set_max_len(1);  // rows keep the newest only
  StatusOr<Batch> b = BuildScoreBatch(*r, config.model(), 3);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->event_times_ms, (std::vector<int64_t>{1700000000000, 1700000000000}));
  // One copy of the history, shared by both rows.
  EXPECT_EQ(b->behaviour_offsets, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(b->behaviour_history, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(b->behaviours, (std::vector<store::Behaviour>{expected[1]}));
  EXPECT_TRUE(BehavioursDescribed(*b));
}

TEST(ScoreRequestTest, BadHistoriesNameTheField) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"history": 3, "items": [{}]})", "history must be an array"},
      {R"({"history": [1], "items": [{}]})", "history[0] must be an object"},
      {R"({"history": [{"item_id": -1}], "items": [{}]})", "history[0].item_id"},
      {R"({"history": [{"item_id": 1}, {"play_ms": 4294967296}], "items": [{}]})", "history[1].play_ms"},
      {R"({"history": [{"action_bits": [1]}], "items": [{}]})", "history[0].action_bits must be a number"},
      {R"({"history": [{"item": 1}], "items": [{}]})", "unknown field history[0].item"},
      {R"({"time_ms": "soon", "items": [{}]})", "time_ms"},
  };
  for (const auto& [body, expected] : cases) {
    StatusOr<ScoreRequest> r = ParseScoreRequest(body, 2);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(expected), std::string::npos) << body << " → " << r.status();
  }
}

}  // namespace
}  // namespace freshet::publisher
