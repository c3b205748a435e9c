// bench_publish: time from a version cut to both serving replicas having acked it,
// for deltas of 1k, 10k and 100k embedding rows plus every dense tensor, and the
// delta's bytes per row. Two real `freshet serve` processes on loopback (ServingFleet),
// the learner's TrainingLoop + Publisher in this process, a temp-dir RocksDB.
//
// Each round trains samples whose ids are new, so exactly N rows are touched, then
// times CutNow (build the delta, gate, store, hand over) + the push + both ACKs.
// Usage: bench_publish [--rounds R] (median of R rounds per size, default 3).
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "bench/bench_util.h"
#include "ops/serving_fleet.h"
#include "publisher/frame.h"
#include "publisher/publisher.h"
#include "store/kv_store.h"

using freshet::Status;
using freshet::bench::Fail;
using freshet::bench::Seconds;
using freshet::bench::Steady;

namespace {

constexpr int kIdsPerSample = 100;
constexpr int kDim = 16;

freshet::FreshetConfig BenchConfig() {
  freshet::FreshetConfig c;
  freshet::LearnerConfig* l = c.mutable_learner();
  l->set_batch_size(10);  // 1k rows = one batch of 10 samples × 100 ids
  l->set_batch_deadline_ms(0);
  l->set_checkpoint_interval_ms(1 << 30);
  l->set_diagnostics_interval_ms(1 << 30);
  freshet::ModelConfig* m = l->mutable_model();
  m->set_family(freshet::FAMILY_MMOE);
  m->set_num_shared_experts(4);
  m->add_expert_hidden(64);
  m->set_expert_output_dim(32);
  auto* s = m->add_sparse_slots();
  s->set_slot(0);
  s->set_dim(kDim);
  m->add_dense_slots()->set_slot(0);
  l->mutable_embedding()->set_cms_width(1 << 16);
  freshet::TaskConfig* t = c.add_tasks();
  t->set_name("click");
  t->add_label_kinds(freshet::LABEL_CLICK);
  return c;
}

freshet::learner::SourceRecord MakeRecord(int64_t i, uint64_t first_id, uint32_t layout) {
  freshet::Sample s;
  s.set_sample_id("b" + std::to_string(i));
  s.set_event_time_ms(1'000'000 + i);
  auto* sp = s.add_sparse();
  sp->set_slot(0);
  for (int k = 0; k < kIdsPerSample; ++k) sp->add_ids(first_id + k);
  auto* d = s.add_dense();
  d->set_slot(0);
  d->add_values(0.5f);
  s.add_label(i % 3 == 0 ? 1 : 0);
  s.add_mask(true);
  s.add_weight(1);
  s.set_task_layout(layout);
  return {0, i, s.SerializeAsString()};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
  const freshet::FreshetConfig config = BenchConfig();
  const std::string dir = std::filesystem::temp_directory_path() / ("freshet_bench_publish_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto fleet = freshet::ops::ServingFleet::Start(config, dir + "/serving", 2, FRESHET_BINARY_PATH);
  if (!fleet.ok()) return Fail("bench_publish", fleet.status());

  freshet::store::KvStore::Options so;
  so.path = dir + "/db";
  so.families = {freshet::learner::CheckpointStore::kFamily, freshet::publisher::SnapshotStore::kFamily};
  auto db = freshet::store::KvStore::Open(so);
  if (!db.ok()) return Fail("bench_publish", db.status());
  freshet::MetricsRegistry metrics;
  freshet::learner::TrainingLoop::Options lo;
  lo.learner = config.learner();
  lo.tasks.assign(config.tasks().begin(), config.tasks().end());
  lo.store = db->get();
  lo.metrics = &metrics;
  auto loop = freshet::learner::TrainingLoop::Create(lo);
  if (!loop.ok()) return Fail("bench_publish", loop.status());
  freshet::publisher::Publisher::Options po;
  po.config.set_publish_interval_ms(1 << 30);
  po.config.set_full_every_versions(1 << 20);
  for (const std::string& a : (*fleet)->push_addresses()) po.config.add_replicas(a);
  po.store = db->get();
  po.metrics = &metrics;
  auto key = freshet::publisher::LoadHmacKey((*fleet)->key_file());
  if (!key.ok()) return Fail("bench_publish", key.status());
  po.hmac_key = *key;
  auto publisher = freshet::publisher::Publisher::Create(po);
  if (!publisher.ok()) return Fail("bench_publish", publisher.status());
  if (Status s = (*publisher)->Attach(loop->get()); !s.ok()) return Fail("bench_publish", s);

  const uint32_t layout = freshet::learner::TaskLayoutFingerprint(lo.tasks);
  int64_t next_sample = 0;
  uint64_t next_id = 1;
  auto cut_and_wait = [&](double* seconds, double* cut_seconds) -> Status {
    const auto start = Steady::now();
    ASSIGN_OR_RETURN(auto cut, (*publisher)->CutNow(false));
    *cut_seconds = Seconds(start);
    if (cut.version == 0) return freshet::InternalError("the gate held a version back: " + cut.detail);
    if (!(*publisher)->WaitForReplicas(cut.version, 60000))
      return freshet::UnavailableError("replicas did not ack v" + std::to_string(cut.version));
    *seconds = Seconds(start);
    return Status::Ok();
  };
  auto train = [&](int rows) -> Status {
    for (int n = 0; n < rows / kIdsPerSample; ++n, next_id += kIdsPerSample)
      RETURN_IF_ERROR((*loop)->Add(MakeRecord(next_sample++, next_id, layout)));
    return Status::Ok();
  };
  double ignored = 0, ignored_cut = 0;
  if (Status s = train(1000); !s.ok() || !(s = cut_and_wait(&ignored, &ignored_cut)).ok())
    return Fail("bench_publish", s);  // the first cut is FULL

  freshet::Counter* delta_bytes = metrics.GetCounter("freshet_publisher_bytes_total", "", {{"kind", "delta"}});
  double ms_100k = 0, bytes_per_row_100k = 0;
  for (int rows : {1000, 10000, 100000}) {
    std::vector<double> times, cut_times;
    double bytes = 0;
    for (int r = 0; r < rounds; ++r) {
      double seconds = 0, cut_seconds = 0;
      const double before = delta_bytes->Value();
      if (Status s = train(rows); !s.ok() || !(s = cut_and_wait(&seconds, &cut_seconds)).ok())
        return Fail("bench_publish", s);
      times.push_back(seconds * 1000);
      cut_times.push_back(cut_seconds * 1000);
      bytes = delta_bytes->Value() - before;
    }
    std::sort(times.begin(), times.end());
    std::sort(cut_times.begin(), cut_times.end());
    const double median = times[times.size() / 2];
    std::printf("rows=%d cut_to_both_acked_ms median=%.1f min=%.1f max=%.1f (cut+store on the training thread: "
                "%.1f) delta_bytes=%.0f bytes_per_row=%.1f\n",
                rows, median, times.front(), times.back(), cut_times[cut_times.size() / 2], bytes, bytes / rows);
    if (rows == 100000) {
      ms_100k = median;
      bytes_per_row_100k = bytes / rows;
    }
  }
  std::fflush(stdout);
  (*publisher)->Stop();
  (*fleet)->Stop();
  std::filesystem::remove_all(dir);
  std::printf("{\"bench\":\"publish\",\"metric\":\"cut_to_both_acked_100k_rows\",\"value\":%.1f,\"unit\":\"ms\","
              "\"bytes_per_row\":%.1f,\"replicas\":2,\"dim\":%d}\n",
              ms_100k, bytes_per_row_100k, kDim);
  return 0;
}
