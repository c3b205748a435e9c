// Frames of the push protocol between the publisher and serving replicas (DESIGN.md
// §3). Every message on a push connection, in both directions, is one frame:
//
//   offset  size  field                     (all integers little-endian)
//        0     4  magic "FRSH"
//        4     2  protocol version (kProtocolVersion = 1)
//        6     2  message type (FrameType)
//        8     8  model version
//       16     8  base version
//       24     8  payload length N
//       32     4  CRC32C of the payload
//       36     N  payload (FULL / DELTA: a serialized ModelUpdate; REJECT: a reason)
//     36+N    32  HMAC-SHA256 over bytes [0, 36+N) with the shared key
//
// The CRC catches accidental corruption; the HMAC makes sure only a holder of the
// shared key (the publisher) can change what serving serves. A reader decodes the
// fixed header first (DecodeFrameHeader: magic, protocol version, type, size bound),
// then reads N + 32 more bytes and verifies them (VerifyFrame: CRC, then HMAC).
//
// Meaning of the version fields per type:
//   FULL       version = the model version; base = 0
//   DELTA      version = the new version;   base = the version it applies onto
//   PING       publisher → replica; version/base unused (0); answered with an ACK
//   ACK        version = the version the replica serves now (0: none); base = the
//              version of the frame answered
//   NEED_FULL  as ACK, for a DELTA whose base is not the served version
//   REJECT     as ACK, for a well-signed frame that could not be applied; the
//              payload says why (fingerprint mismatch, malformed update)
//
//   std::string key = *LoadHmacKey("/etc/freshet/push.key");
//   std::string bytes = EncodeFrame({FrameType::kFull, 7, 0}, payload, key);
//   StatusOr<Frame> f = DecodeFrame(bytes, key, kDefaultMaxPayloadBytes);
//
// Thread-safety: free functions over values; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace freshet::publisher {

inline constexpr uint32_t kFrameMagic = 0x48535246u;  // "FRSH" as little-endian bytes
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 36;
inline constexpr size_t kFrameMacBytes = 32;
inline constexpr size_t kMinHmacKeyBytes = 16;
inline constexpr uint64_t kDefaultMaxPayloadBytes = uint64_t{1} << 30;

enum class FrameType : uint16_t {
  kFull = 1,
  kDelta = 2,
  kAck = 3,
  kNeedFull = 4,
  kPing = 5,
  kReject = 6,
};
const char* FrameTypeName(FrameType type);

struct FrameHeader {
  FrameType type = FrameType::kPing;
  uint64_t version = 0;
  uint64_t base_version = 0;
  uint64_t payload_bytes = 0;  // set by EncodeFrame / DecodeFrameHeader
  uint32_t payload_crc32c = 0; // set by EncodeFrame / DecodeFrameHeader
};

struct Frame {
  FrameHeader header;
  std::string payload;
};

// header ‖ payload ‖ HMAC. payload_bytes and payload_crc32c of `header` are ignored
// and computed from `payload`.
std::string EncodeFrame(FrameHeader header, std::string_view payload, std::string_view key);

// Why a frame was refused, for metric labels ("bad_hmac") and tests.
enum class FrameError {
  kNone,
  kBadMagic,            // not a Freshet push stream
  kBadProtocolVersion,  // a peer speaking another protocol version
  kBadType,             // unknown message type
  kTooLarge,            // payload over the configured maximum
  kTruncated,           // fewer (or more) bytes than the header announces
  kBadCrc,              // payload corrupted
  kBadHmac,             // not signed with the shared key (tampered or wrong key)
};
const char* FrameErrorName(FrameError error);  // "bad_magic", ... ("none")

// Parses the fixed 36-byte header. DataLoss for a bad magic or an unknown type;
// FailedPrecondition for another protocol version; ResourceExhausted when the
// payload is larger than max_payload_bytes. `error` (optional) gets the cause.
// REQUIRES: bytes.size() >= kFrameHeaderBytes.
StatusOr<FrameHeader> DecodeFrameHeader(std::string_view bytes, uint64_t max_payload_bytes,
                                        FrameError* error = nullptr);

// Verifies the rest of a frame: `header_bytes` are the 36 bytes DecodeFrameHeader
// parsed into `header`; `payload` has header.payload_bytes bytes; `mac` 32 bytes.
// The CRC is checked first, so a corrupted payload reads as kBadCrc and a frame
// whose bytes are intact but whose HMAC does not verify as kBadHmac. DataLoss for a
// bad CRC or wrong sizes, InvalidArgument for a bad HMAC.
Status VerifyFrame(const FrameHeader& header, std::string_view header_bytes, std::string_view payload,
                   std::string_view mac, std::string_view key, FrameError* error = nullptr);

// A whole frame in one buffer (tests, in-memory use): DecodeFrameHeader + size check
// + VerifyFrame. DataLoss (kTruncated) when `bytes` is shorter or longer than the
// header says.
StatusOr<Frame> DecodeFrame(std::string_view bytes, std::string_view key, uint64_t max_payload_bytes,
                            FrameError* error = nullptr);

// Reads the shared HMAC key from `path` (raw bytes). InvalidArgument when the file is
// missing, unreadable or shorter than kMinHmacKeyBytes; the message says how to make
// one: `head -c 32 /dev/urandom > FILE`.
StatusOr<std::string> LoadHmacKey(const std::string& path);
// 32 random bytes from OpenSSL's CSPRNG (`freshet run` makes one key per run).
StatusOr<std::string> GenerateHmacKey();
// Writes `key` to `path` with mode 0600. Internal on I/O failure.
Status WriteHmacKey(const std::string& path, std::string_view key);

}  // namespace freshet::publisher
