// Crash safety of the real daemon: `freshet kafka` hosts the cluster in its own
// process, the test streams simulated traffic into it while `freshet ingest` is
// killed with SIGKILL at random points and restarted. Afterwards every impression has
// its sample with the right labels, no sample_id is missing, and every duplicate is
// an exact replay. Finally SIGTERM stops the daemon with exit 0 within 10 s.
#include <gtest/gtest.h>

#include <regex>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "common/clock.h"
#include "common/http_client.h"
#include "ops/config.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/util/subprocess.h"

namespace freshet::ingest {
namespace {

// Counters from the daemon's /status.
struct JoinerCounts {
  int64_t samples = -1;
  int64_t checkpoints = -1;
};

JoinerCounts ReadCounts(int port) {
  JoinerCounts c;
  auto r = HttpGet("127.0.0.1", port, "/status", 2000);
  if (!r.ok()) return c;
  std::smatch m;
  if (std::regex_search(r->body, m, std::regex("\"samples\":(\\d+)"))) c.samples = std::stoll(m[1]);
  if (std::regex_search(r->body, m, std::regex("\"checkpoints\":(\\d+)"))) c.checkpoints = std::stoll(m[1]);
  return c;
}

int AdminPort(const std::string& line) {
  std::smatch m;
  return std::regex_search(line, m, std::regex(":(\\d+)")) ? std::stoi(m[1]) : -1;
}

// Polls /status until the sample count grew while the checkpoint count stayed put;
// returns the number of samples emitted since that checkpoint (0 on timeout).
JoinerCounts WaitForUncheckpointedSamples(int port, int timeout_ms) {
  const int64_t deadline = Clock::Real()->NowMs() + timeout_ms;
  JoinerCounts base = ReadCounts(port);
  while (Clock::Real()->NowMs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    JoinerCounts now = ReadCounts(port);
    if (now.checkpoints != base.checkpoints) {
      base = now;
    } else if (now.samples > base.samples) {
      return {now.samples - base.samples, now.checkpoints};
    }
  }
  JoinerCounts last = ReadCounts(port);
  std::printf("kill on a quiet daemon: samples=%lld checkpoints=%lld\n", static_cast<long long>(last.samples),
              static_cast<long long>(last.checkpoints));
  return {0, base.checkpoints};
}

constexpr int kPartitions = 4;

TEST(IngestCrashTest, SigkillAtRandomPointsLosesNoSample) {
  const std::string bin = FRESHET_BINARY_PATH;
  freshet::testing::Subprocess kafka({bin, "kafka", "--brokers", "1", "--partitions", std::to_string(kPartitions)});
  auto line = kafka.WaitForLinePrefix("bootstrap=", 20000);
  ASSERT_TRUE(line.has_value()) << kafka.transcript();
  const std::string bootstrap = line->substr(strlen("bootstrap="));

  FreshetConfig config = ops::DefaultConfig();
  config.mutable_simulator()->set_impressions_per_second(100);
  const std::string dir = std::filesystem::temp_directory_path() / ("freshet_crash_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto ingest_cmd = [&] {
    return std::vector<std::string>{bin, "ingest", "--kafka", bootstrap, "--data-dir", dir, "--admin-port", "0"};
  };

  KafkaProducer::Options po;
  po.bootstrap_servers = bootstrap;
  auto producer = std::move(KafkaProducer::Create(po)).value();
  testutil::RecordingSink sink(producer.get(), config.kafka());
  const int64_t start = Clock::Real()->NowMs() - 900000;
  ops::TrafficSimulator sim(config.simulator(), start);
  constexpr int64_t kStreamMs = 240000;
  std::atomic<bool> streamed{false};
  Status stream_status;
  // 240 s of event time streamed over ~30 s of wall time while the daemon dies.
  std::thread streamer([&] {
    for (int chunk = 1; chunk <= 60 && stream_status.ok(); ++chunk) {
      stream_status = sim.AdvanceTo(start + kStreamMs * chunk / 60, &sink);
      if (stream_status.ok()) stream_status = producer->Flush(10000);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (stream_status.ok()) stream_status = sink.FlushWatermarks(kPartitions, start + kStreamMs + 200000);
    streamed = true;
  });

  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  int kills = 0;
  int kills_after_uncheckpointed_samples = 0;
  for (; kills < 3; ++kills) {
    freshet::testing::Subprocess ingest(ingest_cmd(), /*merge_stderr=*/true);
    auto admin = ingest.WaitForLinePrefix("freshet ingest: admin", 20000);
    ASSERT_TRUE(admin.has_value()) << ingest.transcript();
    const int port = AdminPort(*admin);
    // Wait for the partitions (group join, plus the dead member's session timeout
    // after a kill).
    bool assigned = false;
    const int64_t deadline = Clock::Real()->NowMs() + 30000;
    while (!assigned && Clock::Real()->NowMs() < deadline) {
      auto l = ingest.ReadLine(1000);
      assigned = l && l->find("ingest_partition_loaded") != std::string::npos;
    }
    ASSERT_TRUE(assigned) << ingest.transcript();
    // Die at a random moment, but one at which samples have been emitted since the
    // last checkpoint: those are exactly the ones a restart must replay (a kill right
    // after a checkpoint would test nothing).
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
    // Late in the stream there may be nothing left to emit until the final watermark
    // flush; then the kill simply lands on a quiet daemon.
    const JoinerCounts at_kill = WaitForUncheckpointedSamples(port, 5000);
    if (at_kill.samples > 0) {
      ++kills_after_uncheckpointed_samples;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let them reach Kafka (linger 5 ms)
    }
    ingest.Signal(SIGKILL);
    ASSERT_EQ(ingest.Wait(5000), 128 + SIGKILL);
  }
  streamer.join();
  ASSERT_TRUE(stream_status.ok()) << stream_status;
  const size_t n = sink.impressions.size();
  ASSERT_GT(n, 20000u);

  freshet::testing::Subprocess ingest(ingest_cmd(), /*merge_stderr=*/false);
  ASSERT_TRUE(ingest.WaitForLinePrefix("freshet ingest: admin", 20000).has_value()) << ingest.transcript();
  // Read until every impression's sample_id has been seen.
  std::set<std::string> distinct;
  size_t parsed = 0;
  int64_t complete_at = 0;
  auto messages = testutil::ReadTopic(bootstrap, "samples", 90000, [&](const std::vector<KafkaMessage>& m) {
    for (; parsed < m.size(); ++parsed) {
      Sample s;
      if (s.ParseFromString(m[parsed].value)) distinct.insert(s.sample_id());
    }
    // Once complete, keep reading 3 s more so replayed duplicates are seen too.
    if (distinct.size() >= n && complete_at == 0) complete_at = Clock::Real()->NowMs();
    return complete_at > 0 && Clock::Real()->NowMs() > complete_at + 3000;
  });
  // Clean stop: exit 0 within 10 s.
  const int64_t t0 = Clock::Real()->NowMs();
  ingest.Signal(SIGTERM);
  EXPECT_EQ(ingest.Wait(10000), 0);
  EXPECT_LT(Clock::Real()->NowMs() - t0, 10000);

  std::map<std::string, std::string> first;  // id -> canonical bytes
  size_t duplicates = 0;
  for (const KafkaMessage& m : messages) {
    Sample s;
    ASSERT_TRUE(s.ParseFromString(m.value));
    s.clear_emit_time_ms();
    const std::string bytes = s.SerializeAsString();
    auto [it, inserted] = first.emplace(s.sample_id(), bytes);
    if (!inserted) {
      ++duplicates;
      EXPECT_EQ(it->second, bytes) << "duplicate " << s.sample_id() << " is not an exact replay";
    }
  }
  std::printf("impressions=%zu samples_read=%zu distinct=%zu duplicates=%zu kills=%d after_uncheckpointed=%d\n", n,
              messages.size(), first.size(), duplicates, kills, kills_after_uncheckpointed_samples);
  // A kill after samples that no checkpoint covered means they are emitted again.
  ASSERT_GT(kills_after_uncheckpointed_samples, 0) << "no kill landed on un-checkpointed samples";
  EXPECT_GT(duplicates, 0u) << "kills after un-checkpointed samples must produce exact replays";
  ASSERT_EQ(first.size(), n) << "distinct sample_ids differ from impressions";
  for (const Impression& imp : sink.impressions) {
    auto it = first.find(imp.request_id());
    ASSERT_NE(it, first.end()) << "lost sample " << imp.request_id();
    Sample s;
    ASSERT_TRUE(s.ParseFromString(it->second));
    const testutil::Expected e = testutil::ExpectedWait(config, imp, sink.labels[imp.request_id()]);
    for (int t = 0; t < config.tasks_size(); ++t) {
      ASSERT_EQ(s.mask(t), e.mask[t]) << imp.request_id() << " task " << config.tasks(t).name();
      ASSERT_FLOAT_EQ(s.label(t), e.label[t]) << imp.request_id() << " task " << config.tasks(t).name();
    }
  }
  kafka.Signal(SIGTERM);
  kafka.Wait(10000);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace freshet::ingest
