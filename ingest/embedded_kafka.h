// EmbeddedKafka: librdkafka's in-process mock cluster on loopback, the default Kafka
// for `freshet run`, `freshet kafka` and tests. It speaks the Kafka protocol over real
// sockets, so our clients and external ones (kcat, confluent-kafka) connect to it as
// to any cluster. Known limits (docs/toolchain.md): no CreateTopics from admin
// clients (use CreateTopic here), auto-created topics get 4 partitions, and
// transactions are not isolated.
//
// Thread-safety: methods may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace freshet::ingest {

class EmbeddedKafka {
 public:
  // Starts a cluster of `brokers` brokers (REQUIRES: brokers >= 1).
  static StatusOr<std::unique_ptr<EmbeddedKafka>> Start(int brokers = 3);
  ~EmbeddedKafka();
  EmbeddedKafka(const EmbeddedKafka&) = delete;
  EmbeddedKafka& operator=(const EmbeddedKafka&) = delete;

  // "127.0.0.1:PORT,127.0.0.1:PORT,..."
  const std::string& bootstrap() const { return bootstrap_; }
  int brokers() const { return brokers_; }

  // Creates `name` with `partitions` partitions, replicated min(3, brokers) ways.
  Status CreateTopic(const std::string& name, int partitions);

  // Fault injection for reliability tests: take a broker down or bring it back, or
  // add round-trip latency to one broker.
  Status SetBrokerDown(int broker_id, bool down);
  Status SetBrokerRttMs(int broker_id, int rtt_ms);

 private:
  struct Impl;
  explicit EmbeddedKafka(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
  int brokers_ = 0;
};

}  // namespace freshet::ingest
