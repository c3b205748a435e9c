// ServingFleet: `freshet run`'s serving replicas, each a child process of the same
// binary (`freshet serve --config F --replica I`, ops/serve_command.cc), sharing a
// per-run random HMAC key with the learner's publisher:
//
//   dir/push.key            32 random bytes, mode 0600 (publisher.hmac_key_file)
//   dir/serving.pbtxt       the run's effective config for the replicas
//   dir/serving-I.log       replica I's log (stderr), so run's terminal stays readable
//
// Replica I listens for pushes on serving.push_base_port + I and serves admin HTTP on
// admin.serving_base_port + I (a base of 0 picks free ports; each replica's first
// stdout line reports them). Children run in their own process group (a terminal
// Ctrl-C reaches only `freshet run`, which stops them in order) and get SIGTERM if
// run dies. Stop() stops them last-started-first: SIGTERM, up to 10 s, then SIGKILL.
//
//   ASSIGN_OR_RETURN(auto fleet, ServingFleet::Start(config, data_dir + "/serving", 2));
//   config.mutable_publisher()->set_hmac_key_file(fleet->key_file());
//   for (auto& a : fleet->push_addresses()) config.mutable_publisher()->add_replicas(a);
//
// Thread-safety: Start/Stop from one thread; the accessors from any after Start.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

class ServingFleet {
 public:
  struct Replica {
    int index = 0;
    pid_t pid = -1;
    int stdout_fd = -1;
    int push_port = 0;
    std::string admin_url;
    std::string log_path;
  };

  // Starts `count` replicas and waits (up to 20 s each) until each has bound its
  // ports. `binary`: the `freshet` executable ("" = this process's own, as in `freshet
  // run`). Errors name the replica and its log file; replicas already started are
  // stopped again.
  static StatusOr<std::unique_ptr<ServingFleet>> Start(const FreshetConfig& config, const std::string& dir, int count,
                                                       const std::string& binary = "");
  ~ServingFleet();  // Stop()
  // Stops the replicas last-started-first. Idempotent.
  void Stop();

  const std::vector<Replica>& replicas() const { return replicas_; }
  const std::string& key_file() const { return key_file_; }
  // "127.0.0.1:PORT" of each push listener, in replica order.
  std::vector<std::string> push_addresses() const;

 private:
  ServingFleet() = default;
  Status Launch(const std::string& binary, const std::string& config_path, int index, int push_port, int admin_port);

  std::string key_file_;
  std::vector<Replica> replicas_;
};

}  // namespace freshet::ops
