// PushClient: the publisher's side of the push protocol (publisher/frame.h). One
// Boost.Asio TCP connection per serving replica, each driven on its own strand, so a
// slow or dead replica never holds up the others:
//
//   Publish(target) ──► every session: acked == target?      idle (PING every second)
//                                      a recent DELTA based   send it, read the ACK,
//                                        on acked?            repeat
//                                      otherwise              send FULL(target)
//   connect ─► PING ─► ACK(version the replica serves) ─► as above
//   NEED_FULL ─► FULL;  REJECT, bad frame, timeout, EOF ─► close, reconnect after a
//   backoff that doubles from reconnect_initial_ms up to reconnect_max_ms
//
// The target is the newest version (or the pinned one after a rollback). Recent
// deltas are kept as a chain ending at the target, so a replica a few versions behind
// catches up with deltas; anything else gets a FULL of the target. FULL payloads the
// caller did not supply are produced by `full_source` on a worker thread (the
// snapshot store's Materialize) and encoded once for all replicas.
//
// Metrics: freshet_publisher_replica_version{replica} (acked version),
// freshet_publisher_replica_connected{replica}, freshet_publisher_frames_sent_total
// {replica,type}, freshet_publisher_push_bytes_total{replica},
// freshet_publisher_replica_errors_total{replica,reason}.
//
//   PushClient client(options);
//   RETURN_IF_ERROR(client.Start());
//   client.Publish(PushClient::Target::Delta(8, /*base=*/7, delta_bytes));
//   client.WaitForVersion(8, 5000);
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"

namespace freshet::publisher {

class PushClient {
 public:
  using Payload = std::shared_ptr<const std::string>;  // a serialized ModelUpdate
  struct Options {
    std::vector<std::string> replicas;  // "host:port" of push listeners
    std::string hmac_key;               // shared with the replicas (frame.h)
    int64_t backoff_initial_ms = 100;
    int64_t backoff_max_ms = 5000;
    int64_t ping_interval_ms = 1000;
    MetricsRegistry* metrics = nullptr;  // required
    Clock* clock = nullptr;              // nullptr: Clock::Real()
    // The FULL update of `version` (called on a worker thread, never the I/O one).
    std::function<StatusOr<Payload>(uint64_t version)> full_source;
  };
  struct Target {
    uint64_t version = 0;
    uint64_t base_version = 0;  // the delta's base (with `delta`)
    Payload delta;              // a DELTA onto base_version, or null
    Payload full;               // a FULL of `version`, or null (full_source makes it)

    // Named constructors, so a call site says which kind it publishes.
    static Target Full(uint64_t version, Payload full) { return Target(version, 0, nullptr, std::move(full)); }
    static Target Delta(uint64_t version, uint64_t base, Payload delta) {
      return Target(version, base, std::move(delta), nullptr);
    }
    // A version whose FULL full_source makes when a replica needs it.
    static Target Stored(uint64_t version) { return Target(version, 0, nullptr, nullptr); }

    Target() = default;

   private:
    Target(uint64_t v, uint64_t b, Payload d, Payload f)
        : version(v), base_version(b), delta(std::move(d)), full(std::move(f)) {}
  };
  struct ReplicaState {
    std::string address;
    bool connected = false;
    uint64_t acked_version = 0;  // what the replica last said it serves (0: unknown/none)
    int64_t acked_at_ms = 0;
    std::string last_error;
  };

  explicit PushClient(Options options);
  ~PushClient();  // Stop()
  PushClient(const PushClient&) = delete;
  PushClient& operator=(const PushClient&) = delete;

  // Starts the I/O thread and connects to every replica. InvalidArgument for a bad
  // replica address or a key shorter than kMinHmacKeyBytes.
  Status Start();
  // Closes every connection and joins the threads. Idempotent.
  void Stop();

  // Makes `target` what every replica should serve. A DELTA whose base is the
  // current target extends the delta chain; anything else starts a new one.
  void Publish(Target target);
  std::vector<ReplicaState> Replicas() const;
  // Waits until every replica acked exactly `version`; false on timeout.
  bool WaitForVersion(uint64_t version, int64_t timeout_ms) const;

 private:
  struct Impl;
  class Session;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshet::publisher
