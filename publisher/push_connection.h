// PushConnection: a blocking client connection to a replica's push listener: send
// one encoded frame, read and verify the reply frame. The building block of the
// publisher's push client, and what tests and benchmarks use to talk to a replica.
//
//   auto conn = PushConnection::Connect("127.0.0.1", port, key, 2000);
//   StatusOr<Frame> ack = (*conn)->Exchange(EncodeFrame({FrameType::kFull, 7, 0}, payload, key));
//
// Thread-safety: one thread at a time per connection.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "publisher/frame.h"

namespace freshet::publisher {

class PushConnection {
 public:
  // Unavailable (naming host:port) when nothing accepts within timeout_ms.
  static StatusOr<std::unique_ptr<PushConnection>> Connect(const std::string& host, int port, std::string key,
                                                           int timeout_ms);
  ~PushConnection();

  // Writes `frame_bytes` and reads the reply (each step bounded by the connect
  // timeout). Unavailable when the replica closes the connection instead of
  // replying (what it does with a frame whose CRC or HMAC fails) or on a timeout;
  // the frame errors of DecodeFrame when the reply itself does not verify.
  StatusOr<Frame> Exchange(const std::string& frame_bytes);

 private:
  struct Impl;
  explicit PushConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshet::publisher
