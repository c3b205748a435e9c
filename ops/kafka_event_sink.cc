// KafkaEventSink; see kafka_event_sink.h.
#include "ops/kafka_event_sink.h"

namespace freshet::ops {

KafkaEventSink::KafkaEventSink(ingest::KafkaProducer* producer, std::string impressions_topic,
                               std::string labels_topic, MetricsRegistry* metrics)
    : producer_(producer),
      impressions_topic_(std::move(impressions_topic)),
      labels_topic_(std::move(labels_topic)),
      impressions_(metrics->GetCounter("freshet_simulator_events_total", "Events the simulator produced",
                                       {{"topic", impressions_topic_}})),
      labels_(metrics->GetCounter("freshet_simulator_events_total", "Events the simulator produced",
                                  {{"topic", labels_topic_}})) {}

Status KafkaEventSink::OnImpression(const Impression& impression) {
  buffer_.clear();
  impression.SerializeToString(&buffer_);
  RETURN_IF_ERROR(producer_->Produce(impressions_topic_, impression.request_id(), buffer_));
  impressions_->Inc();
  return Status::Ok();
}

Status KafkaEventSink::OnLabel(const Label& label) {
  buffer_.clear();
  label.SerializeToString(&buffer_);
  RETURN_IF_ERROR(producer_->Produce(labels_topic_, label.request_id(), buffer_));
  labels_->Inc();
  return Status::Ok();
}

}  // namespace freshet::ops
