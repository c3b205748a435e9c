// ProduceWatermarkFlush: closes every join window of a finished stream. The joiner's
// watermark is event time, so after the last real event the newest windows stay open
// until newer events arrive; a replay, a benchmark or a test that has nothing more to
// send writes one impression and one label (of a kind no task uses) per partition at
// event time `t`, which moves every partition's watermark past every window. Their
// request_ids start with "flush-".
#pragma once

#include <cstdint>

#include "common/status.h"
#include "ingest/kafka_client.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"

namespace freshet::ingest {

// The flush events of partition `partition` at event time `t`.
void MakeWatermarkFlush(int partition, int64_t t, Impression* impression, Label* label);

// Produces the flush events to kafka.impressions_topic() and kafka.labels_topic(),
// partitions 0 .. partitions-1, and waits for delivery (up to 10 s).
Status ProduceWatermarkFlush(KafkaProducer* producer, const KafkaConfig& kafka, int partitions, int64_t t);

}  // namespace freshet::ingest
