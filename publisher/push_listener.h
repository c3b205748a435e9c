// PushListener: the TCP side of a serving replica that the publisher pushes frames
// to (publisher/frame.h). For each connection it reads frames one after another:
//
//   read 36-byte header ─► DecodeFrameHeader (magic, protocol, type, size bound)
//   read payload + MAC  ─► VerifyFrame (CRC32C, then HMAC-SHA256)
//   handler(frame)      ─► reply frame (ACK / NEED_FULL / REJECT), signed, written back
//
// A frame that fails decoding or verification is reported to `on_bad_frame` with
// its cause and the connection is closed without a reply: nothing of it reaches the
// handler. A peer that closes the connection is normal (the publisher reconnects).
//
//   PushListener listener({.bind_address = "127.0.0.1", .port = 0, .key = key},
//                         [&](const Frame& f) { return replica.Handle(f); },
//                         [&](FrameError e) { bad->Inc(); });
//   RETURN_IF_ERROR(listener.Start());   // listener.port() is the bound port
//
// Thread-safety: Start/Stop from the owning thread. Handlers run on the listener's
// single I/O thread, one frame at a time (so frames of all connections are handled
// in arrival order, never concurrently).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "publisher/frame.h"

namespace freshet::publisher {

class PushListener {
 public:
  struct Options {
    std::string bind_address = "127.0.0.1";
    int port = 0;  // 0: an ephemeral port (see port())
    std::string key;
    uint64_t max_payload_bytes = kDefaultMaxPayloadBytes;
  };
  // Returns the reply to send: header fields (type, versions) and payload.
  using Handler = std::function<Frame(const Frame& frame)>;
  using BadFrameHandler = std::function<void(FrameError error, const Status& status)>;

  PushListener(Options options, Handler handler, BadFrameHandler on_bad_frame);
  ~PushListener();
  PushListener(const PushListener&) = delete;
  PushListener& operator=(const PushListener&) = delete;

  // Binds and starts the I/O thread. Unavailable (naming address:port) when the
  // port is taken or the address is not local.
  Status Start();
  // Closes the acceptor and every connection, joins the I/O thread. Idempotent.
  void Stop();
  // REQUIRES: Start() succeeded.
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshet::publisher
