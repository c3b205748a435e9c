// The hand-written Sample encoding against protobuf's own serializer.
#include "ingest/sample_wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace freshet::ingest {
namespace {

// The same values as a Sample message.
Sample AsMessage(const SampleHeader& h) {
  Sample s;
  s.set_sample_id(std::string(h.sample_id));
  s.set_request_id(std::string(h.request_id));
  s.set_user_id(h.user_id);
  s.set_item_id(h.item_id);
  s.set_event_time_ms(h.event_time_ms);
  s.set_emit_time_ms(h.emit_time_ms);
  for (size_t t = 0; t < h.label.size(); ++t) {
    s.add_label(h.label[t]);
    s.add_mask(h.mask >> t & 1);
    s.add_weight(1.0f);
  }
  s.set_correction(h.correction);
  s.set_origin(h.origin);
  s.set_task_layout(h.task_layout);
  return s;
}

TEST(SampleWireTest, HeaderIsWhatProtobufWritesForRandomValues) {
  std::mt19937_64 rng(7);
  auto pick = [&](std::initializer_list<uint64_t> values) { return *(values.begin() + rng() % values.size()); };
  const uint64_t kBig = std::numeric_limits<uint64_t>::max();
  for (int i = 0; i < 2000; ++i) {
    // Zero (left out), one-byte, multi-byte and ten-byte varints, negative times,
    // empty and long ids, 0 to 64 tasks.
    const std::string sample_id(rng() % 3 == 0 ? 0 : rng() % 200, static_cast<char>('a' + rng() % 26));
    const std::string request_id(rng() % 3 == 0 ? 0 : rng() % 40, 'r');
    std::vector<float> label(rng() % 65);
    for (float& v : label) v = rng() % 3 == 0 ? 0.0f : static_cast<float>(static_cast<int64_t>(rng() % 2001) - 1000) / 7.0f;
    SampleHeader h;
    h.sample_id = sample_id;
    h.request_id = request_id;
    h.user_id = pick({0, 1, 127, 128, 1u << 20, kBig});
    h.item_id = pick({0, 5, 300, kBig - 1});
    h.event_time_ms = static_cast<int64_t>(pick({0, 1, 1'700'000'000'000ULL, static_cast<uint64_t>(-5)}));
    h.emit_time_ms = static_cast<int64_t>(pick({0, 1'700'000'000'123ULL, static_cast<uint64_t>(-1)}));
    h.label = label;
    h.mask = rng();
    h.correction = rng() % 2;
    h.origin = static_cast<SampleOrigin>(rng() % (SampleOrigin_MAX + 1));
    h.task_layout = static_cast<uint32_t>(pick({0, 1, 0xdeadbeef}));
    std::string bytes;
    AppendSampleHeader(h, &bytes);
    ASSERT_EQ(bytes, AsMessage(h).SerializeAsString()) << "case " << i << ", " << label.size() << " tasks";
    ASSERT_LE(bytes.size(), SampleHeaderBound(label.size()) + sample_id.size() + request_id.size()) << "case " << i;
  }
}

TEST(SampleWireTest, FeaturesThenHeaderParseAsTheWholeSample) {
  Impression imp;
  SparseFeature* sp = imp.add_sparse();
  sp->set_slot(3);
  sp->add_ids(9);
  sp->add_ids(1ULL << 40);
  DenseFeature* d = imp.add_dense();
  d->set_slot(1);
  d->add_values(-2.5f);
  const float label[] = {1.0f, 0.0f, 0.25f};
  SampleHeader h;
  h.sample_id = "r7#p:click";
  h.request_id = "r7";
  h.user_id = 42;
  h.event_time_ms = 1000;
  h.label = label;
  h.mask = 0b101;
  h.origin = ORIGIN_IMMEDIATE_POSITIVE;
  JoinedSample joined{SampleBytes(FeatureBytes(imp), h), h.user_id};
  StatusOr<Sample> s = joined.ToProto();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->sample_id(), "r7#p:click");
  EXPECT_EQ(s->user_id(), 42u);
  ASSERT_EQ(s->sparse_size(), 1);
  EXPECT_EQ(s->sparse(0).ids(1), 1ULL << 40);
  ASSERT_EQ(s->dense_size(), 1);
  EXPECT_EQ(s->dense(0).values(0), -2.5f);
  EXPECT_EQ(std::vector<float>(s->label().begin(), s->label().end()), std::vector<float>({1.0f, 0.0f, 0.25f}));
  EXPECT_EQ(std::vector<bool>(s->mask().begin(), s->mask().end()), std::vector<bool>({true, false, true}));
  EXPECT_EQ(s->weight_size(), 3);
  EXPECT_EQ(s->origin(), ORIGIN_IMMEDIATE_POSITIVE);

  JoinedSample broken{"\x3a\x05", 1};  // field 7 claims 5 bytes that are not there
  EXPECT_EQ(broken.ToProto().status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace freshet::ingest
