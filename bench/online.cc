// Online throughput on the embedded cluster with the reference model
// (configs/reference.pbtxt), three rates in one run over the same simulator traffic:
//
//   end_to_end     impressions + labels topics → Joiner (`wait`, RocksDB) → samples
//                  topic → OnlineLearner (consumer thread, bounded queue, dedup,
//                  batching, prequential scoring, step), joiner and learner running
//                  at the same time (issue 4's benchmark)
//   samples_topic  the samples the joiner wrote → OnlineLearner (new group): Kafka and
//                  the learner's threads without the joiner
//   learner_only   the same samples from memory → TrainingLoop (the learner-only rate)
//
// Events: bench/sim_events.h (as bench_ingest), pre-filled with a watermark flush, so
// the joiner emits one sample per impression. The learner starts first and is in its
// group before the joiner starts, and each learner rate runs from its first trained
// batch (the group join is seconds of setup, not throughput) to the last full batch.
// With pre-filled input the joiner runs ahead of the learner, so end_to_end is the
// learner's rate while it shares the cores with a busy joiner; if joining were the
// bottleneck the learner would wait for samples and the ratio would fall.
//
//   build/bench/bench_online [--config configs/reference.pbtxt] [--impressions 15360]
//
// Last line: {"bench":"online","metric":"pipeline_samples_per_s",...,"ratio":e2e/learner_only}.
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "bench/bench_util.h"
#include "bench/sim_events.h"
#include "common/json.h"
#include "common/logging.h"
#include "ingest/embedded_kafka.h"
#include "ingest/joiner.h"
#include "ingest/kafka_client.h"
#include "learner/online_learner.h"
#include "learner/training_loop.h"
#include "ops/config.h"
#include "ops/kafka_sample_source.h"
#include "store/kv_store.h"

namespace {
using namespace freshet;
using bench::Fail;

constexpr int kPartitions = 8;  // the mock cluster's per-partition retention (sim_events.h)

// CPU seconds used by the whole process so far (every thread, the in-process cluster's
// too): under load the wall rates move with what else runs, CPU per sample much less.
double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// A timed stretch: samples/s of wall time and process CPU microseconds per sample.
struct Rate {
  double per_s = 0;
  double cpu_us_per_sample = 0;
};

// " click=0.712 like=0.655 ...": prequential AUC per binary task, so a run also shows
// whether the learner learns from this traffic.
std::string AucLine(const learner::LearnerProgress& p) {
  std::string out;
  char buf[64];
  for (const auto& t : p.tasks) {
    if (t.regression || t.auc < 0) continue;
    std::snprintf(buf, sizeof(buf), " %s=%.3f", t.task.c_str(), t.auc);
    out += buf;
  }
  return out.empty() ? " (none)" : out;
}

// Prints a timed stretch (from the first trained batch, `trained_before` samples then)
// and returns its rate.
Rate Report(const learner::LearnerProgress& p, int64_t trained_before, double secs, double cpu) {
  std::printf("  %lld samples in %lld steps, %.2f s (%.2f CPU s) from the first batch (%lld duplicates, %lld bad)\n",
              static_cast<long long>(p.samples_trained), static_cast<long long>(p.steps), secs, cpu,
              static_cast<long long>(p.duplicates_skipped), static_cast<long long>(p.bad_samples));
  const double trained = static_cast<double>(p.samples_trained - trained_before);
  return {trained / secs, 1e6 * cpu / trained};
}

// Forwards to a source and notes the first assignment, so the joiner starts only once
// the learner is in its group.
class AssignWatch : public learner::SampleSource {
 public:
  AssignWatch(std::unique_ptr<learner::SampleSource> inner, std::atomic<bool>* assigned)
      : inner_(std::move(inner)), assigned_(assigned) {}
  Status Start(std::function<void(std::vector<learner::SourceOffset>*)> on_assign) override {
    return inner_->Start([this, on_assign](std::vector<learner::SourceOffset>* o) {
      on_assign(o);
      assigned_->store(true);
    });
  }
  StatusOr<std::optional<learner::SourceRecord>> Poll(int timeout_ms) override { return inner_->Poll(timeout_ms); }
  Status Commit(const std::vector<learner::SourceOffset>& o) override { return inner_->Commit(o); }
  Status CheckReachable(int timeout_ms) override { return inner_->CheckReachable(timeout_ms); }
  Status Close() override { return inner_->Close(); }

 private:
  std::unique_ptr<learner::SampleSource> inner_;
  std::atomic<bool>* assigned_;
};

// An OnlineLearner in consumer group `group`, started; *assigned turns true on its
// first assignment.
StatusOr<std::unique_ptr<learner::OnlineLearner>> StartLearner(FreshetConfig config, const std::string& group,
                                                               MetricsRegistry* metrics, std::atomic<bool>* assigned) {
  config.mutable_learner()->set_consumer_group(group);
  learner::OnlineLearner::Options o;
  o.config = config;
  o.source = std::make_unique<AssignWatch>(ops::NewKafkaSampleSource(config, "", group), assigned);
  o.metrics = metrics;
  ASSIGN_OR_RETURN(std::unique_ptr<learner::OnlineLearner> l, learner::OnlineLearner::Create(std::move(o)));
  RETURN_IF_ERROR(l->Start());
  return l;
}

// The rate of `l` from its first trained batch until it has trained `target`.
Rate TimeToTarget(learner::OnlineLearner* l, int64_t target) {
  while (l->Progress().samples_trained == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto t0 = bench::Steady::now();
  const double cpu0 = ProcessCpuSeconds();
  const int64_t s0 = l->Progress().samples_trained;
  // Bounded: samples the mock cluster dropped (too many per partition) never arrive.
  while (l->Progress().samples_trained < target && l->error().ok() && bench::Seconds(t0) < 300)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (l->Progress().samples_trained < target)
    std::printf("  WARNING: %lld of %lld samples trained in 300 s (lost in the embedded cluster?)\n",
                static_cast<long long>(l->Progress().samples_trained), static_cast<long long>(target));
  const double secs = bench::Seconds(t0), cpu = ProcessCpuSeconds() - cpu0;
  return Report(l->Progress(), s0, secs, cpu);
}

// Every sample in the samples topic (the flush impressions never close, so none).
StatusOr<std::vector<std::string>> ReadSamples(const FreshetConfig& config, size_t want) {
  ingest::KafkaConsumer::Options o;
  o.bootstrap_servers = config.kafka().bootstrap_servers();
  o.group_id = "bench-online-reader";
  ASSIGN_OR_RETURN(std::unique_ptr<ingest::KafkaConsumer> consumer, ingest::KafkaConsumer::Create(o));
  RETURN_IF_ERROR(consumer->Subscribe({config.kafka().samples_topic()}));
  std::vector<std::string> out;
  const auto start = bench::Steady::now();
  while (out.size() < want && bench::Seconds(start) < 60) {
    ASSIGN_OR_RETURN(auto m, consumer->Poll(200));
    if (m.has_value()) out.push_back(std::move(m->value));
  }
  if (out.size() < want) return DeadlineExceededError("read " + std::to_string(out.size()) + " of " +
                                                      std::to_string(want) + " samples in 60 s");
  return out;
}

Rate LearnerOnly(const FreshetConfig& config, const std::vector<std::string>& samples) {
  MetricsRegistry m;
  learner::TrainingLoop::Options o;
  o.learner = config.learner();
  o.tasks.assign(config.tasks().begin(), config.tasks().end());
  o.metrics = &m;
  auto loop = learner::TrainingLoop::Create(o);
  if (!loop.ok()) return Fail("bench_online", loop.status()), Rate{-1, 0};
  // Like the Kafka timings: from the end of the first batch.
  const size_t b = config.learner().batch_size(), n = samples.size();
  for (size_t i = 0; i < b && i < n; ++i) (void)(*loop)->Add({0, static_cast<int64_t>(i), samples[i]});
  const auto t0 = bench::Steady::now();
  const double cpu0 = ProcessCpuSeconds();
  const int64_t s0 = (*loop)->Progress().samples_trained;
  for (size_t i = b; i < n; ++i) (void)(*loop)->Add({0, static_cast<int64_t>(i), samples[i]});
  const double secs = bench::Seconds(t0), cpu = ProcessCpuSeconds() - cpu0;
  // Counted before Finish: it trains the partial batch outside the timed stretch.
  const Rate rate = Report((*loop)->Progress(), s0, secs, cpu);
  (void)(*loop)->Finish();  // refreshes the prequential metrics
  std::printf("  prequential AUC:%s\n", AucLine((*loop)->Progress()).c_str());
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = std::string(FRESHET_SOURCE_DIR) + "/configs/reference.pbtxt";
  int64_t n = 15360;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--impressions")) n = std::atoll(argv[i + 1]);
    else return Fail("bench_online", InvalidArgumentError("usage: bench_online [--config F] [--impressions N]"));
  }
  SetMinLogLevel(LogLevel::kWarning);
  auto loaded = ops::LoadEffectiveConfig(config_path);
  if (!loaded.ok()) return Fail("bench_online", loaded.status());
  FreshetConfig config = *loaded;
  config.mutable_learner()->set_checkpoint_interval_ms(3'600'000);
  config.mutable_kafka()->set_partitions(kPartitions);

  bench::Collector events;
  int64_t now = 0;
  if (Status s = bench::GenerateSimEvents(config, n, &events, &now); !s.ok()) return Fail("bench_online", s);
  const int64_t impressions = static_cast<int64_t>(events.impressions.size());
  const int64_t target = impressions - impressions % config.learner().batch_size();
  auto kafka = ingest::EmbeddedKafka::Start(1);
  if (!kafka.ok()) return Fail("bench_online", kafka.status());
  const KafkaConfig& kc = config.kafka();
  for (const std::string& t : {kc.impressions_topic(), kc.labels_topic(), kc.samples_topic(), kc.deadletter_topic()})
    if (Status s = (*kafka)->CreateTopic(t, kPartitions); !s.ok()) return Fail("bench_online", s);
  config.mutable_kafka()->set_bootstrap_servers((*kafka)->bootstrap());
  if (Status s = bench::PrefillEvents((*kafka)->bootstrap(), kc, kPartitions, events, now); !s.ok())
    return Fail("bench_online", s);
  std::printf("pre-filled impressions=%lld labels=%zu\n", static_cast<long long>(impressions), events.labels.size());
  events = bench::Collector();

  // (1) End to end: the learner joins its group, then the joiner starts.
  Rate end_to_end;
  double e2e_cpu_us_per_sample = 0;
  const auto dir = std::filesystem::temp_directory_path() / ("freshet_bench_online_" + std::to_string(getpid()));
  {
    MetricsRegistry lm, jm;
    std::atomic<bool> assigned{false};
    auto learner = StartLearner(config, "bench-e2e", &lm, &assigned);
    if (!learner.ok()) return Fail("bench_online", learner.status());
    while (!assigned.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    store::KvStore::Options so;
    so.path = dir.string();
    so.families = ingest::Joiner::StoreFamilies();
    auto store = store::KvStore::Open(so);
    if (!store.ok()) return Fail("bench_online", store.status());
    ingest::Joiner::Options jo;
    jo.config = config;
    jo.bootstrap_servers = (*kafka)->bootstrap();
    jo.store = store->get();
    jo.metrics = &jm;
    auto joiner = ingest::Joiner::Create(jo);
    if (!joiner.ok()) return Fail("bench_online", joiner.status());
    const double cpu_start = ProcessCpuSeconds();
    if (Status s = (*joiner)->Start(); !s.ok()) return Fail("bench_online", s);
    std::atomic<bool> stop{false};
    Status joiner_status;
    std::thread joiner_thread([&] {
      while (!stop.load() && joiner_status.ok()) joiner_status = (*joiner)->RunOnce(100);
    });
    end_to_end = TimeToTarget(learner->get(), target);
    // Joining and learning together, from the joiner's start: the load-independent cost.
    e2e_cpu_us_per_sample = 1e6 * (ProcessCpuSeconds() - cpu_start) / static_cast<double>(target);
    stop.store(true);
    joiner_thread.join();
    const Status checkpointed = (*joiner)->Checkpoint();  // flushes: every sample delivered
    const auto st = (*joiner)->stats();
    (void)(*joiner)->Stop();
    (void)(*learner)->Stop();
    std::printf("  prequential AUC:%s\n", AucLine((*learner)->Progress()).c_str());
    if (!joiner_status.ok()) return Fail("bench_online", joiner_status);
    if (!checkpointed.ok()) return Fail("bench_online", checkpointed);
    if (Status e = (*learner)->error(); !e.ok()) return Fail("bench_online", e);
    std::printf("end to end (events -> joiner -> samples -> OnlineLearner): %lld samples trained, joiner %llu "
                "events -> %llu samples: %.0f samples/s, %.0f CPU us/sample (%.0f with all of the joining)\n",
                static_cast<long long>((*learner)->Progress().samples_trained),
                static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.samples), end_to_end.per_s,
                end_to_end.cpu_us_per_sample, e2e_cpu_us_per_sample);
  }
  std::filesystem::remove_all(dir);

  // (2) The same samples from memory, (3) the samples topic alone.
  auto samples = ReadSamples(config, static_cast<size_t>(impressions));
  if (!samples.ok()) return Fail("bench_online", samples.status());
  const Rate learner_only = LearnerOnly(config, *samples);
  if (learner_only.per_s < 0) return 1;
  std::printf("learner only (TrainingLoop, samples in memory): %.0f samples/s, %.0f CPU us/sample\n",
              learner_only.per_s, learner_only.cpu_us_per_sample);
  Rate samples_topic;
  {
    MetricsRegistry m;
    std::atomic<bool> assigned{false};
    auto learner = StartLearner(config, "bench-samples", &m, &assigned);
    if (!learner.ok()) return Fail("bench_online", learner.status());
    samples_topic = TimeToTarget(learner->get(), target);
    (void)(*learner)->Stop();
    std::printf("samples topic -> OnlineLearner: %.0f samples/s, %.0f CPU us/sample\n", samples_topic.per_s,
                samples_topic.cpu_us_per_sample);
  }

  JsonWriter w;
  w.BeginObject().Key("bench").String("online").Key("metric").String("pipeline_samples_per_s");
  w.Key("value").Double(end_to_end.per_s).Key("unit").String("samples/s").Key("baseline").String("learner_only");
  w.Key("baseline_value").Double(learner_only.per_s).Key("ratio").Double(end_to_end.per_s / learner_only.per_s);
  w.Key("samples_topic_samples_per_s").Double(samples_topic.per_s);
  w.Key("cpu_us_per_sample").Double(end_to_end.cpu_us_per_sample);
  w.Key("join_and_learn_cpu_us_per_sample").Double(e2e_cpu_us_per_sample);
  w.Key("samples_topic_cpu_us_per_sample").Double(samples_topic.cpu_us_per_sample);
  w.Key("learner_only_cpu_us_per_sample").Double(learner_only.cpu_us_per_sample);
  w.Key("samples").Int(target).EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}
