// Issue 9 item 5: the KuaiRand-Pure log replayed through the streaming path gives the
// prequential metrics `freshet eval --mode prequential` gives on the same rows.
//
//   `freshet replay kuairand` (real binary) ─► embedded Kafka (impressions, labels)
//     ─► IngestComponent (joiner, `wait`) ─► samples ─► LearnerComponent (OnlineLearner)
//
// beside RunEval (the core of `freshet eval`) on LoadKuaiRand of the same log rows.
// Three comparisons, strongest first:
//   1. The samples the joiner emitted, in the order the learner read them, fed to
//      RunEval with the learner's seed give the learner's metrics EXACTLY: the streaming
//      path (Kafka, batching, dedup, TrainingLoop, scorer) computes what eval computes.
//   2. Per task, the pipeline's observed/positive counts equal eval's: with every task
//      window longer than the longest play time (the log's label delay) no label is late.
//   3. Per task, pipeline AUC vs `freshet eval` (log order) is within noise, where noise
//      = 3 x the seed-to-seed std of eval's AUC over kSeeds seeds (+ a 0.01 floor for
//      tasks with few positives). The joiner emits rows with equal event times in
//      request_id order, not log order, so batches are not identical to eval's.
//
// FRESHET_PIPELINE_EVAL_ROWS (0 = the whole log), FRESHET_PIPELINE_EVAL_WINDOW_MS and
// FRESHET_PIPELINE_EVAL_PARTITIONS size the run for ops/eval/stream_vs_eval.sh; the
// defaults keep it to a few thousand rows (seconds). It prints the comparison table.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/logging.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "ingest/kuairand_data.h"
#include "learner/eval/eval_runner.h"
#include "ops/config.h"
#include "ops/ingest_component.h"
#include "ops/learner_component.h"
#include "schemas/sample.pb.h"
#include "tests/ops/kuairand_head.h"
#include "tests/util/subprocess.h"

namespace freshet::ops {
namespace {

namespace fs = std::filesystem;

const std::string kLog = freshet::testing::KuaiRandDir() + "/" + freshet::testing::kKuaiRandLogName;
constexpr int kDefaultRows = 6144;              // 24 batches of 256
constexpr int64_t kDefaultWindowMs = 900'000;   // > the log's longest play time (779 s)
constexpr int kSeeds = 5;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoll(v) : fallback;
}

// The log path the replay reads: the first `rows` rows (tests/ops/kuairand_head.h), or
// the log itself.
std::string LogWithRows(const fs::path& dir, int64_t rows) {
  if (rows <= 0) return kLog;
  const int clicks = freshet::testing::WriteKuaiRandHead(dir, static_cast<int>(rows), /*click_window_ms=*/0);
  return clicks >= 0 ? (dir / freshet::testing::kKuaiRandLogName).string() : "";
}

// The eval config of `freshet eval --data kuairand` (configs/eval/kuairand.pbtxt with
// the data set's slots), every window set to window_ms, wired for an in-process
// pipeline: size-only batches (so batch boundaries do not depend on timing), metrics
// over every scored sample, no publisher, loopback ports picked by the OS.
StatusOr<FreshetConfig> PipelineConfig(const ingest::EvalData& data, int64_t window_ms, int partitions,
                                       const fs::path& dir) {
  ASSIGN_OR_RETURN(FreshetConfig c, LoadConfigFile(FRESHET_SOURCE_DIR "/configs/eval/kuairand.pbtxt"));
  for (TaskConfig& t : *c.mutable_tasks()) t.set_window_ms(window_ms);
  ModelConfig* m = c.mutable_learner()->mutable_model();
  *m->mutable_sparse_slots() = data.input.sparse_slots();
  *m->mutable_dense_slots() = data.input.dense_slots();
  c.mutable_learner()->set_batch_deadline_ms(0);
  c.mutable_learner()->set_eval_window(1 << 30);
  c.mutable_learner()->set_checkpoint_interval_ms(3'600'000);
  c.mutable_kafka()->set_partitions(partitions);
  c.mutable_publisher()->set_enabled(false);
  c.mutable_admin()->set_ingest_port(0);
  c.mutable_admin()->set_learner_port(0);
  c.mutable_store()->set_data_dir(dir.string());
  ApplyDefaults(&c);
  RETURN_IF_ERROR(Validate(c));
  return c;
}

std::vector<TaskConfig> Tasks(const FreshetConfig& c) { return {c.tasks().begin(), c.tasks().end()}; }

StatusOr<learner::EvalResult> Prequential(const FreshetConfig& c, const std::vector<Sample>& rows, uint64_t seed) {
  LearnerConfig l = c.learner();
  l.set_seed(seed);
  learner::EvalOptions o;
  o.mode = learner::EvalMode::kPrequential;
  return learner::RunEval(l, Tasks(c), rows, {}, o);
}

// Every sample of the samples topic, in partition-then-offset order per poll (what a
// fresh consumer reads; with one partition, the learner's order).
std::vector<Sample> ReadSamples(const std::string& bootstrap, const FreshetConfig& c, size_t want) {
  ingest::KafkaConsumer::Options o;
  o.bootstrap_servers = bootstrap;
  o.group_id = "pipeline-eval-reader";
  auto consumer = ingest::KafkaConsumer::Create(o);
  std::vector<Sample> out;
  if (!consumer.ok() || !(*consumer)->Subscribe({c.kafka().samples_topic()}).ok()) return out;
  const int64_t deadline = Clock::Real()->NowMs() + 60'000;
  while (out.size() < want && Clock::Real()->NowMs() < deadline) {
    auto m = (*consumer)->Poll(200);
    if (!m.ok() || !m->has_value()) continue;
    Sample s;
    if (s.ParseFromString((*m)->value) && s.request_id().rfind("flush-", 0) != 0) out.push_back(std::move(s));
  }
  return out;
}

TEST(PipelineEvalTest, ReplayThroughIngestAndLearnerMatchesEval) {
  SKIP_WITHOUT_DATA(kLog);
  SetMinLogLevel(LogLevel::kWarning);
  const int64_t rows = EnvInt("FRESHET_PIPELINE_EVAL_ROWS", kDefaultRows);
  const int64_t window_ms = EnvInt("FRESHET_PIPELINE_EVAL_WINDOW_MS", kDefaultWindowMs);
  const int partitions = static_cast<int>(EnvInt("FRESHET_PIPELINE_EVAL_PARTITIONS", 1));
  const fs::path dir = fs::temp_directory_path() / ("freshet_pipeline_eval_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string log = LogWithRows(dir / "log", rows);
  ASSERT_FALSE(log.empty());

  // freshet eval's data: the same rows, labelled with every label (no windows).
  ingest::KuaiRandDataOptions dopt;
  dopt.log_path = log;
  dopt.test_from_ms = INT64_MAX;
  auto base = LoadConfigFile(FRESHET_SOURCE_DIR "/configs/eval/kuairand.pbtxt");
  ASSERT_TRUE(base.ok()) << base.status();
  auto data = ingest::LoadKuaiRand(dopt, *base);
  ASSERT_TRUE(data.ok()) << data.status();
  auto config = PipelineConfig(*data, window_ms, partitions, dir);
  ASSERT_TRUE(config.ok()) << config.status();
  const FreshetConfig& c = *config;
  const int bs = c.learner().batch_size();
  const size_t trained = data->train.size() - data->train.size() % bs;  // size-only: full batches
  ASSERT_GT(trained, 0u);
  const std::string config_file = (dir / "config.pbtxt").string();
  std::ofstream(config_file) << ConfigToText(c);

  // The pipeline.
  auto kafka = ingest::EmbeddedKafka::Start(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  for (const std::string& t : {c.kafka().impressions_topic(), c.kafka().labels_topic(), c.kafka().samples_topic(),
                                c.kafka().deadletter_topic()})
    ASSERT_TRUE((*kafka)->CreateTopic(t, partitions).ok());
  const std::string bootstrap = (*kafka)->bootstrap();
  auto ingest = IngestComponent::Start(c, bootstrap, (dir / "ingest").string());
  ASSERT_TRUE(ingest.ok()) << ingest.status();
  LearnerComponent::Options lopt;
  lopt.config = c;
  lopt.bootstrap = bootstrap;
  lopt.store_path = (dir / "learner").string();
  lopt.dashboard_peers = std::vector<DashboardSource>{};
  auto learner = LearnerComponent::Start(std::move(lopt));
  ASSERT_TRUE(learner.ok()) << learner.status();

  const auto t0 = std::chrono::steady_clock::now();
  auto replay = freshet::testing::RunShell("'" + std::string(FRESHET_BINARY_PATH) + "' replay kuairand --log '" + log +
                                           "' --kafka " + bootstrap + " --config '" + config_file + "' 2>&1");
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  const int64_t deadline = Clock::Real()->NowMs() + 120'000 + static_cast<int64_t>(trained) / 20;
  while ((*learner)->Progress().samples_trained < static_cast<int64_t>(trained) && (*learner)->running() &&
         Clock::Real()->NowMs() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double pipeline_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE((*learner)->Stop().ok());
  const learner::LearnerProgress p = (*learner)->Progress();
  ASSERT_EQ(p.samples_trained, static_cast<int64_t>(trained)) << "ingest stats: samples=" << (*ingest)->stats().samples;
  EXPECT_EQ(p.duplicates_skipped, 0);
  EXPECT_EQ(p.bad_samples, 0);
  // 1. The learner's exact computation, replayed by eval on the streamed order. With
  //    several partitions the learner's interleaving is not a reader's: skipped.
  learner::EvalResult same_order;
  if (partitions == 1) {
    std::vector<Sample> streamed = ReadSamples(bootstrap, c, data->train.size());
    ASSERT_EQ(streamed.size(), data->train.size());
    streamed.resize(trained);
    auto r = Prequential(c, streamed, c.learner().seed());
    ASSERT_TRUE(r.ok()) << r.status();
    same_order = std::move(r).value();
  }
  ASSERT_TRUE((*ingest)->Stop().ok());
  // 3. freshet eval on the log order, over seeds: the noise.
  const std::vector<Sample> eval_rows(data->train.begin(), data->train.begin() + trained);
  std::vector<learner::EvalResult> seeds;
  for (int s = 0; s < kSeeds; ++s) {
    auto r = Prequential(c, eval_rows, c.learner().seed() + s);
    ASSERT_TRUE(r.ok()) << r.status();
    seeds.push_back(std::move(r).value());
  }

  std::printf("rows=%zu trained=%zu window_ms=%lld partitions=%d pipeline_s=%.1f\n", data->train.size(), trained,
              static_cast<long long>(window_ms), partitions, pipeline_s);
  // AUC for binary tasks, MSE for regression ones.
  auto q = [](const learner::TaskMetrics& m) { return m.regression ? m.mse : m.auc; };
  std::printf("%-10s %8s %8s | %9s %9s %9s | %9s %9s %7s   (play_time: MSE)\n", "task", "pos_pipe", "pos_eval",
              "auc_pipe", "auc_same", "auc_eval1", "eval_mean", "eval_std", "|d|/std");
  ASSERT_EQ(p.tasks.size(), seeds[0].metrics.size());
  for (size_t t = 0; t < p.tasks.size(); ++t) {
    const learner::TaskMetrics& online = p.tasks[t];
    const learner::TaskMetrics& eval = seeds[0].metrics[t];
    double mean = 0, var = 0;
    for (const auto& r : seeds) mean += q(r.metrics[t]) / kSeeds;
    for (const auto& r : seeds) var += (q(r.metrics[t]) - mean) * (q(r.metrics[t]) - mean) / (kSeeds - 1);
    const double sd = std::sqrt(var);
    std::printf("%-10s %8.0f %8.0f | %9.4f %9.4f %9.4f | %9.4f %9.4f %7.2f\n", online.task.c_str(), online.positives,
                eval.positives, q(online), partitions == 1 ? q(same_order.metrics[t]) : -1.0, q(eval), mean, sd,
                sd > 0 ? std::fabs(q(online) - mean) / sd : 0.0);
    // 1: same batches, same code, same seed: the same numbers (up to the summation
    //    order of a few float reductions).
    if (partitions == 1) {
      EXPECT_NEAR(online.auc, same_order.metrics[t].auc, 1e-6) << online.task;
      EXPECT_NEAR(online.log_loss, same_order.metrics[t].log_loss, 1e-6) << online.task;
      EXPECT_NEAR(online.mse, same_order.metrics[t].mse, 1e-6) << online.task;
    }
    if (window_ms != kDefaultWindowMs) continue;  // a sizing run studies the window effect
    // 2: no label is late, so the same observed rows and positives per task (with one
    //    partition the trained rows are the log's first ones, as eval's).
    if (partitions == 1) {
      EXPECT_EQ(online.count, eval.count) << online.task;
      EXPECT_EQ(online.positives, eval.positives) << online.task;
    }
    // 3: within noise of freshet eval.
    if (!online.regression) {
      EXPECT_LE(std::fabs(online.auc - mean), 3 * sd + 0.01) << online.task;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace freshet::ops
