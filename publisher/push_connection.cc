// PushConnection over a blocking Boost.Asio socket with SO_RCVTIMEO/SO_SNDTIMEO.
#include "publisher/push_connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>

namespace freshet::publisher {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct PushConnection::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  std::string key;
  std::string peer;
};

PushConnection::PushConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PushConnection::~PushConnection() {
  boost::system::error_code ignored;
  impl_->socket.close(ignored);
}

StatusOr<std::unique_ptr<PushConnection>> PushConnection::Connect(const std::string& host, int port, std::string key,
                                                                  int timeout_ms) {
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  impl->peer = host + ":" + std::to_string(port);
  boost::system::error_code ec;
  tcp::resolver resolver(impl->io);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (!ec) {
    // Connect with a deadline: run the async connect for at most timeout_ms.
    asio::async_connect(impl->socket, endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
    impl->io.run_for(std::chrono::milliseconds(timeout_ms));
    if (!impl->io.stopped()) {
      impl->socket.close();
      ec = asio::error::timed_out;
    }
  }
  if (ec) return UnavailableError("cannot connect to replica push listener " + impl->peer + ": " + ec.message());
  impl->socket.set_option(tcp::no_delay(true), ec);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(impl->socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(impl->socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return std::unique_ptr<PushConnection>(new PushConnection(std::move(impl)));
}

StatusOr<Frame> PushConnection::Exchange(const std::string& frame_bytes) {
  boost::system::error_code ec;
  asio::write(impl_->socket, asio::buffer(frame_bytes), ec);
  if (ec) return UnavailableError("push to " + impl_->peer + " failed: " + ec.message());
  std::string header(kFrameHeaderBytes, '\0');
  asio::read(impl_->socket, asio::buffer(header), ec);
  if (ec)
    return UnavailableError("replica " + impl_->peer + " closed the connection or timed out without a reply: " +
                            ec.message());
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(header, 1 << 20));
  std::string rest(h.payload_bytes + kFrameMacBytes, '\0');
  asio::read(impl_->socket, asio::buffer(rest), ec);
  if (ec) return UnavailableError("short reply from replica " + impl_->peer + ": " + ec.message());
  const std::string_view payload = std::string_view(rest).substr(0, h.payload_bytes);
  RETURN_IF_ERROR(VerifyFrame(h, header, payload, std::string_view(rest).substr(h.payload_bytes), impl_->key));
  return Frame{h, std::string(payload)};
}

}  // namespace freshet::publisher
