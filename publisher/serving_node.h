// ServingNode: one serving replica with everything a process needs around it: its
// own metrics registry, the push listener (inside ServingReplica) and the admin HTTP
// server (/healthz, /readyz, /metrics, /status, /config, POST /v1/score). `freshet
// serve` runs one; `freshet run` runs serving.replicas of them in-process, each with
// its own ports and registry, so every replica looks the same to tools either way.
//
// Ports: admin = admin.serving_base_port + replica and push = serving.push_base_port
// + replica unless overridden; a base of 0 (or an override of 0) picks a free port.
//
//   auto node = ServingNode::Start(config, /*replica=*/0, key, {});
//   (*node)->push_port();  (*node)->admin_url();
//
// Thread-safety: Start/Stop from one thread; the accessors from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/admin_http.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "publisher/serving_replica.h"
#include "schemas/config.pb.h"

namespace freshet::publisher {

class ServingNode {
 public:
  struct Ports {
    std::optional<int> admin;  // overrides admin.serving_base_port + replica
    std::optional<int> push;   // overrides serving.push_base_port + replica
  };
  // REQUIRES: `config` validated (ops/config.h) and its tasks filled in.
  // InvalidArgument for a bad model config or key; Unavailable when a port is taken.
  static StatusOr<std::unique_ptr<ServingNode>> Start(const FreshetConfig& config, int replica, std::string hmac_key,
                                                      Ports ports, Clock* clock = Clock::Real());
  ~ServingNode();
  // Stops admin HTTP first (no new requests), then the replica. Idempotent.
  void Stop();

  int push_port() const { return replica_->push_port(); }
  int admin_port() const { return admin_->port(); }
  std::string admin_url() const { return admin_->url(); }
  ServingReplica& replica() { return *replica_; }
  MetricsRegistry& metrics() { return metrics_; }

 private:
  ServingNode() = default;

  MetricsRegistry metrics_;
  std::unique_ptr<ServingReplica> replica_;
  std::unique_ptr<AdminServer> admin_;
};

}  // namespace freshet::publisher
