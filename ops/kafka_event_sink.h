// KafkaEventSink: writes simulator (or replay) events to the impressions and labels
// topics, keyed by request_id so both sides of a join share a partition.
#pragma once

#include <string>

#include "common/metrics.h"
#include "ingest/kafka_client.h"
#include "ops/simulator.h"

namespace freshet::ops {

class KafkaEventSink : public EventSink {
 public:
  // `producer` must outlive the sink.
  KafkaEventSink(ingest::KafkaProducer* producer, std::string impressions_topic, std::string labels_topic,
                 MetricsRegistry* metrics);

  Status OnImpression(const Impression& impression) override;
  Status OnLabel(const Label& label) override;

 private:
  ingest::KafkaProducer* producer_;
  std::string impressions_topic_;
  std::string labels_topic_;
  Counter* impressions_;
  Counter* labels_;
  std::string buffer_;
};

}  // namespace freshet::ops
