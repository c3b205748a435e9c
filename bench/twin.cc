// bench_twin: the TWIN module (learner/cpu/twin.h) and its caches on CPU, one thread.
//   1. GSU   behaviours scored per second: 16 requests × 10,000 cached behaviours
//            each, warm projection cache (the ESU over the 100 picked is included;
//            it is ~1 % of the work)
//   2. ESU   samples per second, forward + backward, 100 behaviours per request
//   3. cache users read per second (BehaviourCache::MultiRead, 64 users per call)
//            with 1,000 and with 10,000 behaviours per user, RocksDB in a temp dir
//   4. consistency: GSU/ESU top-k overlap while a model trains, for several
//            refresh_after_versions (a version = a training step)
// The last stdout line is the JSON result (GSU rate plus every other figure).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/json.h"
#include "learner/cpu/trainer.h"
#include "learner/cpu/twin.h"
#include "store/behaviour_cache.h"

namespace freshet::bench {
namespace {

using cpu::Mat;

struct TableFeatures : cpu::TwinItemFeatures<float> {
  Mat<float> table;
  void Inherent(uint64_t item, float* out) override {
    const auto r = table.row(static_cast<int64_t>(item % table.rows()));
    std::copy(r.data(), r.data() + r.size(), out);
  }
};

std::vector<std::vector<store::Behaviour>> Histories(int requests, int length, int items, cpu::Rng* rng) {
  std::vector<std::vector<store::Behaviour>> h(requests);
  for (auto& v : h)
    for (int i = 0; i < length; ++i)
      v.push_back({rng->Next() % items, int64_t{1000} * i, static_cast<uint32_t>(rng->Next() % 32),
                   static_cast<uint32_t>(rng->Next() % 100000)});
  return h;
}

std::vector<cpu::TwinRequest> Requests(const std::vector<std::vector<store::Behaviour>>& h) {
  std::vector<cpu::TwinRequest> r;
  for (const auto& v : h) r.push_back({v.data(), static_cast<int>(v.size()), int64_t{1} << 50});
  return r;
}

// Seconds per call of fn, over at least min_seconds.
template <typename F>
double TimePerCall(F&& fn, double min_seconds) {
  int calls = 0;
  const auto start = Steady::now();
  do fn(), ++calls;
  while (Seconds(start) < min_seconds);
  return Seconds(start) / calls;
}

// 1 + 2.
void ModuleRates(double* gsu_per_s, double* esu_per_s) {
  cpu::Rng rng(1);
  cpu::TwinSpec spec;
  spec.item_dim = 16;
  cpu::Twin<float> twin("twin", spec, &rng);
  TableFeatures features;
  features.table.resize(100000, spec.item_dim);
  for (int64_t i = 0; i < features.table.size(); ++i) features.table.data()[i] = static_cast<float>(rng.Normal());
  store::ProjectionCache cache({.width = spec.projection_width(), .refresh_after_versions = 1 << 30}, nullptr);
  Mat<float> y, q(16, spec.item_dim), dq;
  q.setRandom();
  auto long_h = Histories(16, 10000, 100000, &rng);
  auto long_r = Requests(long_h);
  twin.Forward(q, long_r, &features, &cache, 0, &y);  // warm the cache
  const double gsu = TimePerCall([&] { twin.Forward(q, long_r, &features, &cache, 0, &y); }, 1.5);
  *gsu_per_s = 16.0 * 10000 / gsu;

  Mat<float> q2(256, spec.item_dim);
  q2.setRandom();
  auto short_h = Histories(256, spec.top_k, 100000, &rng);
  auto short_r = Requests(short_h);
  const Mat<float> dy = Mat<float>::Ones(256, spec.output_dim);
  const double esu = TimePerCall([&] {
    twin.Forward(q2, short_r, &features, &cache, 0, &y);
    dq.setZero(256, spec.item_dim);
    twin.Backward(q2, dy, &dq);
  }, 1.0);
  *esu_per_s = 256.0 / esu;
}

// 3. Users read per second with `length` behaviours each.
StatusOr<double> CacheReadRate(int length, int users) {
  const auto dir = std::filesystem::temp_directory_path() / ("freshet_bench_twin_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  store::KvStore::Options o;
  o.path = dir.string();
  store::BehaviourCache::Configure(&o, length);
  double rate = 0;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<store::KvStore> db, store::KvStore::Open(o));
    store::BehaviourCache cache(db.get(), length);
    cpu::Rng rng(2);
    for (int u = 0; u < users; ++u) RETURN_IF_ERROR(cache.Append(u, Histories(1, length, 1 << 30, &rng)[0]));
    RETURN_IF_ERROR(db->Flush());
    std::vector<uint64_t> batch(64);
    int next = 0;
    Status status = Status::Ok();
    const double per_call = TimePerCall([&] {
      for (auto& u : batch) u = next++ % users;
      auto r = cache.MultiRead(batch);
      if (!r.ok()) status = r.status();
    }, 1.0);
    RETURN_IF_ERROR(status);
    rate = 64.0 / per_call;
  }
  std::filesystem::remove_all(dir);
  return rate;
}

// 4. Mean consistency over steps 20..steps of a model trained on users whose clicks
// follow a taste (item % 5 == user % 5) their histories show.
StatusOr<double> ConsistencyWhileTraining(int64_t refresh_after, int steps) {
  LearnerConfig config;
  ModelConfig* m = config.mutable_model();
  m->set_family(FAMILY_MMOE);
  m->set_num_shared_experts(2);
  m->set_expert_output_dim(16);
  auto* s = m->add_sparse_slots();
  s->set_slot(0), s->set_dim(8);
  s = m->add_sparse_slots();
  s->set_slot(1), s->set_dim(16);
  TwinConfig* t = m->mutable_twin();
  t->set_enabled(true), t->set_item_slot(1), t->set_top_k(50), t->set_max_len(500);
  t->set_refresh_after_versions(refresh_after), t->set_consistency_samples(8), t->set_consistency_interval_steps(1);
  std::vector<TaskConfig> tasks(1);
  tasks[0].set_name("click");
  ASSIGN_OR_RETURN(auto trainer, cpu::Trainer<float>::Create(config, tasks));
  cpu::Rng rng(3);
  const int users = 64, items = 2000, batch_size = 32;
  std::vector<std::vector<store::Behaviour>> history(users);
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < 500; ++i) {
      uint64_t item = rng.Next() % items;
      if (rng.Uniform() < 0.7) item = item - item % 5 + u % 5;  // mostly the user's taste
      history[u].push_back({item, int64_t{1000} * i, 1, 10000});
    }
  BatchBuilder builder(config.model(), 1);
  double sum = 0;
  int counted = 0;
  for (int step = 0; step < steps; ++step) {
    for (int i = 0; i < batch_size; ++i) {
      Sample smp;
      const uint64_t u = rng.Next() % users, item = rng.Next() % items;
      smp.set_user_id(u), smp.set_item_id(item), smp.set_event_time_ms(int64_t{1} << 40);
      auto* f = smp.add_sparse();
      f->set_slot(0), f->add_ids(u);
      f = smp.add_sparse();
      f->set_slot(1), f->add_ids(item);
      smp.add_label(item % 5 == u % 5 && rng.Uniform() < 0.8 ? 1 : 0), smp.add_mask(true);
      RETURN_IF_ERROR(builder.Add(smp));
    }
    Batch b = builder.Finish();
    b.behaviour_offsets = {0};
    for (uint64_t u : b.user_ids) {
      b.behaviours.insert(b.behaviours.end(), history[u].begin(), history[u].end());
      b.behaviour_offsets.push_back(static_cast<int32_t>(b.behaviours.size()));
    }
    ASSIGN_OR_RETURN(auto r, trainer->Train(b, 0));
    if (step >= 20 && r.twin_consistency >= 0) sum += r.twin_consistency, ++counted;
  }
  return counted == 0 ? 1.0 : sum / counted;
}

int Run() {
  double gsu = 0, esu = 0;
  ModuleRates(&gsu, &esu);
  std::printf("gsu: %.0f behaviours scored/s (16 requests x 10000, warm cache)\n", gsu);
  std::printf("esu: %.0f samples/s forward+backward (100 behaviours each)\n", esu);
  auto read_1k = CacheReadRate(1000, 2000);
  if (!read_1k.ok()) return Fail("bench_twin", read_1k.status());
  auto read_10k = CacheReadRate(10000, 200);
  if (!read_10k.ok()) return Fail("bench_twin", read_10k.status());
  std::printf("cache: %.0f users/s at 1000 behaviours, %.0f users/s at 10000\n", *read_1k, *read_10k);
  JsonWriter consistency;
  consistency.BeginObject();
  for (int64_t refresh : {0, 1, 5, 20, 100}) {
    auto c = ConsistencyWhileTraining(refresh, 120);
    if (!c.ok()) return Fail("bench_twin", c.status());
    std::printf("consistency: refresh_after_versions %lld -> %.4f (top-50 of 500, 100 steps)\n",
                static_cast<long long>(refresh), *c);
    consistency.Key("refresh_" + std::to_string(refresh)).Double(*c);
  }
  consistency.EndObject();
  JsonWriter w;
  w.BeginObject()
      .Key("bench").String("twin")
      .Key("metric").String("gsu_behaviours_per_s")
      .Key("value").Double(gsu)
      .Key("unit").String("behaviours/s")
      .Key("esu_samples_per_s").Double(esu)
      .Key("cache_users_per_s_1000").Double(*read_1k)
      .Key("cache_users_per_s_10000").Double(*read_10k)
      .Key("consistency").Raw(consistency.str())
      .EndObject();
  std::printf("%s\n", w.str().c_str());
  return 0;
}

}  // namespace
}  // namespace freshet::bench

int main() { return freshet::bench::Run(); }
