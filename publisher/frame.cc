// Push-protocol frames: encoding, verification (CRC32C + HMAC-SHA256), HMAC keys.
#include "publisher/frame.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/check.h"
#include "learner/checkpoint_store.h"

namespace freshet::publisher {
namespace {

template <typename V>
void PutLe(std::string* out, V v) {
  for (size_t i = 0; i < sizeof(V); ++i) out->push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF));
}

template <typename V>
V GetLe(std::string_view bytes, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(V); ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return static_cast<V>(v);
}

// HMAC-SHA256 over a ‖ b without concatenating them (the payload may be large).
std::string HmacSha256(std::string_view key, std::string_view a, std::string_view b) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  // EVP_MAC (OpenSSL 3): HMAC_CTX, the streaming API of OpenSSL 1.1, is deprecated.
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  size_t len = 0;
  bool ok = ctx != nullptr &&
            EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) == 1 &&
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(a.data()), a.size()) == 1 &&
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(b.data()), b.size()) == 1 &&
            EVP_MAC_final(ctx, out, &len, sizeof out) == 1;
  out_len = static_cast<unsigned int>(len);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  CHECK(ok && out_len == kFrameMacBytes) << "OpenSSL HMAC-SHA256 failed";
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

Status Fail(FrameError* error, FrameError cause, Status status) {
  if (error != nullptr) *error = cause;
  return status;
}

}  // namespace

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kFull: return "FULL";
    case FrameType::kDelta: return "DELTA";
    case FrameType::kAck: return "ACK";
    case FrameType::kNeedFull: return "NEED_FULL";
    case FrameType::kPing: return "PING";
    case FrameType::kReject: return "REJECT";
  }
  return "UNKNOWN";
}

const char* FrameErrorName(FrameError error) {
  switch (error) {
    case FrameError::kNone: return "none";
    case FrameError::kBadMagic: return "bad_magic";
    case FrameError::kBadProtocolVersion: return "bad_protocol_version";
    case FrameError::kBadType: return "bad_type";
    case FrameError::kTooLarge: return "too_large";
    case FrameError::kTruncated: return "truncated";
    case FrameError::kBadCrc: return "bad_crc";
    case FrameError::kBadHmac: return "bad_hmac";
  }
  return "unknown";
}

std::string EncodeFrame(FrameHeader header, std::string_view payload, std::string_view key) {
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size() + kFrameMacBytes);
  PutLe<uint32_t>(&out, kFrameMagic);
  PutLe<uint16_t>(&out, kProtocolVersion);
  PutLe<uint16_t>(&out, static_cast<uint16_t>(header.type));
  PutLe<uint64_t>(&out, header.version);
  PutLe<uint64_t>(&out, header.base_version);
  PutLe<uint64_t>(&out, payload.size());
  PutLe<uint32_t>(&out, learner::Crc32c(payload.data(), payload.size()));
  out.append(payload);
  out += HmacSha256(key, std::string_view(out).substr(0, kFrameHeaderBytes), payload);
  return out;
}

StatusOr<FrameHeader> DecodeFrameHeader(std::string_view bytes, uint64_t max_payload_bytes, FrameError* error) {
  if (error != nullptr) *error = FrameError::kNone;
  if (bytes.size() < kFrameHeaderBytes)
    return Fail(error, FrameError::kTruncated,
                DataLossError("frame header has " + std::to_string(bytes.size()) + " bytes, needs 36"));
  const uint32_t magic = GetLe<uint32_t>(bytes, 0);
  if (magic != kFrameMagic)
    return Fail(error, FrameError::kBadMagic,
                DataLossError("bad frame magic 0x" + [&] {
                  char buf[16];
                  std::snprintf(buf, sizeof buf, "%08x", magic);
                  return std::string(buf);
                }() + ": not a Freshet push stream"));
  const uint16_t protocol = GetLe<uint16_t>(bytes, 4);
  if (protocol != kProtocolVersion)
    return Fail(error, FrameError::kBadProtocolVersion,
                FailedPreconditionError("unsupported push protocol version " + std::to_string(protocol) +
                                        " (this build speaks " + std::to_string(kProtocolVersion) + ")"));
  const uint16_t type = GetLe<uint16_t>(bytes, 6);
  if (type < static_cast<uint16_t>(FrameType::kFull) || type > static_cast<uint16_t>(FrameType::kReject))
    return Fail(error, FrameError::kBadType, DataLossError("unknown frame type " + std::to_string(type)));
  FrameHeader h;
  h.type = static_cast<FrameType>(type);
  h.version = GetLe<uint64_t>(bytes, 8);
  h.base_version = GetLe<uint64_t>(bytes, 16);
  h.payload_bytes = GetLe<uint64_t>(bytes, 24);
  h.payload_crc32c = GetLe<uint32_t>(bytes, 32);
  if (h.payload_bytes > max_payload_bytes)
    return Fail(error, FrameError::kTooLarge,
                ResourceExhaustedError("frame payload of " + std::to_string(h.payload_bytes) +
                                       " bytes exceeds the maximum of " + std::to_string(max_payload_bytes) +
                                       " (serving.max_frame_bytes)"));
  return h;
}

Status VerifyFrame(const FrameHeader& header, std::string_view header_bytes, std::string_view payload,
                   std::string_view mac, std::string_view key, FrameError* error) {
  if (error != nullptr) *error = FrameError::kNone;
  if (header_bytes.size() != kFrameHeaderBytes || payload.size() != header.payload_bytes ||
      mac.size() != kFrameMacBytes)
    return Fail(error, FrameError::kTruncated,
                DataLossError("frame sizes do not match its header (payload " + std::to_string(payload.size()) +
                              " of " + std::to_string(header.payload_bytes) + " bytes)"));
  const uint32_t crc = learner::Crc32c(payload.data(), payload.size());
  if (crc != header.payload_crc32c)
    return Fail(error, FrameError::kBadCrc,
                DataLossError("bad CRC32C of " + std::string(FrameTypeName(header.type)) + " frame version " +
                              std::to_string(header.version) + ": payload corrupted"));
  const std::string expected = HmacSha256(key, header_bytes, payload);
  if (CRYPTO_memcmp(expected.data(), mac.data(), kFrameMacBytes) != 0)
    return Fail(error, FrameError::kBadHmac,
                InvalidArgumentError("bad HMAC of " + std::string(FrameTypeName(header.type)) + " frame version " +
                                     std::to_string(header.version) +
                                     ": not signed with the shared key (publisher.hmac_key_file)"));
  return Status::Ok();
}

StatusOr<Frame> DecodeFrame(std::string_view bytes, std::string_view key, uint64_t max_payload_bytes,
                            FrameError* error) {
  ASSIGN_OR_RETURN(FrameHeader header, DecodeFrameHeader(bytes, max_payload_bytes, error));
  if (bytes.size() != kFrameHeaderBytes + header.payload_bytes + kFrameMacBytes)
    return Fail(error, FrameError::kTruncated,
                DataLossError("frame has " + std::to_string(bytes.size()) + " bytes, its header announces " +
                              std::to_string(kFrameHeaderBytes + header.payload_bytes + kFrameMacBytes)));
  const std::string_view payload = bytes.substr(kFrameHeaderBytes, header.payload_bytes);
  RETURN_IF_ERROR(VerifyFrame(header, bytes.substr(0, kFrameHeaderBytes), payload,
                              bytes.substr(kFrameHeaderBytes + header.payload_bytes), key, error));
  return Frame{header, std::string(payload)};
}

StatusOr<std::string> LoadHmacKey(const std::string& path) {
  const std::string how = "; create one with `head -c 32 /dev/urandom > " + path +
                          " && chmod 600 " + path + "` and give the same file to the publisher and every replica";
  if (path.empty())
    return InvalidArgumentError("publisher.hmac_key_file is empty: the push protocol needs a shared key" +
                                std::string("; create one with `head -c 32 /dev/urandom > KEYFILE` and set "
                                            "publisher.hmac_key_file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read HMAC key file " + path + ": " + std::strerror(errno) + how);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (key.size() < kMinHmacKeyBytes)
    return InvalidArgumentError("HMAC key file " + path + " has " + std::to_string(key.size()) +
                                " bytes; at least " + std::to_string(kMinHmacKeyBytes) + " are needed" + how);
  return key;
}

StatusOr<std::string> GenerateHmacKey() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
    return InternalError("OpenSSL RAND_bytes failed to make an HMAC key");
  return key;
}

Status WriteHmacKey(const std::string& path, std::string_view key) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("cannot create HMAC key file " + path + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < key.size()) {
    const ssize_t n = ::write(fd, key.data() + written, key.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      return InternalError("cannot write HMAC key file " + path + ": " + std::strerror(e));
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return InternalError("cannot close HMAC key file " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace freshet::publisher
