// EmbeddedKafka over rd_kafka_mock_cluster; see embedded_kafka.h.
#include "ingest/embedded_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>

#include "common/logging.h"

namespace freshet::ingest {

struct EmbeddedKafka::Impl {
  rd_kafka_t* handle = nullptr;  // throwaway producer that owns the mock cluster
  rd_kafka_mock_cluster_t* cluster = nullptr;
};

StatusOr<std::unique_ptr<EmbeddedKafka>> EmbeddedKafka::Start(int brokers) {
  if (brokers < 1) return InvalidArgumentError("embedded kafka needs at least 1 broker, got " + std::to_string(brokers));
  auto impl = std::make_unique<Impl>();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // The handle only hosts the cluster; keep it quiet.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  impl->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!impl->handle) {
    rd_kafka_conf_destroy(conf);
    return InternalError(std::string("cannot create handle for embedded kafka: ") + err);
  }
  impl->cluster = rd_kafka_mock_cluster_new(impl->handle, brokers);
  if (!impl->cluster) {
    rd_kafka_destroy(impl->handle);
    return UnavailableError("cannot start embedded kafka (librdkafka mock cluster) on loopback");
  }
  std::unique_ptr<EmbeddedKafka> kafka(new EmbeddedKafka(std::move(impl)));
  kafka->bootstrap_ = rd_kafka_mock_cluster_bootstraps(kafka->impl_->cluster);
  kafka->brokers_ = brokers;
  LOG_INFO("embedded_kafka_started").Kv("brokers", brokers).Kv("bootstrap", kafka->bootstrap_);
  return kafka;
}

EmbeddedKafka::EmbeddedKafka(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EmbeddedKafka::~EmbeddedKafka() {
  rd_kafka_mock_cluster_destroy(impl_->cluster);
  rd_kafka_destroy(impl_->handle);
}

Status EmbeddedKafka::CreateTopic(const std::string& name, int partitions) {
  if (partitions < 1) return InvalidArgumentError("topic " + name + " needs at least 1 partition");
  int replication = std::min(3, brokers_);
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, replication);
  if (err) return InternalError("create topic " + name + " on embedded kafka: " + rd_kafka_err2str(err));
  return Status::Ok();
}

Status EmbeddedKafka::SetBrokerDown(int broker_id, bool down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(impl_->cluster, broker_id)
                                 : rd_kafka_mock_broker_set_up(impl_->cluster, broker_id);
  if (err) return InvalidArgumentError("broker " + std::to_string(broker_id) + ": " + rd_kafka_err2str(err));
  return Status::Ok();
}

Status EmbeddedKafka::SetBrokerRttMs(int broker_id, int rtt_ms) {
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(impl_->cluster, broker_id, rtt_ms);
  if (err) return InvalidArgumentError("broker " + std::to_string(broker_id) + ": " + rd_kafka_err2str(err));
  return Status::Ok();
}

}  // namespace freshet::ingest
