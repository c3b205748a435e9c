// Helpers of the online-learner tests: a small model over synthetic samples with a
// learnable click rule, serialized records, a temp-dir store, and an in-memory
// SampleSource.
#pragma once

#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "learner/sample_source.h"
#include "learner/training_loop.h"
#include "schemas/config.pb.h"
#include "schemas/sample.pb.h"
#include "store/kv_store.h"

namespace freshet::learner::testutil {

// Sparse slots 0 (user) and 1 (item), dense slot 0 (width 1); PLE, tiny.
inline LearnerConfig TinyLearner(int batch_size, int64_t deadline_ms) {
  LearnerConfig c;
  c.set_seed(11);
  c.set_batch_size(batch_size);
  c.set_batch_deadline_ms(deadline_ms);
  ModelConfig* m = c.mutable_model();
  m->set_family(FAMILY_PLE);
  m->set_ple_levels(1);
  m->set_num_shared_experts(2);
  m->set_num_specific_experts(1);
  m->add_expert_hidden(8);
  m->set_expert_output_dim(4);
  for (uint32_t s : {0u, 1u}) {
    auto* sp = m->add_sparse_slots();
    sp->set_slot(s);
    sp->set_dim(4);
  }
  m->add_dense_slots()->set_slot(0);
  c.mutable_embedding()->set_cms_width(1024);
  c.mutable_dense_optimizer()->set_learning_rate(0.01f);
  c.set_checkpoint_interval_ms(1000000);
  c.set_diagnostics_interval_ms(1000000);
  return c;
}

// TinyLearner with the TWIN module on the item slot (1), sized for tests.
inline LearnerConfig TwinLearner(int batch_size, int64_t deadline_ms) {
  LearnerConfig c = TinyLearner(batch_size, deadline_ms);
  TwinConfig* t = c.mutable_model()->mutable_twin();
  t->set_enabled(true);
  t->set_item_slot(1);
  t->set_max_len(64);
  t->set_top_k(2);  // below the longer histories, so GSU searches
  t->set_heads(2);
  t->set_key_dim(4);
  t->set_value_dim(4);
  t->set_output_dim(4);
  t->set_cross_dim(2);
  t->set_refresh_after_versions(3);
  t->set_consistency_interval_steps(2);
  return c;
}

inline std::vector<TaskConfig> TwoTasks() {
  std::vector<TaskConfig> t(2);
  t[0].set_name("click");
  t[0].add_label_kinds(LABEL_CLICK);
  t[1].set_name("like");
  t[1].add_label_kinds(LABEL_LIKE);
  return t;
}

// Sample i: user i % 40, item (i * 7) % 25; click when (user + item) % 3 == 0 (a rule
// the embeddings can learn); like when click and item is even.
inline Sample MakeSample(int64_t i, const std::string& prefix = "s") {
  Sample s;
  s.set_sample_id(prefix + std::to_string(i));
  s.set_request_id(s.sample_id());
  const uint64_t user = i % 40, item = (i * 7) % 25;
  s.set_user_id(user);
  s.set_item_id(item);
  s.set_event_time_ms(1'000'000 + i * 10);
  s.set_emit_time_ms(0);
  auto* u = s.add_sparse();
  u->set_slot(0);
  u->add_ids(user);
  auto* it = s.add_sparse();
  it->set_slot(1);
  it->add_ids(item);
  auto* d = s.add_dense();
  d->set_slot(0);
  d->add_values(static_cast<float>((i % 11) / 10.0));
  const bool click = (user + item) % 3 == 0;
  s.add_label(click ? 1 : 0);
  s.add_label(click && item % 2 == 0 ? 1 : 0);
  s.add_mask(true);
  s.add_mask(true);
  s.add_weight(1);
  s.add_weight(1);
  s.set_origin(ORIGIN_WINDOW_CLOSED);
  s.set_task_layout(TaskLayoutFingerprint(TwoTasks()));
  return s;
}

inline SourceRecord Record(const Sample& s, int64_t offset, int32_t partition = 0) {
  return SourceRecord{partition, offset, s.SerializeAsString()};
}

// A temporary directory removed on destruction.
struct TempDir {
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("freshet_" + name + "_" + std::to_string(getpid()) + "_" + std::to_string(counter()++))) {
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path;
};

// The learner's store; with the behaviour cache when `twin_model` has TWIN on.
inline std::unique_ptr<store::KvStore> OpenStore(const std::filesystem::path& path,
                                                 const ModelConfig& twin_model = ModelConfig()) {
  store::KvStore::Options o;
  o.path = path.string();
  o.families = CheckpointStore::Families();
  TwinFeed::ConfigureStore(twin_model, &o);
  auto s = store::KvStore::Open(o);
  return s.ok() ? std::move(s).value() : nullptr;
}

// A TrainingLoop over TwoTasks with a fake clock and its own metrics registry.
struct LoopFixture {
  explicit LoopFixture(LearnerConfig learner, store::KvStore* store = nullptr) {
    TrainingLoop::Options o;
    o.learner = std::move(learner);
    o.tasks = TwoTasks();
    o.store = store;
    o.metrics = &metrics;
    o.clock = &clock;
    auto l = TrainingLoop::Create(o);
    EXPECT_TRUE(l.ok()) << l.status();
    if (l.ok()) loop = std::move(l).value();
  }
  double Counter(const std::string& name, const Labels& labels = {}) {
    return metrics.GetCounter(name, "", labels)->Value();
  }
  MetricsRegistry metrics;
  FakeClock clock;
  std::unique_ptr<TrainingLoop> loop;
};

// Polls `done` every 10 ms until it holds or the timeout passes.
inline bool WaitFor(const std::function<bool()>& done, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// In-memory partitioned log with a consumer position per partition; on Start it
// reports one assignment of every partition, starting at 0 unless on_assign moves it.
class MemorySource : public SampleSource {
 public:
  struct Log {
    std::mutex mu;
    std::vector<std::vector<std::string>> partitions;
    std::vector<SourceOffset> last_commit;
    int starts = 0;
  };
  explicit MemorySource(Log* log) : log_(log) {}
  Status Start(std::function<void(std::vector<SourceOffset>*)> on_assign) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    std::vector<SourceOffset> a;
    for (size_t p = 0; p < log_->partitions.size(); ++p) a.push_back({static_cast<int32_t>(p), 0});
    on_assign(&a);
    for (const auto& o : a) next_.push_back(std::max<int64_t>(0, o.offset));
    ++log_->starts;
    return Status::Ok();
  }
  StatusOr<std::optional<SourceRecord>> Poll(int timeout_ms) override {
    {
      std::lock_guard<std::mutex> lock(log_->mu);
      for (size_t i = 0; i < next_.size(); ++i) {
        const size_t p = (rr_ + i) % next_.size();
        if (next_[p] < static_cast<int64_t>(log_->partitions[p].size())) {
          rr_ = p + 1;
          SourceRecord r{static_cast<int32_t>(p), next_[p], log_->partitions[p][next_[p]]};
          ++next_[p];
          return std::optional<SourceRecord>(std::move(r));
        }
      }
    }
    usleep(std::min(timeout_ms, 5) * 1000);
    return std::optional<SourceRecord>();
  }
  Status Commit(const std::vector<SourceOffset>& offsets) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->last_commit = offsets;
    return Status::Ok();
  }
  Status CheckReachable(int) override { return Status::Ok(); }
  Status Close() override { return Status::Ok(); }

 private:
  Log* log_;
  std::vector<int64_t> next_;
  size_t rr_ = 0;
};

}  // namespace freshet::learner::testutil
