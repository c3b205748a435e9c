// The real `freshet serve` process over TCP. Frames are cut from a learner Trainer in
// this test and pushed by a small client speaking publisher/frame.h; scores come back
// over POST /v1/score. Checked from the replica's served version, its scores and its
// metrics: scores equal the learner's CPU forward bit for bit; a tampered HMAC and a
// corrupted payload are refused and counted, nothing applied; a delta on the wrong
// base gets NEED_FULL; a killed and restarted replica serves nothing until a FULL.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/property_tree/json_parser.hpp>
#include <cstring>
#include <fstream>
#include <regex>

#include <google/protobuf/text_format.h>

#include "common/check.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "learner/cpu/trainer.h"
#include "publisher/frame.h"
#include "publisher/model_update.h"
#include "publisher/push_connection.h"
#include "publisher/score_request.h"
#include "tests/learner/cpu/test_util.h"
#include "tests/util/subprocess.h"

namespace freshet::publisher {
namespace {

using freshet::testing::Subprocess;

const std::string kKey = "serving-test-key-0123456789abcdef";

StatusOr<Frame> SendOne(int port, const std::string& bytes) {
  ASSIGN_OR_RETURN(auto conn, PushConnection::Connect("127.0.0.1", port, kKey, 10000));
  return conn->Exchange(bytes);
}

class ServingProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/freshet_serve_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_TRUE(WriteHmacKey(dir_ + "/push.key", kKey).ok());
    config_.mutable_learner()->CopyFrom(cpu::testing::SmallConfig(FAMILY_HOME));
    const LabelKind kinds[] = {LABEL_CLICK, LABEL_LONG_VIEW, LABEL_PLAY_TIME};
    int k = 0;
    for (TaskConfig t : cpu::testing::SmallTasks()) {
      t.add_label_kinds(kinds[k++]);
      *config_.add_tasks() = t;
    }
    config_.mutable_admin()->set_serving_base_port(0);
    config_.mutable_serving()->set_push_base_port(0);
    config_.mutable_publisher()->set_hmac_key_file(dir_ + "/push.key");
    std::string text;
    google::protobuf::TextFormat::PrintToString(config_, &text);
    std::ofstream(dir_ + "/serving.pbtxt") << text;
    auto t = cpu::Trainer<float>::Create(config_.learner(), {config_.tasks().begin(), config_.tasks().end()});
    ASSERT_TRUE(t.ok()) << t.status();
    trainer_ = std::move(*t);
    StartReplica();
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void StartReplica() {
    replica_ = std::make_unique<Subprocess>(std::vector<std::string>{
        FRESHET_BINARY_PATH, "serve", "--config", dir_ + "/serving.pbtxt", "--replica", "0"});
    auto line = replica_->WaitForLinePrefix("freshet serve:", 20000);
    ASSERT_TRUE(line.has_value()) << replica_->transcript();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex("push_port=([0-9]+) admin=http://[0-9.]+:([0-9]+)"))) << *line;
    push_port_ = std::stoi(m[1]);
    admin_port_ = std::stoi(m[2]);
  }

  void Train(int steps) {
    for (int i = 0; i < steps; ++i) {
      Batch b = cpu::testing::RandomBatch(config_.learner().model(), 3, 16, seed_++, -1, 30);
      for (size_t s = 0; s < b.sparse.size(); ++s)
        for (uint64_t id : b.sparse[s].ids) touched_.push_back({static_cast<int32_t>(s), id});
      ASSERT_TRUE(trainer_->Train(b, 1000 + seed_).ok());
    }
  }
  std::string FullFrame(uint64_t version) {
    ModelManifest m;
    m.set_version(version);
    m.set_newest_sample_emit_time_ms(Clock::Real()->NowMs() - 1500);
    const ModelUpdate u = MakeFullUpdate(trainer_->model(), m);
    touched_.clear();
    return EncodeFrame({FrameType::kFull, version, 0}, u.SerializeAsString(), kKey);
  }
  std::string DeltaFrame(uint64_t version, uint64_t base) {
    ModelManifest m;
    m.set_version(version);
    m.set_base_version(base);
    DeltaContent content;
    content.touched = touched_;
    const ModelUpdate u = MakeDeltaUpdate(trainer_->model(), m, content);
    touched_.clear();
    return EncodeFrame({FrameType::kDelta, version, base}, u.SerializeAsString(), kKey);
  }
  Frame Push(const std::string& bytes) {
    StatusOr<Frame> reply = SendOne(push_port_, bytes);
    CHECK(reply.ok()) << reply.status().ToString();
    return *reply;
  }

  // A user with features in slots 1 (sparse) and 2 (dense); items with slots 2 and 5
  // (sparse) and 1 (dense), including ids the model has never seen.
  ScoreRequest Request() const {
    ScoreRequest r;
    r.user_id = 77;
    r.user.sparse[1] = {3, 11};
    r.user.dense[2] = {0.25f};
    for (uint64_t i = 0; i < 5; ++i) {
      ScoreItem item;
      item.item_id = 1000 + i;
      item.features.sparse[2] = {i, i + 7};
      item.features.sparse[5] = {i * 3 % 40};
      item.features.dense[1] = {0.1f * static_cast<float>(i), -0.7f};
      r.items.push_back(item);
    }
    return r;
  }
  // The learner's own path: Samples → BatchBuilder → Trainer::Predict.
  cpu::Mat<float> LearnerScores(const ScoreRequest& r) {
    BatchBuilder builder(config_.learner().model(), 3);
    for (const ScoreItem& item : r.items) {
      Sample s;
      for (const ScoreFeatures* f : {&r.user, &item.features}) {
        for (const auto& [slot, ids] : f->sparse) {
          SparseFeature* sf = s.add_sparse();
          sf->set_slot(slot);
          for (uint64_t id : ids) sf->add_ids(id);
        }
        for (const auto& [slot, values] : f->dense) {
          DenseFeature* df = s.add_dense();
          df->set_slot(slot);
          for (float v : values) df->add_values(v);
        }
      }
      for (int t = 0; t < 3; ++t) s.add_label(0), s.add_mask(false);
      CHECK_OK(builder.Add(s));
    }
    auto p = trainer_->Predict(builder.Finish());
    CHECK_OK(p.status());
    return *p;
  }
  // POST /v1/score → (version, scores), or the HTTP status when not 200.
  std::pair<int64_t, cpu::Mat<float>> ServedScores(const ScoreRequest& r, int* http_status = nullptr) {
    auto res = HttpCall("POST", "127.0.0.1", admin_port_, "/v1/score", ScoreRequestToJson(r),
                        {{"Content-Type", "application/json"}});
    CHECK(res.ok()) << res.status().ToString();
    if (http_status != nullptr) *http_status = res->status;
    if (res->status != 200) return {-1, {}};
    boost::property_tree::ptree root;
    std::istringstream in(res->body);
    boost::property_tree::read_json(in, root);
    cpu::Mat<float> scores(static_cast<int>(r.items.size()), 3);
    int i = 0;
    for (const auto& [unused, item] : root.get_child("items")) {
      int t = 0;
      for (const char* task : {"click", "long_view", "play_time"})
        scores(i, t++) = static_cast<float>(std::strtod(item.get<std::string>(std::string("scores.") + task).c_str(), nullptr));
      ++i;
    }
    return {root.get<int64_t>("version"), scores};
  }
  int64_t ServedVersion() {
    auto res = HttpGet("127.0.0.1", admin_port_, "/status");
    CHECK(res.ok()) << res.status().ToString();
    std::smatch m;
    CHECK(std::regex_search(res->body, m, std::regex("\"version\":([0-9]+)"))) << res->body;
    return std::stoll(m[1]);
  }
  double Metric(const std::string& line_prefix) {
    auto res = HttpGet("127.0.0.1", admin_port_, "/metrics");
    CHECK(res.ok());
    const size_t at = res->body.find("\n" + line_prefix + " ");
    return at == std::string::npos ? 0.0 : std::strtod(res->body.c_str() + at + line_prefix.size() + 2, nullptr);
  }
  int Readyz() {
    auto res = HttpGet("127.0.0.1", admin_port_, "/readyz");
    return res.ok() ? res->status : -1;
  }

  std::string dir_;
  FreshetConfig config_;
  std::unique_ptr<cpu::Trainer<float>> trainer_;
  std::vector<cpu::EmbeddingKey> touched_;
  uint64_t seed_ = 1;
  std::unique_ptr<Subprocess> replica_;
  int push_port_ = 0, admin_port_ = 0;
};

void ExpectBitIdentical(const cpu::Mat<float>& served, const cpu::Mat<float>& learner) {
  ASSERT_EQ(served.rows(), learner.rows());
  ASSERT_EQ(served.cols(), learner.cols());
  for (int i = 0; i < served.rows(); ++i)
    for (int t = 0; t < served.cols(); ++t)
      EXPECT_EQ(std::memcmp(&served(i, t), &learner(i, t), sizeof(float)), 0)
          << "item " << i << " task " << t << ": served " << served(i, t) << " learner " << learner(i, t);
}

TEST_F(ServingProcessTest, ScoresEqualTheLearnersForwardForFullAndDelta) {
  EXPECT_EQ(Readyz(), 503) << "not ready before a version is served";
  int status = 0;
  ServedScores(Request(), &status);
  EXPECT_EQ(status, 503);

  Train(15);
  Frame ack = Push(FullFrame(1));
  EXPECT_EQ(ack.header.type, FrameType::kAck);
  EXPECT_EQ(ack.header.version, 1u);
  EXPECT_EQ(Readyz(), 200);
  auto [version, scores] = ServedScores(Request());
  EXPECT_EQ(version, 1);
  ExpectBitIdentical(scores, LearnerScores(Request()));

  Train(5);
  ack = Push(DeltaFrame(2, 1));
  EXPECT_EQ(ack.header.type, FrameType::kAck) << ack.payload;
  EXPECT_EQ(ack.header.version, 2u);
  auto [version2, scores2] = ServedScores(Request());
  EXPECT_EQ(version2, 2);
  ExpectBitIdentical(scores2, LearnerScores(Request()));
  EXPECT_EQ(ServedVersion(), 2);
  EXPECT_EQ(Metric("freshet_serving_version"), 2.0);
  EXPECT_EQ(Metric("freshet_serving_frames_total{type=\"DELTA\",result=\"applied\"}"), 1.0);

  // A bad request is a 400 naming the field, not a crash.
  ScoreRequest bad = Request();
  bad.items[1].features.dense[1] = {1.0f};
  ServedScores(bad, &status);
  EXPECT_EQ(status, 400);
}

TEST_F(ServingProcessTest, TamperedOrCorruptFramesAreRefusedCountedAndNotApplied) {
  Train(10);
  ASSERT_EQ(Push(FullFrame(1)).header.type, FrameType::kAck);
  const cpu::Mat<float> v1 = LearnerScores(Request());
  Train(5);
  const std::string delta = DeltaFrame(2, 1);

  std::string bad_hmac = delta;
  bad_hmac[bad_hmac.size() - 5] ^= 0x01;
  StatusOr<Frame> reply = SendOne(push_port_, bad_hmac);
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable) << "a bad frame closes the connection, no reply";

  std::string bad_crc = delta;
  bad_crc[kFrameHeaderBytes + 100] ^= 0x20;
  reply = SendOne(push_port_, bad_crc);
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);

  // A frame signed with another key, CRC intact: refused as a bad HMAC too.
  ModelUpdate forged;
  ASSERT_TRUE(forged.ParseFromString(DecodeFrame(delta, kKey, 1 << 30)->payload));
  reply = SendOne(push_port_, 
      EncodeFrame({FrameType::kDelta, 2, 1}, forged.SerializeAsString(), "an attacker's key, long enough"));
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);

  EXPECT_EQ(ServedVersion(), 1);
  EXPECT_EQ(Metric("freshet_serving_bad_frames_total{reason=\"bad_hmac\"}"), 2.0);
  EXPECT_EQ(Metric("freshet_serving_bad_frames_total{reason=\"bad_crc\"}"), 1.0);
  auto [version, scores] = ServedScores(Request());
  EXPECT_EQ(version, 1);
  ExpectBitIdentical(scores, v1);

  // The genuine delta still applies afterwards.
  EXPECT_EQ(Push(delta).header.type, FrameType::kAck);
  EXPECT_EQ(ServedVersion(), 2);
}

TEST_F(ServingProcessTest, DeltaOnTheWrongBaseGetsNeedFull) {
  Train(10);
  ASSERT_EQ(Push(FullFrame(1)).header.type, FrameType::kAck);
  const cpu::Mat<float> v1 = LearnerScores(Request());
  Train(3);
  const Frame reply = Push(DeltaFrame(3, 2));  // serving never got version 2
  EXPECT_EQ(reply.header.type, FrameType::kNeedFull);
  EXPECT_EQ(reply.header.version, 1u) << "NEED_FULL carries the served version";
  EXPECT_EQ(reply.header.base_version, 3u) << "and the version it answers";
  EXPECT_EQ(ServedVersion(), 1);
  auto [version, scores] = ServedScores(Request());
  EXPECT_EQ(version, 1);
  ExpectBitIdentical(scores, v1);
  EXPECT_EQ(Metric("freshet_serving_frames_total{type=\"DELTA\",result=\"need_full\"}"), 1.0);
}

TEST_F(ServingProcessTest, KilledReplicaServesNothingUntilAFull) {
  Train(10);
  ASSERT_EQ(Push(FullFrame(1)).header.type, FrameType::kAck);
  replica_->Signal(SIGKILL);
  ASSERT_TRUE(replica_->Wait(10000).has_value());
  StartReplica();

  EXPECT_EQ(ServedVersion(), 0);
  EXPECT_EQ(Readyz(), 503);
  int status = 0;
  ServedScores(Request(), &status);
  EXPECT_EQ(status, 503);
  Frame ping = Push(EncodeFrame({FrameType::kPing, 0, 0}, "", kKey));
  EXPECT_EQ(ping.header.type, FrameType::kAck);
  EXPECT_EQ(ping.header.version, 0u);

  Train(3);
  EXPECT_EQ(Push(DeltaFrame(2, 1)).header.type, FrameType::kNeedFull);
  EXPECT_EQ(ServedVersion(), 0);
  EXPECT_EQ(Push(FullFrame(2)).header.type, FrameType::kAck);
  auto [version, scores] = ServedScores(Request());
  EXPECT_EQ(version, 2);
  ExpectBitIdentical(scores, LearnerScores(Request()));

  replica_->Signal(SIGTERM);
  EXPECT_EQ(replica_->Wait(10000), std::optional<int>(0)) << replica_->transcript();
}

}  // namespace
}  // namespace freshet::publisher
