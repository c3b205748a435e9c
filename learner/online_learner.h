// OnlineLearner: the learner component of `freshet learn` and `freshet run`. Two
// threads around a TrainingLoop (training_loop.h):
//
//   consumer thread: SampleSource::Poll ──► BoundedQueue<SourceRecord> ──► training thread:
//     (on assign: seek to the offsets      (learner.queue_capacity;        TrainingLoop::Add/Tick
//      stored in the newest checkpoint)     full = the consumer waits)     (dedup, batch, step,
//                                                                          checkpoints)
//
// Start() restores the newest checkpoint, then starts both threads; the source's
// on_assign overwrites each partition's start offset with the checkpointed one.
// Offsets of each checkpoint are also committed to the source (Kafka group offsets)
// so lag tools see progress; resuming never relies on them.
//
// Stop() (SIGTERM path): stop intake; train what is already queued for up to
// drain_budget_ms (the rest is not lost: it lies after the checkpointed offsets and
// is read again on restart); train the partial batch unless batching is size-only;
// write the final checkpoint; commit its offsets; leave the group. Within 10 s for
// the reference model.
//
//   OnlineLearner::Options o{.config = config, .source = NewKafkaSampleSource(...), .store = db, .metrics = &m};
//   auto learner = OnlineLearner::Create(std::move(o));
//   RETURN_IF_ERROR((*learner)->Start());
//   ... (*learner)->Progress() ...
//   (*learner)->Stop();
//
// Thread-safety: Start/Stop from one owner thread; Progress, StatusJson, Ready and
// error from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/bounded_queue.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "learner/sample_source.h"
#include "learner/training_loop.h"
#include "schemas/config.pb.h"

namespace freshet::store {
class KvStore;
}

namespace freshet::learner {

class OnlineLearner {
 public:
  struct Options {
    FreshetConfig config;                  // effective and validated (learner, tasks, kafka)
    std::unique_ptr<SampleSource> source;  // required
    store::KvStore* store = nullptr;       // opened with ConfigureStore(); null: no checkpoints
    MetricsRegistry* metrics = nullptr;    // required; outlives the learner
    Clock* clock = nullptr;                // nullptr: Clock::Real()
    int64_t drain_budget_ms = 4000;        // Stop(): time spent training queued records
  };

  static std::vector<std::string> StoreFamilies() { return CheckpointStore::Families(); }
  // Sets the families (and, with TWIN, the behaviour cache's merge operator) that the
  // learner's store must be opened with for `config`.
  static void ConfigureStore(const FreshetConfig& config, store::KvStore::Options* options) {
    options->families = StoreFamilies();
    TwinFeed::ConfigureStore(config.learner().model(), options);
  }

  static StatusOr<std::unique_ptr<OnlineLearner>> Create(Options options);
  ~OnlineLearner();  // Stop()s if still running
  OnlineLearner(const OnlineLearner&) = delete;
  OnlineLearner& operator=(const OnlineLearner&) = delete;

  // Restores the newest checkpoint and starts the threads. Errors: a checkpoint that
  // cannot be restored (the message says what to do), a source that cannot start.
  Status Start();
  // See the header comment. Idempotent. Returns the first error of the run.
  Status Stop();

  LearnerProgress Progress() const;
  // /status body: progress, per-task metrics, checkpoint, offsets, queue.
  std::string StatusJson() const;
  // /readyz: UNAVAILABLE while the source is unreachable, the store unhealthy, or
  // after a fatal error; FailedPrecondition before Start.
  Status Ready() const;
  // OK or the first fatal error (the daemon exits on it and restarts from the last
  // checkpoint).
  Status error() const;

  // Test access; REQUIRES: not running (before Start or after Stop).
  TrainingLoop* loop() { return loop_.get(); }

 private:
  explicit OnlineLearner(Options options);
  void ConsumeLoop();
  void TrainLoop();
  void SetError(const Status& s);

  Options options_;
  Clock* clock_;
  std::unique_ptr<TrainingLoop> loop_;
  BoundedQueue<SourceRecord> queue_;
  std::thread consumer_, trainer_;
  std::atomic<bool> running_{false}, stopping_{false}, source_ok_{false};
  std::atomic<int64_t> commit_version_{0};  // newest checkpoint whose offsets to commit
  bool stopped_ = false;

  mutable std::mutex mu_;
  Status error_;  // guarded by mu_
};

}  // namespace freshet::learner
