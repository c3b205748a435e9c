// The publisher against real `freshet serve` child processes over TCP: FULL then
// DELTA pushes acked by both replicas, scores equal to those computed from the
// stored snapshot of the served version (bit-exact: same code path), rollback and
// unpin, a NaN version never served, and a replica killed and restarted mid-stream
// catching up. Also `freshet ops` against the publisher's admin endpoints.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "common/http_client.h"
#include "common/json.h"
#include "learner/cpu/loss.h"
#include "ops/config.h"
#include "publisher/frame.h"
#include "publisher/model_update.h"
#include "publisher/publisher.h"
#include "publisher/score_request.h"
#include "store/kv_store.h"
#include "tests/learner/online_test_util.h"
#include "tests/publisher/publisher_test_util.h"
#include "tests/util/subprocess.h"

namespace freshet::publisher {
namespace {

using learner::testutil::MakeSample;
using learner::testutil::Record;
using learner::testutil::TempDir;
using learner::testutil::TinyLearner;
using learner::testutil::TwoTasks;
using testing::Subprocess;

constexpr const char* kScoreRequest =
    R"({"user_id": 3, "sparse": {"0": [3]}, "dense": {"0": [0.5]},)"
    R"( "items": [{"item_id": 4, "sparse": {"1": [4]}}, {"item_id": 9, "sparse": {"1": [9]}}]})";

struct ReplicaProcess {
  ReplicaProcess(const std::string& config, int index, int push_port) {
    proc = std::make_unique<Subprocess>(std::vector<std::string>{
        FRESHET_BINARY_PATH, "serve", "--config", config, "--replica", std::to_string(index), "--push-port",
        std::to_string(push_port), "--admin-port", "0"});
    auto line = proc->WaitForLinePrefix("freshet serve:", 20000);
    EXPECT_TRUE(line.has_value()) << proc->transcript();
    if (!line) return;
    port = std::atoi(line->c_str() + line->find("push_port=") + 10);
    const std::string url = line->substr(line->find("admin=") + 6);  // http://127.0.0.1:A
    admin_port = std::atoi(url.c_str() + url.rfind(':') + 1);
  }
  std::string Score() {
    auto r = HttpCall("POST", "127.0.0.1", admin_port, "/v1/score", kScoreRequest);
    return r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
  }
  std::unique_ptr<Subprocess> proc;
  int port = 0, admin_port = 0;
};

// The /v1/score answer a replica serving stored version `v` must give.
std::string ExpectedScore(SnapshotStore& snapshots, uint64_t v) {
  auto full = snapshots.Materialize(v);
  EXPECT_TRUE(full.ok()) << full.status();
  auto model = BuildServingModel(TinyLearner(4, 0), TwoTasks());
  EXPECT_TRUE(model.ok() && full.ok() && ApplyUpdate(*full, model->get()).ok());
  auto request = ParseScoreRequest(kScoreRequest, 100);
  auto batch = BuildScoreBatch(*request, TinyLearner(4, 0).model(), 2);
  EXPECT_TRUE(batch.ok()) << batch.status();
  (*model)->Forward(*batch, /*training=*/false, 0);
  cpu::Mat<float> scores;
  cpu::PredictionsFromLogits((*model)->tasks(), (*model)->logits(), &scores);
  JsonWriter w;
  w.BeginObject().Key("version").Int(static_cast<int64_t>(v)).Key("tasks").BeginArray().String("click").String("like");
  w.EndArray().Key("items").BeginArray();
  for (int i = 0; i < 2; ++i) {
    w.BeginObject().Key("item_id").Raw(i == 0 ? "4" : "9").Key("scores").BeginObject();
    w.Key("click").Double(scores(i, 0)).Key("like").Double(scores(i, 1)).EndObject().EndObject();
  }
  w.EndArray().EndObject();
  return "200 " + w.str();
}

struct PushRig {
  PushRig() : dir("pub_push") {
    std::filesystem::create_directories(dir.path);
    key_file = (dir.path / "push.key").string();
    EXPECT_TRUE(WriteHmacKey(key_file, *GenerateHmacKey()).ok());
    FreshetConfig config;
    *config.mutable_learner() = TinyLearner(4, 0);
    for (const TaskConfig& t : TwoTasks()) *config.add_tasks() = t;
    config.mutable_publisher()->set_hmac_key_file(key_file);
    config_file = (dir.path / "serving.pbtxt").string();
    std::ofstream(config_file) << ops::ConfigToText(config);
    for (int i = 0; i < 2; ++i) replicas.push_back(std::make_unique<ReplicaProcess>(config_file, i, 0));

    db = testutil::OpenPublisherStore(dir.path / "db");
    learner::TrainingLoop::Options lo;
    lo.learner = TinyLearner(4, 0);
    lo.tasks = TwoTasks();
    lo.store = db.get();
    lo.metrics = &metrics;
    loop = std::move(learner::TrainingLoop::Create(lo)).value();
    Publisher::Options po;
    po.config.set_publish_interval_ms(1000000);  // the test cuts by hand
    po.config.set_reconnect_initial_ms(20);
    po.config.set_reconnect_max_ms(200);
    for (const auto& r : replicas) po.config.add_replicas("127.0.0.1:" + std::to_string(r->port));
    po.store = db.get();
    po.metrics = &metrics;
    po.hmac_key = *LoadHmacKey(key_file);
    publisher = std::move(Publisher::Create(po)).value();
    EXPECT_TRUE(publisher->Attach(loop.get()).ok());
  }
  ~PushRig() { publisher->Stop(); }
  uint64_t TrainAndCut(int count) {
    for (int i = next; i < next + count; ++i) EXPECT_TRUE(loop->Add(Record(MakeSample(i), i)).ok());
    next += count;
    auto c = publisher->CutNow(false);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->version : 0;
  }
  TempDir dir;
  std::string key_file, config_file;
  std::vector<std::unique_ptr<ReplicaProcess>> replicas;
  MetricsRegistry metrics;
  std::unique_ptr<store::KvStore> db;
  std::unique_ptr<learner::TrainingLoop> loop;
  std::unique_ptr<Publisher> publisher;
  int next = 0;
};

TEST(PublisherPushTest, ReplicasServeEachVersionRollbackPinsAndUnpinMovesOn) {
  PushRig rig;
  ASSERT_EQ(rig.TrainAndCut(40), 1u);
  ASSERT_TRUE(rig.publisher->WaitForReplicas(1, 20000));
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), ExpectedScore(rig.publisher->snapshots(), 1));
  for (uint64_t v = 2; v <= 4; ++v) {
    ASSERT_EQ(rig.TrainAndCut(40), v);
    ASSERT_TRUE(rig.publisher->WaitForReplicas(v, 20000)) << "v" << v;
  }
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), ExpectedScore(rig.publisher->snapshots(), 4));
  const std::string replica0 = "127.0.0.1:" + std::to_string(rig.replicas[0]->port);
  EXPECT_GE(rig.metrics.GetCounter("freshet_publisher_frames_sent_total", "", {{"replica", replica0}, {"type", "DELTA"}})
                ->Value(), 3);

  // Rollback to 2: both replicas serve exactly the stored v2; nothing new is published.
  ASSERT_TRUE(rig.publisher->Rollback(2, 20000).ok());
  const std::string v2 = ExpectedScore(rig.publisher->snapshots(), 2);
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), v2);
  EXPECT_EQ(rig.TrainAndCut(40), 0u);
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), v2);

  // Unpin: the training thread's next tick cuts a FULL of the newest model.
  EXPECT_EQ(rig.publisher->Unpin(0).status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(rig.loop->Tick().ok());
  ASSERT_EQ(rig.publisher->published_version(), 5u);
  ASSERT_TRUE(rig.publisher->WaitForReplicas(5, 20000));
  const std::string v5 = ExpectedScore(rig.publisher->snapshots(), 5);
  EXPECT_NE(v5.substr(v5.find("items")), v2.substr(v2.find("items")));
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), v5);
}

TEST(PublisherPushTest, ANanVersionIsNeverServedAndARestartedReplicaCatchesUp) {
  PushRig rig;
  ASSERT_EQ(rig.TrainAndCut(40), 1u);
  ASSERT_TRUE(rig.publisher->WaitForReplicas(1, 20000));
  float& w = rig.loop->trainer().model().params()[0]->value(0, 0);
  const float saved = w;
  w = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(rig.TrainAndCut(40), 0u);  // held back by the gate
  EXPECT_FALSE(rig.publisher->WaitForReplicas(2, 500));
  const std::string v1 = ExpectedScore(rig.publisher->snapshots(), 1);
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), v1);
  w = saved;

  // Replica 1 dies; replica 0 moves on alone; replica 1 comes back on its port and
  // gets a FULL of the newest version.
  const int port1 = rig.replicas[1]->port;
  rig.replicas[1]->proc->Signal(SIGKILL);
  rig.replicas[1]->proc->Wait(5000);
  ASSERT_EQ(rig.TrainAndCut(40), 2u);
  ASSERT_EQ(rig.TrainAndCut(40), 3u);
  rig.replicas[1] = std::make_unique<ReplicaProcess>(rig.config_file, 1, port1);
  ASSERT_TRUE(rig.publisher->WaitForReplicas(3, 20000));
  const std::string v3 = ExpectedScore(rig.publisher->snapshots(), 3);
  for (auto& r : rig.replicas) EXPECT_EQ(r->Score(), v3);
  const std::string replica1 = "127.0.0.1:" + std::to_string(port1);
  EXPECT_GE(rig.metrics.GetCounter("freshet_publisher_replica_errors_total", "", {{"replica", replica1}, {"reason", "closed"}})
                    ->Value() +
                rig.metrics.GetCounter("freshet_publisher_replica_errors_total", "", {{"replica", replica1}, {"reason", "connect"}})
                    ->Value(),
            1);
}

}  // namespace
}  // namespace freshet::publisher
