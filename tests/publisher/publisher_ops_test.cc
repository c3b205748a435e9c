// `freshet ops versions|rollback|pin|unpin` (the real binary) against a publisher's
// admin endpoints on a real AdminServer: listing, the token rule, rollback pinning,
// unpin cutting a FULL on the "training thread", and an unreachable learner.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "publisher/publisher.h"
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
using testing::RunShell;

TEST(PublisherOpsTest, VersionsRollbackPinAndUnpinThroughTheCli) {
  TempDir dir("pub_ops");
  std::filesystem::create_directories(dir.path);
  auto db = testutil::OpenPublisherStore(dir.path / "db");
  ASSERT_NE(db, nullptr);
  MetricsRegistry metrics;
  learner::TrainingLoop::Options lo;
  lo.learner = TinyLearner(4, 0);
  lo.tasks = TwoTasks();
  lo.store = db.get();
  lo.metrics = &metrics;
  auto loop = std::move(learner::TrainingLoop::Create(lo)).value();
  Publisher::Options po;
  po.config.set_publish_interval_ms(1000000);
  po.store = db.get();
  po.metrics = &metrics;
  auto publisher = std::move(Publisher::Create(po)).value();
  ASSERT_TRUE(publisher->Attach(loop.get()).ok());
  for (int v = 0; v < 2; ++v) {
    for (int i = v * 40; i < v * 40 + 40; ++i) ASSERT_TRUE(loop->Add(Record(MakeSample(i), i)).ok());
    ASSERT_TRUE(publisher->CutNow(false).ok());
  }
  AdminServer::Options ao;
  ao.admin_token = "s3cret-token";
  AdminServer admin(ao, &metrics);
  publisher->RegisterAdmin(&admin);
  ASSERT_TRUE(admin.Start().ok());
  const std::string token = (dir.path / "token").string(), wrong = (dir.path / "wrong").string();
  std::ofstream(token) << "s3cret-token\n";
  std::ofstream(wrong) << "guess\n";
  const std::string ops = std::string(FRESHET_BINARY_PATH) + " ops ";
  const std::string at = " --learner 127.0.0.1:" + std::to_string(admin.port());

  auto r = RunShell(ops + "versions" + at);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\n1        full"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n2        delta  1"), std::string::npos) << r.output;

  r = RunShell(ops + "rollback --to 1" + at);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("needs the admin token"), std::string::npos) << r.output;
  r = RunShell(ops + "rollback --to 1 --token-file " + wrong + at);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_FALSE(publisher->pinned().has_value());
  r = RunShell(ops + "rollback --to 7 --token-file " + token + at);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not in the snapshot store"), std::string::npos) << r.output;
  r = RunShell(ops + "rollback --to 1 --token-file " + token + at);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(publisher->pinned(), std::optional<uint64_t>(1));
  r = RunShell(ops + "versions --json" + at);
  EXPECT_NE(r.output.find("\"pinned\":1"), std::string::npos) << r.output;

  // unpin waits for the training thread: tick the loop meanwhile, as the learner does.
  std::atomic<bool> done{false};
  std::thread trainer([&] {
    while (!done) {
      EXPECT_TRUE(loop->Tick().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  r = RunShell(ops + "unpin --token-file " + token + at);
  done = true;
  trainer.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"version\":3"), std::string::npos) << r.output;
  EXPECT_FALSE(publisher->pinned().has_value());
  // A full snapshot on demand: cut at the training thread's next tick.
  r = RunShell(ops + "snapshot --token-file " + token + at);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(loop->Tick().ok());
  r = RunShell(ops + "versions" + at);
  EXPECT_NE(r.output.find("\n4        full"), std::string::npos) << r.output;
  r = RunShell(ops + "pin --token-file " + token + at);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(publisher->pinned(), std::optional<uint64_t>(4));

  admin.Stop();
  r = RunShell(ops + "versions" + at);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("unreachable"), std::string::npos) << r.output;
  r = RunShell(ops + "rollback" + at);
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace freshet::publisher
