// Online learner throughput: samples/s through Kafka(samples) → OnlineLearner (consumer
// thread, bounded queue, dedup, batching, prequential scoring, step) on the embedded
// cluster, beside the learner-only rate (TrainingLoop fed in-memory records: the
// same samples, same model, same process) in the same run. Model and batch:
// configs/reference.pbtxt. NOTE: the samples are produced straight into `samples`
// (synthetic, reference-model slots 1..8, ~10 % clicks), not through the joiner.
//
//   build/bench/bench_online [--config configs/reference.pbtxt] [--samples 30720]
//
// Last line: {"bench":"online","metric":"pipeline_samples_per_s",...,"ratio":N/M}.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "common/json.h"
#include "ingest/embedded_kafka.h"
#include "ingest/kafka_client.h"
#include "learner/online_learner.h"
#include "learner/training_loop.h"
#include "ops/config.h"
#include "ops/kafka_sample_source.h"

namespace {
using namespace freshet;

std::vector<std::string> MakeSamples(const FreshetConfig& c, int n) {
  std::mt19937_64 rng(1);
  std::vector<std::string> out;
  std::vector<TaskConfig> tasks(c.tasks().begin(), c.tasks().end());
  const uint32_t layout = learner::TaskLayoutFingerprint(tasks);
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.set_sample_id("bench-" + std::to_string(i));
    s.set_user_id(rng() % 100000);
    s.set_event_time_ms(1'700'000'000'000 + i);
    for (const auto& sp : c.learner().model().sparse_slots()) {
      auto* f = s.add_sparse();
      f->set_slot(sp.slot());
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      f->add_ids(static_cast<uint64_t>(100000.0 * u * u * u));
    }
    for (const auto& d : c.learner().model().dense_slots()) {
      auto* f = s.add_dense();
      f->set_slot(d.slot());
      for (int k = 0; k < d.width(); ++k) f->add_values(std::normal_distribution<float>(0, 1)(rng));
    }
    for (int t = 0; t < c.tasks_size(); ++t) {
      s.add_label(rng() % 10 == 0 ? 1 : 0);
      s.add_mask(true);
      s.add_weight(1);
    }
    s.set_origin(ORIGIN_WINDOW_CLOSED);
    s.set_task_layout(layout);
    out.push_back(s.SerializeAsString());
  }
  return out;
}

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = std::string(FRESHET_SOURCE_DIR) + "/configs/reference.pbtxt";
  int n = 15360;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    if (!std::strcmp(argv[i], "--samples")) n = std::atoi(argv[i + 1]);
  }
  auto loaded = ops::LoadEffectiveConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "bench_online: %s\n", loaded.status().ToString().c_str());
    return 2;
  }
  FreshetConfig config = *loaded;
  config.mutable_learner()->set_checkpoint_interval_ms(3600000);
  const std::vector<std::string> samples = MakeSamples(config, n);

  // Learner only: the same loop, records from memory.
  double learner_only = 0;
  {
    MetricsRegistry m;
    learner::TrainingLoop::Options o;
    o.learner = config.learner();
    o.tasks.assign(config.tasks().begin(), config.tasks().end());
    o.metrics = &m;
    auto loop = learner::TrainingLoop::Create(o);
    if (!loop.ok()) {
      std::fprintf(stderr, "bench_online: %s\n", loop.status().ToString().c_str());
      return 1;
    }
    // Like the pipeline timing below: from the end of the first batch.
    const int b = config.learner().batch_size();
    for (int i = 0; i < b && i < n; ++i) (void)(*loop)->Add({0, i, samples[i]});
    const double t0 = Now();
    const int64_t s0 = (*loop)->Progress().samples_trained;
    for (int i = b; i < n; ++i) (void)(*loop)->Add({0, i, samples[i]});
    learner_only = ((*loop)->Progress().samples_trained - s0) / (Now() - t0);
    std::printf("learner_only: %lld samples in %.2f s = %.0f samples/s\n",
                static_cast<long long>((*loop)->Progress().samples_trained), Now() - t0, learner_only);
  }

  // Pipeline: produce into the embedded cluster, then the OnlineLearner consumes.
  auto kafka = ingest::EmbeddedKafka::Start(1);
  if (!kafka.ok() || !(*kafka)->CreateTopic(config.kafka().samples_topic(), config.kafka().partitions()).ok()) {
    std::fprintf(stderr, "bench_online: cannot start the embedded cluster\n");
    return 1;
  }
  config.mutable_kafka()->set_bootstrap_servers((*kafka)->bootstrap());
  {
    ingest::KafkaProducer::Options po;
    po.bootstrap_servers = (*kafka)->bootstrap();
    auto producer = ingest::KafkaProducer::Create(po);
    for (const std::string& s : samples) (void)(*producer)->Produce(config.kafka().samples_topic(), "", s);
    (void)(*producer)->Flush(30000);
  }
  MetricsRegistry m;
  learner::OnlineLearner::Options lo;
  lo.config = config;
  lo.source = ops::NewKafkaSampleSource(config, "", "bench-learner");
  lo.metrics = &m;
  auto learner = learner::OnlineLearner::Create(std::move(lo));
  if (!learner.ok() || !(*learner)->Start().ok()) {
    std::fprintf(stderr, "bench_online: cannot start the learner\n");
    return 1;
  }
  // Time from the first trained batch (the group join is ~3 s of setup, not throughput).
  while ((*learner)->Progress().samples_trained == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double t0 = Now();
  const int64_t s0 = (*learner)->Progress().samples_trained;
  const int64_t target = n - n % config.learner().batch_size();
  while ((*learner)->Progress().samples_trained < target) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double secs = Now() - t0;
  const double pipeline = ((*learner)->Progress().samples_trained - s0) / secs;
  (void)(*learner)->Stop();
  std::printf("pipeline (Kafka samples -> OnlineLearner): %lld samples in %.2f s = %.0f samples/s\n",
              static_cast<long long>((*learner)->Progress().samples_trained - s0), secs, pipeline);
  JsonWriter w;
  w.BeginObject().Key("bench").String("online").Key("metric").String("pipeline_samples_per_s");
  w.Key("value").Double(pipeline).Key("unit").String("samples/s").Key("baseline").String("learner_only");
  w.Key("baseline_value").Double(learner_only).Key("ratio").Double(pipeline / learner_only).EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
