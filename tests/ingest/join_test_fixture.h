// The PartitionJoin tests' fixture (partition_join_test.cc, and the persistence
// tests in partition_join_store_test.cc): a four-task config, events built by hand, a
// fake clock, and what the joins emitted read back as Samples.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "ingest/ingest_probe.h"
#include "ingest/partition_join.h"
#include "ingest/task_rules.h"
#include "schemas/config.pb.h"
#include "schemas/events.pb.h"
#include "schemas/sample.pb.h"

namespace freshet::ingest::jointest {

inline constexpr int64_t T = 1'700'000'000'000;  // impression time used by most tests

inline TaskConfig Task(const std::string& name, LabelKind kind, int64_t window,
                       const std::string& requires_positive = "") {
  TaskConfig t;
  t.set_name(name);
  t.add_label_kinds(kind);
  t.set_window_ms(window);
  t.set_requires_positive(requires_positive);
  t.set_value_threshold(0.5f);
  t.set_value_scale(1.0f);
  return t;
}

// Tasks: 0 click (10 s), 1 like (30 s, among clicks), 2 play (regression, ms/1000,
// 10 s), 3 long_view (play time >= 5000 ms, 10 s). Longest window 30 s.
inline FreshetConfig TestConfig(LabelPolicy policy) {
  FreshetConfig c;
  *c.add_tasks() = Task("click", LABEL_CLICK, 10000);
  *c.add_tasks() = Task("like", LABEL_LIKE, 30000, "click");
  TaskConfig play = Task("play", LABEL_PLAY_TIME, 10000);
  play.set_type(TASK_REGRESSION);
  play.set_value_scale(0.001f);
  *c.add_tasks() = play;
  TaskConfig lv = Task("long_view", LABEL_PLAY_TIME, 10000);
  lv.set_value_threshold(5000);
  *c.add_tasks() = lv;
  IngestConfig* in = c.mutable_ingest();
  in->set_policy(policy);
  in->set_allowed_lateness_ms(1000);
  in->set_orphan_ttl_ms(60000);
  in->set_max_orphans_per_partition(1000);
  in->set_max_open_impressions_per_partition(1000);
  in->set_correction_horizon_ms(120000);
  return c;
}

inline Impression Imp(const std::string& rid, int64_t t) {
  Impression i;
  i.set_request_id(rid);
  i.set_user_id(7);
  i.set_item_id(9);
  i.set_event_time_ms(t);
  SparseFeature* s = i.add_sparse();
  s->set_slot(1);
  s->add_ids(9);
  DenseFeature* d = i.add_dense();
  d->set_slot(0);
  d->add_values(0.5f);
  return i;
}

inline Label Lab(const std::string& rid, LabelKind kind, int64_t t, float value = 1) {
  Label l;
  l.set_request_id(rid);
  l.set_user_id(7);
  l.set_item_id(9);
  l.set_kind(kind);
  l.set_event_time_ms(t);
  l.set_value(value);
  return l;
}

inline std::vector<bool> Masks(const Sample& s) { return {s.mask().begin(), s.mask().end()}; }
inline std::vector<float> LabelValues(const Sample& s) { return {s.label().begin(), s.label().end()}; }

// What the joins emitted. They append JoinedSamples (the vector base); the tests read
// each as the complete Sample a consumer parses, features included, through [].
class Emitted : public std::vector<JoinedSample> {
 public:
  Sample operator[](size_t i) const {
    StatusOr<Sample> s = at(i).ToProto();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : Sample();
  }
};

class JoinTest : public ::testing::Test {
 protected:
  void Make(LabelPolicy policy, std::function<void(FreshetConfig*)> edit = nullptr) {
    join_.reset();  // first: it flushes its metrics into the probe it was made with
    config_ = TestConfig(policy);
    if (edit) edit(&config_);
    auto r = TaskRules::Create(config_);
    ASSERT_TRUE(r.ok()) << r.status();
    rules_ = std::make_unique<TaskRules>(std::move(r).value());
    probe_ = std::make_unique<IngestProbe>(&metrics_, policy);
    join_ = std::make_unique<PartitionJoin>(0, rules_.get(), config_.ingest(), probe_.get(), &clock_);
  }
  // Moves the watermark: a label of a kind no task uses and an impression, both at
  // `t` (the watermark follows the slower input). Samples of tick impressions are
  // not kept.
  void Tick(int64_t t) {
    Emitted all;
    join_->AddLabel(Lab("tick", LABEL_COLLECT, t), &all);
    join_->AddImpression(Imp("tick" + std::to_string(t), t), &all);
    for (JoinedSample& s : all) {
      StatusOr<Sample> whole = s.ToProto();
      ASSERT_TRUE(whole.ok()) << whole.status();
      if (whole->request_id().rfind("tick", 0) != 0) out_.push_back(std::move(s));
    }
  }
  double CounterValue(const std::string& name, const Labels& labels = {}) {
    join_->FlushMetrics();
    return metrics_.GetCounter(name, "", labels)->Value();
  }
  std::optional<Sample> Find(const std::string& id) const {
    for (size_t i = 0; i < out_.size(); ++i) {
      if (Sample s = out_[i]; s.sample_id() == id) return s;
    }
    return std::nullopt;
  }

  FakeClock clock_{T + 5000};
  MetricsRegistry metrics_;
  FreshetConfig config_;
  std::unique_ptr<TaskRules> rules_;
  std::unique_ptr<IngestProbe> probe_;
  std::unique_ptr<PartitionJoin> join_;
  Emitted out_;
};

// Strips the emit time so two runs can be compared byte for byte.
inline std::map<std::string, std::string> Canonical(const Emitted& samples) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < samples.size(); ++i) {
    Sample s = samples[i];
    s.clear_emit_time_ms();
    out[s.sample_id()] = s.SerializeAsString();
  }
  return out;
}

}  // namespace freshet::ingest::jointest
