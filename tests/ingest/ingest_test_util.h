// Helpers for the ingest integration tests: a simulator sink that produces to Kafka
// and records every event (the ground truth), an independent reference of what the
// `wait` policy must emit per impression, and a reader for a whole topic.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "ingest/kafka_client.h"
#include "ingest/watermark_flush.h"
#include "ops/simulator.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::ingest::testutil {

class RecordingSink : public ops::EventSink {
 public:
  RecordingSink(KafkaProducer* producer, const KafkaConfig& kafka) : producer_(producer), kafka_(kafka) {}
  Status OnImpression(const Impression& i) override {
    impressions.push_back(i);
    return producer_->Produce(kafka_.impressions_topic(), i.request_id(), i.SerializeAsString());
  }
  Status OnLabel(const Label& l) override {
    labels[l.request_id()].push_back(l);
    ++label_count;
    return producer_->Produce(kafka_.labels_topic(), l.request_id(), l.SerializeAsString());
  }
  // Closes every window: see ingest/watermark_flush.h.
  Status FlushWatermarks(int partitions, int64_t t) {
    return ProduceWatermarkFlush(producer_, kafka_, partitions, t);
  }

  std::vector<Impression> impressions;
  std::map<std::string, std::vector<Label>> labels;
  size_t label_count = 0;

 private:
  KafkaProducer* producer_;
  KafkaConfig kafka_;
};

struct Expected {
  std::vector<float> label;
  std::vector<bool> mask;
};

// What `wait` must emit for `imp`, computed from the task config directly.
inline Expected ExpectedWait(const FreshetConfig& config, const Impression& imp, const std::vector<Label>& labels) {
  const int n = config.tasks_size();
  Expected e{std::vector<float>(n, 0), std::vector<bool>(n, false)};
  std::vector<bool> observed(n, false), positive(n, false);
  for (int t = 0; t < n; ++t) {
    const TaskConfig& task = config.tasks(t);
    for (int k : task.label_kinds()) {
      for (const Label& l : labels) {
        if (l.kind() != k || l.event_time_ms() > imp.event_time_ms() + task.window_ms()) continue;
        if (task.type() == TASK_REGRESSION) {
          if (!observed[t]) e.label[t] = l.value() * task.value_scale();
          observed[t] = true;
        } else if (l.value() >= task.value_threshold()) {
          positive[t] = true;
        }
      }
    }
    if (task.type() == TASK_BINARY) {
      observed[t] = true;
      e.label[t] = positive[t] ? 1 : 0;
    }
  }
  for (int t = 0; t < n; ++t) {
    bool space = true;
    for (int d = 0; d < n; ++d) {
      if (config.tasks(d).name() == config.tasks(t).requires_positive()) space = positive[d];
    }
    e.mask[t] = observed[t] && space;
    if (!e.mask[t]) e.label[t] = 0;
  }
  return e;
}

// Reads `topic` from the beginning with a fresh group until `done(messages)` or
// `timeout_ms`.
template <typename Done>
std::vector<KafkaMessage> ReadTopic(const std::string& bootstrap, const std::string& topic, int timeout_ms,
                                    Done done) {
  KafkaConsumer::Options o;
  o.bootstrap_servers = bootstrap;
  o.group_id = "reader-" + topic + "-" + std::to_string(Clock::Real()->MonotonicUs());
  auto c = KafkaConsumer::Create(o);
  std::vector<KafkaMessage> out;
  if (!c.ok() || !(*c)->Subscribe({topic}).ok()) return out;
  const int64_t deadline = Clock::Real()->NowMs() + timeout_ms;
  while (Clock::Real()->NowMs() < deadline && !done(out)) {
    auto m = (*c)->Poll(200);
    if (m.ok() && m->has_value()) out.push_back(std::move(**m));
  }
  return out;
}

}  // namespace freshet::ingest::testutil
