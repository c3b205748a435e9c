// Push-protocol frames: round trip, and every kind of damage is detected with its
// own cause (magic, protocol version, type, size bound, truncation, CRC, HMAC).
#include "publisher/frame.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

namespace freshet::publisher {
namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef";

std::string Payload() {
  std::string p;
  for (int i = 0; i < 1000; ++i) p.push_back(static_cast<char>(i * 7 + 3));
  return p;
}

TEST(FrameTest, RoundTripKeepsEveryField) {
  const std::string payload = Payload();
  const std::string bytes = EncodeFrame({FrameType::kDelta, 42, 41}, payload, kKey);
  ASSERT_EQ(bytes.size(), kFrameHeaderBytes + payload.size() + kFrameMacBytes);
  EXPECT_EQ(bytes.substr(0, 4), "FRSH");
  FrameError error = FrameError::kBadHmac;
  StatusOr<Frame> f = DecodeFrame(bytes, kKey, 1 << 20, &error);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(error, FrameError::kNone);
  EXPECT_EQ(f->header.type, FrameType::kDelta);
  EXPECT_EQ(f->header.version, 42u);
  EXPECT_EQ(f->header.base_version, 41u);
  EXPECT_EQ(f->header.payload_bytes, payload.size());
  EXPECT_EQ(f->payload, payload);
}

TEST(FrameTest, EmptyPayloadRoundTrips) {
  StatusOr<Frame> f = DecodeFrame(EncodeFrame({FrameType::kAck, 7, 7}, "", kKey), kKey, 0);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->header.type, FrameType::kAck);
  EXPECT_EQ(f->header.version, 7u);
  EXPECT_TRUE(f->payload.empty());
}

TEST(FrameTest, HeaderIsLittleEndianAtFixedOffsets) {
  const std::string bytes = EncodeFrame({FrameType::kFull, 0x0102030405060708ull, 0}, "xy", kKey);
  EXPECT_EQ(static_cast<unsigned char>(bytes[4]), 1);   // protocol version
  EXPECT_EQ(static_cast<unsigned char>(bytes[6]), 1);   // FULL
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 8);   // version, low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[15]), 1);
  EXPECT_EQ(static_cast<unsigned char>(bytes[24]), 2);  // payload length
}

struct Damage {
  const char* what;
  size_t offset;  // byte to flip
  FrameError expected;
};

TEST(FrameTest, EveryDamagedByteIsDetected) {
  const std::string payload = Payload();
  const std::string good = EncodeFrame({FrameType::kFull, 9, 0}, payload, kKey);
  const Damage cases[] = {
      {"magic", 1, FrameError::kBadMagic},
      {"protocol version", 4, FrameError::kBadProtocolVersion},
      {"type", 7, FrameError::kBadType},
      {"version field (signed)", 9, FrameError::kBadHmac},
      {"base version field (signed)", 17, FrameError::kBadHmac},
      {"crc field", 33, FrameError::kBadCrc},
      {"payload", kFrameHeaderBytes + 500, FrameError::kBadCrc},
      {"mac", good.size() - 1, FrameError::kBadHmac},
  };
  for (const Damage& d : cases) {
    std::string bad = good;
    bad[d.offset] = static_cast<char>(bad[d.offset] ^ 0x40);
    FrameError error = FrameError::kNone;
    StatusOr<Frame> f = DecodeFrame(bad, kKey, 1 << 20, &error);
    EXPECT_FALSE(f.ok()) << d.what;
    EXPECT_EQ(error, d.expected) << d.what << ": " << f.status() << " (" << FrameErrorName(error) << ")";
  }
}

TEST(FrameTest, CorruptionWithRecomputedCrcIsCaughtByHmac) {
  // A tamperer who fixes up the CRC still lacks the key.
  std::string payload = Payload();
  const std::string good = EncodeFrame({FrameType::kFull, 9, 0}, payload, kKey);
  payload[10] ^= 1;
  std::string forged = EncodeFrame({FrameType::kFull, 9, 0}, payload, "another key of enough length!!!");
  FrameError error = FrameError::kNone;
  EXPECT_FALSE(DecodeFrame(forged, kKey, 1 << 20, &error).ok());
  EXPECT_EQ(error, FrameError::kBadHmac);
  // And a MAC copied from the genuine frame does not fit the changed payload.
  forged.replace(forged.size() - kFrameMacBytes, kFrameMacBytes, good.substr(good.size() - kFrameMacBytes));
  EXPECT_FALSE(DecodeFrame(forged, kKey, 1 << 20, &error).ok());
  EXPECT_EQ(error, FrameError::kBadHmac);
}

TEST(FrameTest, OversizedAndTruncatedFramesAreRefused) {
  const std::string good = EncodeFrame({FrameType::kFull, 1, 0}, Payload(), kKey);
  FrameError error = FrameError::kNone;
  StatusOr<Frame> f = DecodeFrame(good, kKey, 999, &error);
  EXPECT_EQ(error, FrameError::kTooLarge);
  EXPECT_EQ(f.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(f.status().message().find("exceeds the maximum of 999"), std::string::npos) << f.status();
  EXPECT_FALSE(DecodeFrame(good.substr(0, good.size() - 1), kKey, 1 << 20, &error).ok());
  EXPECT_EQ(error, FrameError::kTruncated);
  EXPECT_FALSE(DecodeFrame(good + "x", kKey, 1 << 20, &error).ok());
  EXPECT_EQ(error, FrameError::kTruncated);
  EXPECT_FALSE(DecodeFrame(good.substr(0, 10), kKey, 1 << 20, &error).ok());
  EXPECT_EQ(error, FrameError::kTruncated);
}

TEST(FrameTest, ErrorsNameTheirCause) {
  std::string bad = EncodeFrame({FrameType::kFull, 1, 0}, "abc", kKey);
  bad[4] = 9;
  StatusOr<Frame> f = DecodeFrame(bad, kKey, 100);
  EXPECT_EQ(f.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(f.status().message().find("unsupported push protocol version 9"), std::string::npos) << f.status();
  f = DecodeFrame(EncodeFrame({FrameType::kFull, 1, 0}, "abc", kKey), "the wrong key, long enough", 100);
  EXPECT_NE(f.status().message().find("bad HMAC"), std::string::npos) << f.status();
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/freshet_key_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(KeyFileTest, GeneratedKeyRoundTripsThroughAFile) {
  StatusOr<std::string> key = GenerateHmacKey();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);
  StatusOr<std::string> other = GenerateHmacKey();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*key, *other);
  const std::string path = dir_ + "/push.key";
  ASSERT_TRUE(WriteHmacKey(path, *key).ok());
  StatusOr<std::string> loaded = LoadHmacKey(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, *key);
}

TEST_F(KeyFileTest, MissingEmptyAndShortKeysAreRefusedWithHowTo) {
  const std::string path = dir_ + "/short.key";
  std::ofstream(path) << "tooshort";
  for (const std::string& p : {path, dir_ + "/absent.key", std::string()}) {
    StatusOr<std::string> key = LoadHmacKey(p);
    ASSERT_FALSE(key.ok()) << p;
    EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(key.status().message().find("head -c 32 /dev/urandom"), std::string::npos) << key.status();
  }
}

}  // namespace
}  // namespace freshet::publisher
