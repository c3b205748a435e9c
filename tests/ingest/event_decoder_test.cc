// Event decoding: every rejection reason, impressions kept as header + feature bytes,
// and arbitrary bytes judged malformed exactly as protobuf's own parser judges them.
#include "ingest/event_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "ingest/sample_wire.h"

namespace freshet::ingest {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

Impression GoodImp() {
  Impression i;
  i.set_request_id("r1");
  i.set_user_id(1);
  i.set_item_id(2);
  i.set_event_time_ms(kNow - 1000);
  i.add_dense()->add_values(1.0f);
  return i;
}

Label GoodLabel() {
  Label l;
  l.set_request_id("r1");
  l.set_user_id(1);
  l.set_item_id(2);
  l.set_event_time_ms(kNow - 500);
  l.set_kind(LABEL_CLICK);
  l.set_value(1);
  return l;
}

DecodeLimits Limits() {
  DecodeLimits l;
  l.max_message_bytes = 1024;
  l.now_ms = kNow;
  l.max_future_skew_ms = 60000;
  l.oldest_impression_ms = kNow - 3600000;
  return l;
}

std::string ImpReason(const Impression& i, std::string key = "r1") {
  ImpressionEvent out;
  return DecodeImpression(key, i.SerializeAsString(), Limits(), &out).reason;
}
std::string LabelReason(const Label& l, std::string key = "r1") {
  Label out;
  return DecodeLabel(key, l.SerializeAsString(), Limits(), &out).reason;
}

TEST(EventDecoderTest, AcceptsGoodEvents) {
  EXPECT_EQ(ImpReason(GoodImp()), "");
  EXPECT_EQ(LabelReason(GoodLabel()), "");
  EXPECT_EQ(ImpReason(GoodImp(), ""), "");  // unkeyed messages are fine
}

TEST(EventDecoderTest, ImpressionRejections) {
  Impression i = GoodImp();
  i.clear_request_id();
  EXPECT_EQ(ImpReason(i), "missing_request_id");
  i = GoodImp();
  i.set_user_id(0);
  EXPECT_EQ(ImpReason(i), "missing_user_id");
  i = GoodImp();
  i.set_item_id(0);
  EXPECT_EQ(ImpReason(i), "missing_item_id");
  i = GoodImp();
  i.set_event_time_ms(0);
  EXPECT_EQ(ImpReason(i), "missing_event_time");
  i = GoodImp();
  i.mutable_dense(0)->add_values(std::nanf(""));
  EXPECT_EQ(ImpReason(i), "non_finite_value");
  i = GoodImp();
  i.mutable_dense(0)->set_values(0, INFINITY);
  EXPECT_EQ(ImpReason(i), "non_finite_value");
  EXPECT_EQ(ImpReason(GoodImp(), "other"), "key_mismatch");
  i = GoodImp();
  i.set_event_time_ms(kNow + 3600000);
  EXPECT_EQ(ImpReason(i), "event_time_in_future");
  i = GoodImp();
  i.set_event_time_ms(kNow - 7200000);
  EXPECT_EQ(ImpReason(i), "impression_too_old");
  i = GoodImp();
  i.add_sparse()->mutable_ids()->Resize(2000, 5);  // > 1024 bytes
  EXPECT_EQ(ImpReason(i), "oversized");
  ImpressionEvent out;
  EXPECT_EQ(DecodeImpression("r1", std::string("\xff\xff\xff\x0f", 4), Limits(), &out).reason, "malformed_protobuf");
}

TEST(EventDecoderTest, LabelRejections) {
  Label l = GoodLabel();
  l.set_kind(LABEL_KIND_UNSPECIFIED);
  EXPECT_EQ(LabelReason(l), "unknown_label_kind");
  l.set_kind(static_cast<LabelKind>(77));
  EXPECT_EQ(LabelReason(l), "unknown_label_kind");
  l = GoodLabel();
  l.set_value(std::nanf(""));
  EXPECT_EQ(LabelReason(l), "non_finite_value");
  l = GoodLabel();
  l.clear_request_id();
  EXPECT_EQ(LabelReason(l), "missing_request_id");
  l = GoodLabel();
  l.set_event_time_ms(kNow + 3600000);
  EXPECT_EQ(LabelReason(l), "event_time_in_future");
  Label out;
  EXPECT_EQ(DecodeLabel("r1", std::string(2000, 'x'), Limits(), &out).reason, "oversized");
}

// An impression with two features of each kind and a field this schema does not know.
std::string RichImpressionBytes() {
  Impression i = GoodImp();
  SparseFeature* s = i.add_sparse();
  s->set_slot(3);
  s->add_ids(11);
  s->add_ids(300);
  i.add_sparse()->add_ids(1ull << 40);
  i.mutable_dense(0)->set_slot(2);
  i.add_dense()->add_values(-2.5f);
  std::string bytes = i.SerializeAsString();
  bytes += std::string("\x38\x05", 2);  // field 7, varint 5: unknown to Impression
  return bytes;
}

std::string Hex(const std::string& bytes) {
  std::string out;
  char b[4];
  for (unsigned char c : bytes) {
    std::snprintf(b, sizeof b, "%02x ", c);
    out += b;
  }
  return out;
}

// The features the decoder kept, read back as a Sample's, equal the parsed Impression's.
void ExpectSameFeatures(const ImpressionEvent& ev, const Impression& ref) {
  Sample s;
  ASSERT_TRUE(s.ParseFromString(ev.features));
  ASSERT_EQ(s.sparse_size(), ref.sparse_size());
  ASSERT_EQ(s.dense_size(), ref.dense_size());
  for (int k = 0; k < ref.sparse_size(); ++k) EXPECT_EQ(s.sparse(k).SerializeAsString(), ref.sparse(k).SerializeAsString());
  for (int k = 0; k < ref.dense_size(); ++k) EXPECT_EQ(s.dense(k).SerializeAsString(), ref.dense(k).SerializeAsString());
  EXPECT_EQ(ev.request_id, ref.request_id());
  EXPECT_EQ(ev.user_id, ref.user_id());
  EXPECT_EQ(ev.item_id, ref.item_id());
  EXPECT_EQ(ev.event_time_ms, ref.event_time_ms());
}

TEST(EventDecoderTest, ImpressionKeepsItsFeaturesAsSampleFields) {
  const std::string bytes = RichImpressionBytes();
  Impression ref;
  ASSERT_TRUE(ref.ParseFromString(bytes));
  ImpressionEvent ev;
  ASSERT_TRUE(DecodeImpression("r1", bytes, Limits(), &ev).ok());
  ExpectSameFeatures(ev, ref);
  // A sample assembled from the header and the kept bytes carries the same features.
  JoinedSample joined;
  SampleHeader h;
  h.sample_id = "r1";
  joined.bytes = SampleBytes(ev.features, h);
  StatusOr<Sample> whole = joined.ToProto();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->sample_id(), "r1");
  EXPECT_EQ(whole->sparse_size(), 2);
  EXPECT_EQ(whole->sparse(0).ids(1), 300u);
  EXPECT_EQ(whole->dense(1).values(0), -2.5f);
  EXPECT_EQ(FeatureBytes(ref), ev.features);  // the two ways to get feature bytes agree
  // Decoding again into the same event starts from scratch.
  ASSERT_TRUE(DecodeImpression("", GoodImp().SerializeAsString(), Limits(), &ev).ok());
  ExpectSameFeatures(ev, GoodImp());
}

// Feature bytes in the usual form pass a quick scan; every other form goes to the
// feature message's parser. Either way DecodeImpression accepts exactly what
// Impression's own parser accepts, and rejects a dense NaN/Inf.
// With headroom for a sample header, the window's sample can take the feature bytes
// over and append its header without growing them.
TEST(EventDecoderTest, FeatureBytesHaveRoomForTheSampleHeader) {
  Impression imp = GoodImp();
  imp.set_request_id("request-0123456789");
  for (int slot = 0; slot < 8; ++slot) {
    SparseFeature* f = imp.add_sparse();
    f->set_slot(slot);
    f->add_ids(1000 + slot);
  }
  DecodeLimits limits = Limits();
  limits.feature_headroom = SampleHeaderBound(8);
  ImpressionEvent ev;
  ASSERT_TRUE(DecodeImpression("", imp.SerializeAsString(), limits, &ev).ok());
  const float label[8] = {1, 0, 1, 0, 1, 0, 1, 0};
  SampleHeader h;
  h.sample_id = ev.request_id;
  h.request_id = ev.request_id;
  h.user_id = ~uint64_t{0};  // every varint at its longest
  h.item_id = ~uint64_t{0};
  h.event_time_ms = -1;
  h.emit_time_ms = -1;
  h.label = label;
  h.mask = 0xff;
  h.correction = true;
  h.origin = ORIGIN_IMMEDIATE_POSITIVE;
  h.task_layout = 7;
  const char* before = ev.features.data();
  AppendSampleHeader(h, &ev.features);
  EXPECT_EQ(ev.features.data(), before) << "the feature bytes were reallocated";
}

TEST(EventDecoderTest, FeatureFormsAreJudgedLikeTheGeneratedParser) {
  const std::string s = std::string("\x2a", 1);  // Impression field 5 (sparse), length-delimited
  const std::string d = std::string("\x32", 1);  // field 6 (dense)
  auto feature = [](const std::string& tag, const std::string& body) {
    return tag + static_cast<char>(body.size()) + body;
  };
  const std::string one_f = std::string("\x00\x00\x80\x3f", 4);  // 1.0f
  const std::string nan_f = std::string("\x00\x00\xc0\x7f", 4);
  struct Case {
    const char* what;
    std::string feature;
  };
  const std::vector<Case> cases = {
      {"usual sparse", feature(s, std::string("\x08\x03\x12\x03\x0b\xac\x02", 7))},
      {"usual dense", feature(d, std::string("\x08\x01\x12\x04", 4) + one_f)},
      {"empty feature", feature(s, "")},
      {"slot twice, values twice", feature(s, std::string("\x08\x01\x12\x01\x05\x08\x02\x12\x01\x06", 10))},
      {"unpacked id", feature(s, std::string("\x10\x05", 2))},
      {"unknown field", feature(s, std::string("\x18\x01", 2))},
      {"ten-byte slot", feature(s, std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11))},
      {"ten-byte slot, high bits", feature(s, std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11))},
      {"eleven-byte slot", feature(s, std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12))},
      {"slot cut short", feature(s, std::string("\x08\x80", 2))},
      {"id runs past its packed field", feature(s, std::string("\x12\x01\x80\x08\x01", 5))},
      {"packed length past the end", feature(s, std::string("\x12\x05\x01", 3))},
      {"packed length in six bytes", feature(s, std::string("\x12\x81\x80\x80\x80\x80\x00\x01", 8))},
      {"dense length not a multiple of 4", feature(d, std::string("\x12\x03\x00\x00\x80", 5))},
      {"dense NaN", feature(d, std::string("\x12\x04", 2) + nan_f)},
      {"dense NaN unpacked", feature(d, std::string("\x15", 1) + nan_f)},
      {"dense unpacked", feature(d, std::string("\x15", 1) + one_f)},
      {"multi-byte tag for slot", feature(s, std::string("\x88\x00\x05", 3))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string bytes = GoodImp().SerializeAsString() + c.feature;
    Impression ref;
    const bool parses = ref.ParseFromString(bytes);
    bool finite = true;
    for (const DenseFeature& f : ref.dense()) {
      for (float v : f.values()) finite = finite && std::isfinite(v);
    }
    ImpressionEvent ev;
    const Rejection r = DecodeImpression("r1", bytes, Limits(), &ev);
    EXPECT_EQ(r.reason, !parses ? "malformed_protobuf" : !finite ? "non_finite_value" : "") << Hex(c.feature);
    if (r.ok()) ExpectSameFeatures(ev, ref);
  }
}

TEST(EventDecoderTest, RequestIdMustBeUtf8LikeTheGeneratedParserSays) {
  Impression i = GoodImp();
  i.set_request_id(std::string("r\xc3", 2));  // a truncated two-byte sequence
  Impression ref;
  EXPECT_FALSE(ref.ParseFromString(i.SerializeAsString()));
  EXPECT_EQ(ImpReason(i, ""), "malformed_protobuf");
  i.set_request_id("r\xc3\xa9");  // "ré"
  EXPECT_EQ(ImpReason(i, ""), "");
}

void ExpectSameLabel(const Label& got, const Label& ref) {
  EXPECT_EQ(got.request_id(), ref.request_id());
  EXPECT_EQ(got.user_id(), ref.user_id());
  EXPECT_EQ(got.item_id(), ref.item_id());
  EXPECT_EQ(got.event_time_ms(), ref.event_time_ms());
  EXPECT_EQ(static_cast<int>(got.kind()), static_cast<int>(ref.kind()));
  EXPECT_EQ(got.value(), ref.value());
}

// Labels in forms a serializer may or may not write: the decoder reads the usual form
// itself and must agree with Label's own parser on every one.
TEST(EventDecoderTest, LabelFormsAreReadLikeTheGeneratedParser) {
  const std::string good = GoodLabel().SerializeAsString();
  const std::string one_f = std::string("\x00\x00\x80\x3f", 4);  // 1.0f
  struct Case {
    const char* what;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"usual", good},
      {"fields reversed", std::string("\x35", 1) + one_f + std::string("\x28\x01\x20", 3) +
                              good.substr(good.find('\x20') + 1, 6) + std::string("\x18\x02\x10\x01\x0a\x02r1", 8)},
      {"user id twice: the last counts", good + std::string("\x10\x07", 2)},
      {"request id twice", good + std::string("\x0a\x02r2", 4)},
      {"value twice", good + std::string("\x35\x00\x00\x00\x40", 5)},
      {"unknown varint field", good + std::string("\x38\x05", 2)},
      {"unknown field first", std::string("\x38\x05", 2) + good},
      {"kind out of the enum", good + std::string("\x28\x63", 2)},
      {"kind in ten bytes (negative)", good + std::string("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)},
      {"kind past 32 bits", good + std::string("\x28\x81\x80\x80\x80\x10", 6)},
      {"negative event time", good + std::string("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)},
      {"eleven-byte user id", good + std::string("\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)},
      {"ten-byte user id, high bits", good + std::string("\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11)},
      {"user id cut short", good + std::string("\x10\x80", 2)},
      {"value as a varint", good + std::string("\x30\x01", 2)},
      {"value cut short", good + std::string("\x35\x00\x00", 3)},
      {"item id as fixed64", good + std::string("\x19\x01\x00\x00\x00\x00\x00\x00\x00", 9)},
      {"request id length past the end", good + std::string("\x0a\x05r", 3)},
      {"request id length in six bytes", good + std::string("\x0a\x82\x80\x80\x80\x80\x00r2", 9)},
      {"request id not UTF-8", good + std::string("\x0a\x02r\xc3", 4)},
      {"request id UTF-8", good + std::string("\x0a\x03r\xc3\xa9", 5)},
      {"multi-byte tag for user id", good + std::string("\x90\x00\x07", 3)},
      {"field 0", good + std::string("\x00\x01", 2)},
      {"empty", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Label ref;
    const bool parses = ref.ParseFromString(c.bytes);
    Label got;
    got.set_request_id("left over from the previous message");
    got.set_value(9);
    const Rejection r = DecodeLabel("", c.bytes, Limits(), &got);
    EXPECT_EQ(r.reason == "malformed_protobuf", !parses) << Hex(c.bytes) << ": " << r.reason;
    if (parses && r.reason != "malformed_protobuf") ExpectSameLabel(got, ref);
  }
}

// Differential: mutated and truncated encodings are malformed for the decoder exactly
// when Impression::ParseFromArray refuses them, and what it accepts it keeps intact.
TEST(EventDecoderTest, RandomBytesAreMalformedExactlyWhenTheParserSaysSo) {
  std::mt19937 rng(7);
  const std::string good = RichImpressionBytes();
  int accepted = 0, malformed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (i % 3 == 0) bytes.resize(rng() % (bytes.size() + 1));
    ImpressionEvent ev;
    Label lab;
    Impression ref;
    const bool parses = ref.ParseFromString(bytes);
    Rejection a = DecodeImpression("", bytes, Limits(), &ev);
    Rejection b = DecodeLabel("r1", bytes, Limits(), &lab);
    ASSERT_EQ(a.reason == "malformed_protobuf", !parses) << "mutation " << i << " (" << Hex(bytes) << "): " << a.reason;
    malformed += !parses;
    if (a.ok()) {
      ++accepted;
      EXPECT_FALSE(ev.request_id.empty());
      ExpectSameFeatures(ev, ref);
    }
    if (b.ok()) {
      EXPECT_NE(lab.kind(), LABEL_KIND_UNSPECIFIED);
    }
  }
  // Both sides of the comparison were exercised.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(malformed, 100);
}

// The same for labels: mutated label bytes are malformed exactly when Label's parser
// refuses them, and otherwise decode to what the parser reads.
TEST(EventDecoderTest, RandomLabelBytesAreReadExactlyAsTheParserReadsThem) {
  std::mt19937 rng(11);
  Label rich = GoodLabel();
  rich.set_request_id("req-0123456789");
  rich.set_user_id(1ULL << 40);
  rich.set_item_id(300);
  const std::string good = rich.SerializeAsString();
  int parsed = 0, malformed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 2; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (i % 3 == 0) bytes.resize(rng() % (bytes.size() + 1));
    Label ref, got;
    const bool parses = ref.ParseFromString(bytes);
    const Rejection r = DecodeLabel("", bytes, Limits(), &got);
    ASSERT_EQ(r.reason == "malformed_protobuf", !parses) << "mutation " << i << " (" << Hex(bytes) << "): " << r.reason;
    malformed += !parses;
    if (parses) {
      ++parsed;
      ExpectSameLabel(got, ref);
    }
  }
  EXPECT_GT(parsed, 1000);
  EXPECT_GT(malformed, 100);
}

}  // namespace
}  // namespace freshet::ingest
