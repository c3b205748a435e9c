// ProduceWatermarkFlush; see watermark_flush.h.
#include "ingest/watermark_flush.h"

#include <string>

namespace freshet::ingest {

void MakeWatermarkFlush(int partition, int64_t t, Impression* i, Label* l) {
  i->set_request_id("flush-" + std::to_string(partition));
  i->set_user_id(1);
  i->set_item_id(1);
  i->set_event_time_ms(t);
  l->set_request_id(i->request_id());
  l->set_user_id(1);
  l->set_item_id(1);
  l->set_event_time_ms(t);
  l->set_kind(LABEL_COLLECT);  // counted as unused by the default tasks, never joined
  l->set_value(1);
}

Status ProduceWatermarkFlush(KafkaProducer* producer, const KafkaConfig& kafka, int partitions, int64_t t) {
  for (int p = 0; p < partitions; ++p) {
    Impression i;
    Label l;
    MakeWatermarkFlush(p, t, &i, &l);
    RETURN_IF_ERROR(producer->Produce(kafka.impressions_topic(), i.request_id(), i.SerializeAsString(), p));
    RETURN_IF_ERROR(producer->Produce(kafka.labels_topic(), l.request_id(), l.SerializeAsString(), p));
  }
  return producer->Flush(10000);
}

}  // namespace freshet::ingest
