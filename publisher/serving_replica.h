// ServingReplica: one serving replica (`freshet serve --replica I`, or in-process in
// `freshet run`). It holds the model version it serves, applies FULL and DELTA
// frames from the publisher, and scores requests with the learner's CPU model code.
//
//   publisher ──frames──► PushListener ──► Handle(frame) ──► new model beside the old
//                                                              │ swap shared_ptr
//   POST /v1/score ──► Score(request) ──► current() ──► Model::Forward(training=false)
//
// Applying: a FULL is applied onto a freshly built model; a DELTA onto a copy of the
// served model, and only when its base version is the served version (otherwise the
// reply is NEED_FULL and nothing changes). The new model replaces the old one by
// swapping a std::shared_ptr under a mutex, so a request scores either the old or the
// new version, never a mix. A frame that fails its CRC or HMAC is counted
// (freshet_serving_bad_frames_total{reason}) and its connection closed. A replica
// starts empty: /readyz is red and /v1/score answers 503 until the first FULL.
//
// TWIN (learner.model.twin): a request's own history (score_request.h) is attached
// with the learner's AttachHistories; without one, a replica given the learner's
// store (Options.behaviour_cache_dir, serving.behaviour_cache_dir) reads the user's
// history with the learner's AttachBehaviours from a read-only RocksDB secondary of
// that store, caught up with the learner once a second (opened lazily: the learner
// may start later). Each served version has its own model and so its own projection
// cache, stamped with the version: projections computed with an older version's
// weights are never used, and serving scores as the learner's Predict does with
// fresh projections.
//
// Metrics (one registry per replica): freshet_serving_version,
// freshet_serving_frames_total{type,result}, freshet_serving_bad_frames_total{reason},
// freshet_serving_apply_seconds, freshet_serving_score_seconds,
// freshet_serving_score_requests_total{result}, freshet_serving_rows,
// freshet_serving_freshness_seconds (gauge), and the contract histogram
// freshet_freshness_seconds{stage="applied"|"served"} ("served" sampled each second),
// freshet_serving_behaviour_catchups_total{result} (secondary catch-ups).
//
//   ServingReplica::Options o{.learner = config.learner(), .tasks = tasks, .hmac_key = key};
//   auto replica = ServingReplica::Start(o, &metrics, Clock::Real());
//   (*replica)->RegisterAdmin(&admin);   // before admin.Start()
//
// Thread-safety: Handle, Score, version and StatusJson may be called from any thread.
// Frames are applied one at a time (an internal mutex); scoring runs concurrently
// with applying, and requests on the same version take turns on its scratch buffers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/admin_http.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "learner/cpu/tensor.h"
#include "publisher/frame.h"
#include "publisher/model_update.h"
#include "publisher/push_listener.h"
#include "publisher/score_request.h"
#include "schemas/config.pb.h"

namespace freshet::publisher {

struct ScoreResult {
  uint64_t version = 0;
  std::vector<std::string> tasks;
  cpu::Mat<float> scores;  // (items, T): σ(logit) for binary tasks, the value for regression
};

class ServingReplica {
 public:
  struct Options {
    LearnerConfig learner;
    std::vector<TaskConfig> tasks;
    std::string hmac_key;
    int replica = 0;
    std::string push_bind_address = "127.0.0.1";
    int push_port = 0;  // 0: ephemeral
    uint64_t max_frame_bytes = kDefaultMaxPayloadBytes;
    int max_score_items = 1000;
    // The learner's store directory, read as a secondary for users' TWIN histories;
    // "" = none (requests without a history score with an empty one).
    std::string behaviour_cache_dir;
  };

  // Builds the (empty) serving model, binds the push listener, starts the
  // once-a-second freshness sampler. InvalidArgument for a bad model config or a
  // key shorter than kMinHmacKeyBytes; Unavailable when the push port is taken.
  static StatusOr<std::unique_ptr<ServingReplica>> Start(Options options, MetricsRegistry* metrics, Clock* clock);
  ~ServingReplica();
  // Stops the listener and the sampler. Idempotent.
  void Stop();

  // Adds POST /v1/score, /status and the "model_served" readiness check.
  // REQUIRES: before admin->Start().
  void RegisterAdmin(AdminServer* admin);

  int push_port() const { return listener_->port(); }
  uint64_t version() const;  // 0: nothing served yet
  // One verified frame in, the reply out (what the push listener calls).
  Frame Handle(const Frame& frame);
  // Scores the request on the served version. Unavailable before the first FULL;
  // InvalidArgument for a request that does not fit the model.
  StatusOr<ScoreResult> Score(const ScoreRequest& request);
  std::string StatusJson() const;

 private:
  struct Served {
    ModelManifest manifest;
    std::unique_ptr<ServingModel> model;
    int64_t applied_at_ms = 0;
    std::mutex forward_mu;  // Forward writes the model's scratch buffers
  };
  struct Probe;
  struct Behaviours;  // the secondary store and its cache view

  ServingReplica(Options options, MetricsRegistry* metrics, Clock* clock);
  std::shared_ptr<Served> current() const;
  Frame Reply(FrameType type, uint64_t answered, std::string reason = "") const;
  // Parses and applies a FULL or DELTA; returns the reply.
  Frame Apply(const Frame& frame);
  HttpResponse HandleScore(const HttpRequest& request);
  void SampleFreshness();
  // Opens the secondary when configured and not yet open, else catches it up.
  void RefreshBehaviours();
  std::shared_ptr<Behaviours> behaviours() const;

  Options options_;
  MetricsRegistry* metrics_;
  Clock* clock_;
  std::unique_ptr<Probe> probe_;
  std::unique_ptr<PushListener> listener_;

  std::mutex apply_mu_;                // one frame applied at a time
  mutable std::mutex mu_;
  std::shared_ptr<Served> current_;    // guarded by mu_
  std::shared_ptr<Behaviours> behaviours_;  // guarded by mu_; set once opened
  std::string secondary_dir_;               // the secondary's own files (ticker thread)
  std::string open_error_;                  // last open failure logged (ticker thread)

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool stopping_ = false;              // guarded by ticker_mu_
  std::thread ticker_;
};

}  // namespace freshet::publisher
