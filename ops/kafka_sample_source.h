// The Kafka implementation of learner::SampleSource: the samples topic read through a
// consumer group with manual commits, plus a producer handle used only for metadata
// (readiness). It lives in ops/ because the learner library does not link Kafka
// (DESIGN.md §2).
#pragma once

#include <memory>
#include <string>

#include "learner/sample_source.h"
#include "schemas/config.pb.h"

namespace freshet::ops {

// The source on config.kafka().samples_topic() in group config.learner().consumer_group().
// bootstrap "" means config.kafka().bootstrap_servers().
std::unique_ptr<learner::SampleSource> NewKafkaSampleSource(const FreshetConfig& config, const std::string& bootstrap,
                                                            const std::string& client_id);

}  // namespace freshet::ops
