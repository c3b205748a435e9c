// Serving scores with the TWIN module exactly as the learner does: a request's own
// history, or the user's history read from the learner's behaviour cache through a
// read-only RocksDB secondary, gives bit-identical scores to Trainer::Predict on the
// same rows and history, for a FULL and for a DELTA on top of it (each served version
// projects with its own weights). A history changes the scores, so these tests fail
// when serving drops it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/check.h"
#include "learner/cpu/trainer.h"
#include "publisher/serving_replica.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::publisher {
namespace {

using cpu::testing::RandomBatch;
using cpu::testing::SmallConfig;
using cpu::testing::SmallTasks;

constexpr int64_t kRequestTimeMs = int64_t{1} << 40;
constexpr uint64_t kUser = 3;

LearnerConfig TwinConfig() {
  LearnerConfig c = SmallConfig(FAMILY_MMOE);
  freshet::TwinConfig* t = c.mutable_model()->mutable_twin();
  t->set_enabled(true);
  t->set_item_slot(1);
  t->set_heads(2);
  t->set_key_dim(3);
  t->set_value_dim(2);
  t->set_output_dim(3);
  t->set_cross_dim(2);
  t->set_top_k(3);  // below the histories' lengths: GSU's selection matters
  t->set_max_len(20);
  return c;
}

std::vector<store::Behaviour> History(int n, uint64_t seed, int64_t first_ms = 1000) {
  cpu::Rng rng(seed);
  std::vector<store::Behaviour> h;
  for (int j = 0; j < n; ++j)
    h.push_back({rng.Next() % 20, first_ms + 1000 * j, static_cast<uint32_t>(rng.Next() % 8),
                 static_cast<uint32_t>(rng.Next() % 100000)});
  return h;
}

struct Learner {
  LearnerConfig config = TwinConfig();
  std::vector<TaskConfig> tasks = SmallTasks();
  std::unique_ptr<cpu::Trainer<float>> trainer;
  uint64_t seed = 40;

  Learner() {
    auto t = cpu::Trainer<float>::Create(config, tasks);
    CHECK_OK(t.status());
    trainer = std::move(*t);
  }
  void Train(int steps) {
    for (int i = 0; i < steps; ++i) {
      Batch b = RandomBatch(config.model(), 3, 16, seed++);
      b.event_times_ms.assign(b.size, kRequestTimeMs);
      b.behaviour_offsets = {0};
      for (int r = 0; r < b.size; ++r) {
        for (const store::Behaviour& x : History(2 + r % 9, seed * 100 + r)) b.behaviours.push_back(x);
        b.behaviour_offsets.push_back(static_cast<int32_t>(b.behaviours.size()));
      }
      CHECK_OK(trainer->Train(b, 1000).status());
    }
  }
  // The learner's inference on the request's rows with `history` on every row,
  // projecting with its current weights (its cache may hold projections of the
  // weights before its last step, which serving never had).
  cpu::Mat<float> Predict(const ScoreRequest& request, const std::vector<store::Behaviour>& history) {
    BatchBuilder builder(config.model(), 3);
    for (const ScoreItem& item : request.items) {
      Sample s;
      s.set_user_id(request.user_id);
      s.set_item_id(item.item_id);
      s.set_event_time_ms(request.time_ms);
      for (const ScoreFeatures* f : {&request.user, &item.features}) {
        for (const auto& [slot, ids] : f->sparse) {
          SparseFeature* sf = s.add_sparse();
          sf->set_slot(slot);
          sf->mutable_ids()->Add(ids.begin(), ids.end());
        }
        for (const auto& [slot, values] : f->dense) {
          DenseFeature* df = s.add_dense();
          df->set_slot(slot);
          df->mutable_values()->Add(values.begin(), values.end());
        }
      }
      for (int t = 0; t < 3; ++t) s.add_label(0.0f), s.add_mask(false);
      CHECK_OK(builder.Add(s));
    }
    Batch b = builder.Finish();
    b.behaviour_offsets = {0};
    for (int r = 0; r < b.size; ++r) {
      b.behaviours.insert(b.behaviours.end(), history.begin(), history.end());
      b.behaviour_offsets.push_back(static_cast<int32_t>(b.behaviours.size()));
    }
    trainer->model().projection_cache()->Clear();
    auto p = trainer->Predict(b);
    CHECK_OK(p.status());
    return *p;
  }
  Frame Full(uint64_t version) {
    ModelManifest m;
    m.set_version(version);
    Frame f;
    f.header = {FrameType::kFull, version, 0};
    f.payload = MakeFullUpdate(trainer->model(), m).SerializeAsString();
    return f;
  }
  Frame Delta(uint64_t version, uint64_t base) {
    ModelManifest m;
    m.set_version(version);
    m.set_base_version(base);
    DeltaContent content;
    trainer->model().embeddings().ForEachRow(
        [&](const cpu::EmbeddingKey& key, const float*) { content.touched.push_back(key); });
    Frame f;
    f.header = {FrameType::kDelta, version, base};
    f.payload = MakeDeltaUpdate(trainer->model(), m, content).SerializeAsString();
    return f;
  }
};

ScoreRequest Request() {
  ScoreRequest r;
  r.user_id = kUser;
  r.time_ms = kRequestTimeMs;
  r.user.sparse[5] = {4, 11};
  r.user.dense[2] = {0.5f};
  for (uint64_t i = 0; i < 4; ++i) {
    ScoreItem item;
    item.item_id = 2 + 3 * i;
    item.features.sparse[1] = {item.item_id};
    item.features.sparse[2] = {i, 9};
    item.features.dense[1] = {0.1f * static_cast<float>(i), -0.2f};
    r.items.push_back(item);
  }
  return r;
}

std::unique_ptr<ServingReplica> StartReplica(const Learner& learner, MetricsRegistry* metrics,
                                             const std::string& behaviour_cache_dir = "") {
  ServingReplica::Options o;
  o.learner = learner.config;
  o.tasks = learner.tasks;
  o.hmac_key = std::string(32, 'k');
  o.behaviour_cache_dir = behaviour_cache_dir;
  auto r = ServingReplica::Start(o, metrics, Clock::Real());
  CHECK_OK(r.status());
  return std::move(*r);
}

void ExpectBitEqual(const cpu::Mat<float>& served, const cpu::Mat<float>& learned, const std::string& what) {
  ASSERT_EQ(served.rows(), learned.rows()) << what;
  ASSERT_EQ(served.cols(), learned.cols()) << what;
  for (int i = 0; i < served.rows(); ++i)
    for (int t = 0; t < served.cols(); ++t) EXPECT_EQ(served(i, t), learned(i, t)) << what << " item " << i << " task " << t;
}

TEST(ServingTwinTest, RequestHistoryScoresAsTheLearnerForFullAndDelta) {
  Learner learner;
  learner.Train(6);
  MetricsRegistry metrics;
  auto replica = StartReplica(learner, &metrics);
  ASSERT_EQ(replica->Handle(learner.Full(1)).header.type, FrameType::kAck);

  ScoreRequest request = Request();
  request.history = History(12, 77);
  StatusOr<ScoreResult> with = replica->Score(request);
  ASSERT_TRUE(with.ok()) << with.status();
  ExpectBitEqual(with->scores, learner.Predict(request, *request.history), "v1");

  // The same request through the JSON body /v1/score parses.
  StatusOr<ScoreRequest> parsed = ParseScoreRequest(ScoreRequestToJson(request), 10);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  StatusOr<ScoreResult> via_json = replica->Score(*parsed);
  ASSERT_TRUE(via_json.ok()) << via_json.status();
  ExpectBitEqual(via_json->scores, with->scores, "v1 via JSON");

  ScoreRequest without = Request();
  StatusOr<ScoreResult> none = replica->Score(without);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_NE(none->scores, with->scores) << "the history must change the scores";
  ExpectBitEqual(none->scores, learner.Predict(without, {}), "v1 without history");

  // A DELTA is applied onto a copy of v1; v2 projects with v2's weights only.
  learner.Train(4);
  ASSERT_EQ(replica->Handle(learner.Delta(2, 1)).header.type, FrameType::kAck);
  ASSERT_EQ(replica->version(), 2u);
  StatusOr<ScoreResult> v2 = replica->Score(request);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_NE(v2->scores, with->scores);
  ExpectBitEqual(v2->scores, learner.Predict(request, *request.history), "v2");
}

TEST(ServingTwinTest, HistoryOnAModelWithoutTwinIsRefused) {
  Learner learner;
  learner.config.mutable_model()->mutable_twin()->set_enabled(false);
  ScoreRequest request = Request();
  request.history = History(3, 1);
  StatusOr<Batch> b = BuildScoreBatch(request, learner.config.model(), 3);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("learner.model.twin.enabled"), std::string::npos) << b.status();
}

class ServingBehaviourCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("freshet_serving_twin_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ServingBehaviourCacheTest, ReadsTheLearnersCacheThroughASecondary) {
  Learner learner;
  learner.Train(6);
  const int max_len = learner.config.model().twin().max_len();
  store::KvStore::Options o;
  o.path = (dir_ / "learner").string();
  store::BehaviourCache::Configure(&o, max_len);
  auto primary = store::KvStore::Open(o);
  ASSERT_TRUE(primary.ok()) << primary.status();
  store::BehaviourCache cache(primary->get(), max_len);
  ASSERT_TRUE(cache.Append(kUser, History(2, 5)).ok());  // fewer than top_k

  MetricsRegistry metrics;
  auto replica = StartReplica(learner, &metrics, o.path);
  ASSERT_EQ(replica->Handle(learner.Full(1)).header.type, FrameType::kAck);
  const ScoreRequest request = Request();  // no history: the replica reads the user's
  auto stored = cache.Read(kUser);
  ASSERT_TRUE(stored.ok());
  const cpu::Mat<float> expected = learner.Predict(request, *stored);
  StatusOr<ScoreResult> first = replica->Score(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectBitEqual(first->scores, expected, "history at open");
  EXPECT_NE(first->scores, learner.Predict(request, {}));

  // New engagements reach serving at its next once-a-second catch-up.
  ASSERT_TRUE(cache.Append(kUser, History(6, 6, 100'000)).ok());
  stored = cache.Read(kUser);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 8u);  // GSU's top 3 now holds a new behaviour
  const cpu::Mat<float> expected_after = learner.Predict(request, *stored);
  ASSERT_NE(expected_after, expected);
  cpu::Mat<float> served;
  for (int attempt = 0; attempt < 200; ++attempt) {  // up to 20 s under load
    StatusOr<ScoreResult> r = replica->Score(request);
    ASSERT_TRUE(r.ok()) << r.status();
    served = r->scores;
    if (served == expected_after) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ExpectBitEqual(served, expected_after, "history after catch-up");
  EXPECT_NE(metrics.Render().find("freshet_serving_behaviour_catchups_total{result=\"ok\"}"), std::string::npos);
}

}  // namespace
}  // namespace freshet::publisher
