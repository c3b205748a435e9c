// EventSink: where event producers (the traffic simulator, the KuaiRand replay) hand
// their raw Impression and Label events, e.g. to Kafka or to a test recorder.
//
// Thread-safety: up to the implementation; producers call it from one thread.
#pragma once

#include "common/status.h"
#include "schemas/events.pb.h"

namespace freshet::ingest {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // A non-OK status means the event was not taken; the producer offers it again.
  virtual Status OnImpression(const Impression& impression) = 0;
  virtual Status OnLabel(const Label& label) = 0;
};

}  // namespace freshet::ingest
