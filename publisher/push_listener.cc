// PushListener on Boost.Asio: one I/O thread, asynchronous accept and reads.
#include "publisher/push_listener.h"

#include <atomic>
#include <boost/asio.hpp>
#include <thread>

#include "common/logging.h"
#include "common/tcp_listen.h"

namespace freshet::publisher {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One publisher connection: header → payload+MAC → handler → reply, repeated.
class PushSession : public std::enable_shared_from_this<PushSession> {
 public:
  PushSession(tcp::socket socket, const PushListener::Options* options, const PushListener::Handler* handler,
              const PushListener::BadFrameHandler* on_bad)
      : socket_(std::move(socket)), options_(options), handler_(handler), on_bad_(on_bad) {}

  void Start() { ReadHeader(); }
  void Close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void ReadHeader() {
    header_bytes_.resize(kFrameHeaderBytes);
    asio::async_read(socket_, asio::buffer(header_bytes_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(boost::system::error_code ec) {
    if (ec) return;  // peer closed (or Stop): nothing half-read is acted upon
    FrameError error = FrameError::kNone;
    StatusOr<FrameHeader> header = DecodeFrameHeader(header_bytes_, options_->max_payload_bytes, &error);
    if (!header.ok()) return Refuse(error, header.status());
    header_ = *header;
    body_.resize(header_.payload_bytes + kFrameMacBytes);
    asio::async_read(socket_, asio::buffer(body_),
                     [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(boost::system::error_code ec) {
    if (ec) return;
    const std::string_view body(body_);
    const std::string_view payload = body.substr(0, header_.payload_bytes);
    FrameError error = FrameError::kNone;
    Status verified =
        VerifyFrame(header_, header_bytes_, payload, body.substr(header_.payload_bytes), options_->key, &error);
    if (!verified.ok()) return Refuse(error, verified);
    Frame frame{header_, std::string(payload)};
    body_.clear();
    body_.shrink_to_fit();  // a FULL can be large; do not keep it per connection
    const Frame reply = (*handler_)(frame);
    reply_ = EncodeFrame(reply.header, reply.payload, options_->key);
    asio::async_write(socket_, asio::buffer(reply_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
      if (ec) return self->Close();
      self->ReadHeader();
    });
  }

  void Refuse(FrameError error, const Status& status) {
    LOG_WARNING("push_frame_refused").Kv("reason", FrameErrorName(error)).Kv("error", status.message());
    (*on_bad_)(error, status);
    Close();
  }

  tcp::socket socket_;
  const PushListener::Options* options_;
  const PushListener::Handler* handler_;
  const PushListener::BadFrameHandler* on_bad_;
  std::string header_bytes_;
  FrameHeader header_;
  std::string body_;
  std::string reply_;
};

struct PushListener::Impl {
  Options options;
  Handler handler;
  BadFrameHandler on_bad;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::atomic<bool> running{false};
  int port = 0;
  std::vector<std::weak_ptr<PushSession>> sessions;  // I/O thread only

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (!ec) {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<PushSession>(std::move(socket), &options, &handler, &on_bad);
        std::erase_if(sessions, [](const std::weak_ptr<PushSession>& s) { return s.expired(); });
        sessions.push_back(session);
        session->Start();
      }
      Accept();
    });
  }
};

PushListener::PushListener(Options options, Handler handler, BadFrameHandler on_bad_frame)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->on_bad = std::move(on_bad_frame);
}

PushListener::~PushListener() { Stop(); }

Status PushListener::Start() {
  const Options& o = impl_->options;
  try {
    impl_->port = ListenTcp(&impl_->acceptor, o.bind_address, o.port);
  } catch (const std::exception& e) {
    return UnavailableError("push listener cannot listen on " + o.bind_address + ":" + std::to_string(o.port) + ": " +
                            e.what() + " (another replica on this port? set serving.push_base_port or --push-port)");
  }
  impl_->Accept();
  impl_->running.store(true);
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return Status::Ok();
}

void PushListener::Stop() {
  if (!impl_ || !impl_->running.exchange(false)) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto& weak : impl_->sessions)
      if (auto s = weak.lock()) s->Close();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

int PushListener::port() const { return impl_->port; }

}  // namespace freshet::publisher
