// Event decoding: every rejection reason, and arbitrary bytes never crash.
#include "ingest/event_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

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
  Impression out;
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
  Impression out;
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

TEST(EventDecoderTest, RandomBytesNeverCrashAndAreRejectedOrValid) {
  std::mt19937 rng(7);
  const std::string good = GoodImp().SerializeAsString();
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (i % 3 == 0) bytes.resize(rng() % (bytes.size() + 1));
    Impression imp;
    Label lab;
    Rejection a = DecodeImpression("r1", bytes, Limits(), &imp);
    Rejection b = DecodeLabel("r1", bytes, Limits(), &lab);
    if (a.ok()) {
      EXPECT_FALSE(imp.request_id().empty());
    }
    if (b.ok()) {
      EXPECT_NE(lab.kind(), LABEL_KIND_UNSPECIFIED);
    }
  }
}

}  // namespace
}  // namespace freshet::ingest
