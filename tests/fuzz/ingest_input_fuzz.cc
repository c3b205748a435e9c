// libFuzzer target for the joiner's input path: raw Kafka message bytes → event
// decoder → PartitionJoin (all three label policies), exactly as Joiner::Process
// drives them, with the clock and watermark moved by the input.
//
// The input is a sequence of operations, each one byte of opcode then its operands:
//   op%5 == 0  impression: length byte n, then n bytes decoded as a raw protobuf value
//   op%5 == 1  label:      length byte n, then n raw protobuf bytes
//   op%5 == 2  structured impression built from the next bytes (small id spaces, so
//              labels meet their impressions; dense values are raw float bits, NaN
//              and Inf included) and serialised before decoding
//   op%5 == 3  structured label (kind byte may be any enum value, value raw bits)
//   op%5 == 4  advance the clock by a byte's worth of seconds, then Advance(), or
//              ForceCloseOldest when the byte is odd
// The first input byte picks the policy. The decoder must call bytes malformed exactly
// when protobuf's own Impression parser refuses them. Any sample the join emits must
// parse and be well formed (one label/mask/weight per task, finite values, an id,
// the layout stamp);
// a violation aborts, which libFuzzer reports as a crash with the input saved.
//
//   build:  make fuzz   (configures build-fuzz/ with clang, -fsanitize=fuzzer,address)
//   run:    build-fuzz/tests/fuzz/ingest_input_fuzz -max_total_time=60
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "common/clock.h"
#include "common/metrics.h"
#include "ingest/event_decoder.h"
#include "ingest/ingest_probe.h"
#include "ingest/partition_join.h"
#include "ingest/task_rules.h"

namespace freshet::ingest {
namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string_view Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  float Float() {
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits = bits << 8 | Byte();
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "ingest_input_fuzz: invariant broken: %s\n", what);
  std::abort();
}

TaskConfig Task(const char* name, LabelKind kind, int64_t window_ms, const char* requires_positive = "") {
  TaskConfig t;
  t.set_name(name);
  t.add_label_kinds(kind);
  t.set_window_ms(window_ms);
  t.set_requires_positive(requires_positive);
  t.set_value_threshold(0.5f);
  t.set_value_scale(1.0f);
  return t;
}

FreshetConfig FuzzConfig(LabelPolicy policy) {
  FreshetConfig c;
  *c.add_tasks() = Task("click", LABEL_CLICK, 10000);
  *c.add_tasks() = Task("like", LABEL_LIKE, 30000, "click");
  TaskConfig play = Task("play", LABEL_PLAY_TIME, 10000);
  play.set_type(TASK_REGRESSION);
  play.set_value_scale(0.001f);
  *c.add_tasks() = play;
  IngestConfig* in = c.mutable_ingest();
  in->set_policy(policy);
  in->set_allowed_lateness_ms(1000);
  in->set_orphan_ttl_ms(60000);
  in->set_max_orphans_per_partition(64);
  in->set_max_open_impressions_per_partition(64);
  in->set_correction_horizon_ms(120000);
  in->set_max_future_skew_ms(300000);
  in->set_max_impression_age_ms(600000);
  return c;
}

Impression StructuredImpression(Input* in, int64_t now_ms) {
  Impression imp;
  imp.set_request_id("r" + std::to_string(in->Byte() % 16));
  imp.set_user_id(in->Byte() % 4);  // 0 = missing: must be rejected, not joined
  imp.set_item_id(in->Byte());
  imp.set_event_time_ms(now_ms - int64_t{in->Byte()} * 1000 + int64_t{in->Byte()} * 100);
  SparseFeature* s = imp.add_sparse();
  s->set_slot(in->Byte() % 8);
  for (int i = in->Byte() % 4; i > 0; --i) s->add_ids(in->Byte());
  DenseFeature* d = imp.add_dense();
  d->set_slot(0);
  d->add_values(in->Float());
  return imp;
}

Label StructuredLabel(Input* in, int64_t now_ms) {
  Label label;
  label.set_request_id("r" + std::to_string(in->Byte() % 16));
  label.set_user_id(in->Byte() % 4);
  label.set_item_id(in->Byte());
  label.set_event_time_ms(now_ms - int64_t{in->Byte()} * 1000);
  label.set_kind(static_cast<LabelKind>(in->Byte() % 16));
  label.set_value(in->Float());
  return label;
}

void CheckSamples(const std::vector<JoinedSample>& out, const TaskRules& rules) {
  for (const JoinedSample& joined : out) {
    StatusOr<Sample> whole = joined.ToProto();
    Require(whole.ok(), "a sample's bytes do not parse");
    const Sample& s = *whole;
    Require(!s.sample_id().empty(), "sample without sample_id");
    Require(s.label_size() == rules.size(), "label count != task count");
    Require(s.mask_size() == rules.size(), "mask count != task count");
    Require(s.weight_size() == rules.size(), "weight count != task count");
    Require(s.task_layout() == rules.layout(), "sample stamped with another task layout");
    for (float v : s.label()) Require(std::isfinite(v), "non-finite label");
    for (float w : s.weight()) Require(std::isfinite(w) && w >= 0, "non-finite or negative weight");
    for (const DenseFeature& d : s.dense())
      for (float v : d.values()) Require(std::isfinite(v), "non-finite dense feature reached a sample");
  }
}

}  // namespace
}  // namespace freshet::ingest

// Malformed strings make libprotobuf log an error per parse; the decoder's rejection
// is what matters here, and the log would drown libFuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace freshet;
  using namespace freshet::ingest;
  Input in(data, size);
  static const LabelPolicy kPolicies[] = {POLICY_WAIT, POLICY_WAIT_CORRECT, POLICY_IMMEDIATE};
  const FreshetConfig config = FuzzConfig(kPolicies[in.Byte() % 3]);
  StatusOr<TaskRules> rules = TaskRules::Create(config);
  Require(rules.ok(), "fuzz task config rejected");
  MetricsRegistry metrics;
  IngestProbe probe(&metrics, config.ingest().policy());
  FakeClock clock(kStartMs);
  PartitionJoin join(0, &*rules, config.ingest(), &probe, &clock);

  std::vector<JoinedSample> out;
  while (!in.empty()) {
    const uint8_t op = in.Byte() % 5;
    DecodeLimits limits;
    limits.max_message_bytes = 200;
    limits.now_ms = clock.NowMs();
    limits.max_future_skew_ms = config.ingest().max_future_skew_ms();
    if (join.watermark() != PartitionJoin::kNoTime)
      limits.oldest_impression_ms = join.watermark() - config.ingest().max_impression_age_ms();
    out.clear();
    if (op == 0 || op == 2) {
      std::string bytes = op == 0 ? std::string(in.Bytes(in.Byte())) : StructuredImpression(&in, clock.NowMs()).SerializeAsString();
      ImpressionEvent imp;
      Rejection r = DecodeImpression({}, bytes, limits, &imp);
      Require(r.ok() || !r.detail.empty(), "rejection without a detail");
      Impression parsed;
      Require(r.reason == "oversized" || (r.reason == "malformed_protobuf") == !parsed.ParseFromString(bytes),
              "the decoder and protobuf's parser disagree on whether bytes are an Impression");
      if (r.ok()) join.AddImpression(std::move(imp), &out);
    } else if (op == 1 || op == 3) {
      std::string bytes = op == 1 ? std::string(in.Bytes(in.Byte())) : StructuredLabel(&in, clock.NowMs()).SerializeAsString();
      Label label;
      Rejection r = DecodeLabel({}, bytes, limits, &label);
      Require(r.ok() || !r.detail.empty(), "rejection without a detail");
      Label parsed;
      const bool parses = parsed.ParseFromString(bytes);
      Require(r.reason == "oversized" || (r.reason == "malformed_protobuf") == !parses,
              "the decoder and protobuf's parser disagree on whether bytes are a Label");
      Require(!r.ok() || (label.request_id() == parsed.request_id() && label.user_id() == parsed.user_id() &&
                          label.item_id() == parsed.item_id() && label.event_time_ms() == parsed.event_time_ms() &&
                          label.kind() == parsed.kind() && label.value() == parsed.value()),
              "the decoder read a Label differently from protobuf's parser");
      if (r.ok()) join.AddLabel(label, &out);
    } else {
      const uint8_t step = in.Byte();
      clock.AdvanceMs(int64_t{step} * 1000);
      if (step % 2 == 1) join.ForceCloseOldest(1 + step % 4, &out);
      else join.Advance(&out);
    }
    CheckSamples(out, *rules);
  }
  // Everything still open closes once event time moves past every window.
  clock.AdvanceMs(3'600'000);
  out.clear();
  for (int i = 0; i < 4 && join.open_records() > 0; ++i) {
    join.ForceCloseOldest(1 << 20, &out);
  }
  CheckSamples(out, *rules);
  return 0;
}
