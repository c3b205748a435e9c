// PushClient: one strand-driven session per replica, a shared immutable set of
// encoded frames, and a worker thread for FULL payloads (see push_client.h).
#include "publisher/push_client.h"

#include <array>
#include <boost/asio.hpp>
#include <optional>
#include <thread>

#include "common/logging.h"
#include "publisher/frame.h"

namespace freshet::publisher {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kMaxDeltaChain = 16;
constexpr uint64_t kMaxReplyBytes = 1 << 20;
constexpr int64_t kBaseDeadlineMs = 10000;
constexpr double kSlowestBytesPerMs = 10e3;  // 10 MB/s: deadline = base + bytes at this rate

using Bytes = std::shared_ptr<const std::string>;

// What every session sends from, replaced (never mutated) on each Publish.
struct Frames {
  uint64_t target = 0;
  std::map<uint64_t, std::pair<uint64_t, Bytes>> deltas;  // base → (version, encoded DELTA)
  PushClient::Payload full_payload;                       // FULL of target, if the caller gave one
  Bytes full_frame;                                        // encoded FULL of target, once made
};
}  // namespace

struct PushClient::Impl {
  Options options;
  Clock* clock = nullptr;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::unique_ptr<asio::thread_pool> worker;
  std::vector<std::shared_ptr<Session>> sessions;
  Bytes ping_frame;  // the same bytes every time (no payload, versions 0): encoded once
  bool started = false, stopped = false;

  mutable std::mutex mu;
  mutable std::condition_variable acked_cv;
  std::shared_ptr<const Frames> frames = std::make_shared<Frames>();  // guarded by mu
  uint64_t full_building = 0;                                         // guarded by mu
  std::vector<ReplicaState> states;                                   // guarded by mu

  std::shared_ptr<const Frames> Current() const {
    std::lock_guard<std::mutex> lock(mu);
    return frames;
  }
  void UpdateState(size_t i, const std::function<void(ReplicaState*)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mu);
      fn(&states[i]);
    }
    acked_cv.notify_all();
  }
  void RequestFull(uint64_t version);
  void WakeAll();
};

class PushClient::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* impl, size_t index, std::string host, std::string port)
      : impl_(impl), index_(index), host_(std::move(host)), port_(std::move(port)),
        strand_(asio::make_strand(impl->io)), socket_(strand_), resolver_(strand_), idle_timer_(strand_),
        backoff_timer_(strand_), deadline_timer_(strand_),
        backoff_ms_(impl->options.backoff_initial_ms) {
    const Labels replica = {{"replica", address()}};
    MetricsRegistry* m = impl->options.metrics;
    version_gauge_ = m->GetGauge("freshet_publisher_replica_version", "Version the replica last acked", replica);
    connected_gauge_ = m->GetGauge("freshet_publisher_replica_connected", "1 while the push connection is up", replica);
    bytes_ = m->GetCounter("freshet_publisher_push_bytes_total", "Frame bytes pushed to the replica", replica);
  }
  std::string address() const { return host_ + ":" + port_; }
  void Start() {
    asio::post(strand_, [self = shared_from_this()] { self->Connect(); });
  }
  void Wake() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->idle_) self->idle_timer_.cancel();
    });
  }

 private:
  void CountSent(FrameType type) {
    impl_->options.metrics
        ->GetCounter("freshet_publisher_frames_sent_total", "Frames pushed, by replica and type",
                     {{"replica", address()}, {"type", FrameTypeName(type)}})
        ->Inc();
  }
  void CountError(const std::string& reason) {
    impl_->options.metrics
        ->GetCounter("freshet_publisher_replica_errors_total", "Push failures, by replica and reason",
                     {{"replica", address()}, {"reason", reason}})
        ->Inc();
  }

  void Connect() {
    const uint64_t gen = ++gen_;
    resolver_.async_resolve(host_, port_, [this, self = shared_from_this(), gen](boost::system::error_code ec,
                                                                                 tcp::resolver::results_type eps) {
      if (gen != gen_) return;
      if (ec) return Fail("resolve", ec.message());
      asio::async_connect(socket_, eps, [this, self, gen](boost::system::error_code ec2, const tcp::endpoint&) {
        if (gen != gen_) return;
        if (ec2) return Fail("connect", ec2.message());
        connected_ = true;
        need_full_ = false;
        connected_gauge_->Set(1);
        impl_->UpdateState(index_, [](ReplicaState* s) {
          s->connected = true;
          s->last_error.clear();
        });
        LOG_INFO("publisher_replica_connected").Kv("replica", address());
        Send(FrameType::kPing, impl_->ping_frame);
      });
    });
  }

  // Closes the connection and reconnects after the backoff (doubling, capped).
  void Fail(const std::string& reason, const std::string& detail) {
    ++gen_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    idle_timer_.cancel();
    deadline_timer_.cancel();
    idle_ = busy_ = connected_ = false;
    connected_gauge_->Set(0);
    CountError(reason);
    impl_->UpdateState(index_, [&](ReplicaState* s) {
      s->connected = false;
      s->last_error = reason + ": " + detail;
    });
    int64_t suppressed = 0;
    if (limiter_.Allow(impl_->clock->NowMs(), &suppressed))
      LOG_WARNING("publisher_replica_failed").Kv("replica", address()).Kv("reason", reason).Kv("detail", detail)
          .Kv("retry_ms", backoff_ms_).Kv("suppressed", suppressed);
    if (impl_->stopped) return;
    const uint64_t gen = gen_;
    backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_ms_ = std::min(backoff_ms_ * 2, impl_->options.backoff_max_ms);
    backoff_timer_.async_wait([this, self = shared_from_this(), gen](boost::system::error_code ec) {
      if (!ec && gen == gen_) Connect();
    });
  }

  // Sends the next frame the replica needs, or idles until woken or the ping is due.
  void Pump() {
    if (!connected_ || busy_ || impl_->stopped) return;
    const std::shared_ptr<const Frames> f = impl_->Current();
    if (f->target == 0 || (acked_ == f->target && !need_full_)) return Idle();
    if (!need_full_) {
      auto d = f->deltas.find(acked_);
      if (d != f->deltas.end()) return Send(FrameType::kDelta, d->second.second);
    }
    if (f->full_frame) return Send(FrameType::kFull, f->full_frame);
    impl_->RequestFull(f->target);  // wakes every session when the frame is ready
    Idle();
  }

  void Idle() {
    idle_ = true;
    const uint64_t gen = gen_;
    idle_timer_.expires_after(std::chrono::milliseconds(impl_->options.ping_interval_ms));
    idle_timer_.async_wait([this, self = shared_from_this(), gen](boost::system::error_code ec) {
      if (gen != gen_ || !idle_) return;
      idle_ = false;
      if (ec == asio::error::operation_aborted) return Pump();  // woken: something new to send
      Send(FrameType::kPing, impl_->ping_frame);
    });
  }

  void Send(FrameType type, Bytes bytes) {
    busy_ = true;
    sent_type_ = type;
    const uint64_t gen = gen_;
    deadline_timer_.expires_after(std::chrono::milliseconds(
        kBaseDeadlineMs + static_cast<int64_t>(static_cast<double>(bytes->size()) / kSlowestBytesPerMs)));
    deadline_timer_.async_wait([this, self = shared_from_this(), gen](boost::system::error_code ec) {
      if (!ec && gen == gen_) Fail("timeout", "no reply within the deadline");
    });
    asio::async_write(socket_, asio::buffer(*bytes),
                      [this, self = shared_from_this(), gen, bytes, type](boost::system::error_code ec, size_t n) {
                        if (gen != gen_) return;
                        if (ec) return Fail("write", ec.message());
                        bytes_->Inc(static_cast<double>(n));
                        CountSent(type);
                        ReadReply();
                      });
  }

  void ReadReply() {
    const uint64_t gen = gen_;
    asio::async_read(socket_, asio::buffer(header_), [this, self = shared_from_this(), gen](boost::system::error_code ec,
                                                                                           size_t) {
      if (gen != gen_) return;
      if (ec) return Fail(ec == asio::error::eof ? "closed" : "read", ec.message());
      FrameError error = FrameError::kNone;
      StatusOr<FrameHeader> h = DecodeFrameHeader(std::string_view(header_.data(), header_.size()), kMaxReplyBytes, &error);
      if (!h.ok()) return Fail(FrameErrorName(error), h.status().message());
      reply_header_ = *h;
      body_.resize(h->payload_bytes + kFrameMacBytes);
      asio::async_read(socket_, asio::buffer(body_), [this, self, gen](boost::system::error_code ec2, size_t) {
        if (gen != gen_) return;
        if (ec2) return Fail("read", ec2.message());
        const std::string_view body(body_);
        const size_t n = reply_header_.payload_bytes;
        FrameError error2 = FrameError::kNone;
        Status ok = VerifyFrame(reply_header_, std::string_view(header_.data(), header_.size()), body.substr(0, n),
                                body.substr(n), impl_->options.hmac_key, &error2);
        if (!ok.ok()) return Fail(FrameErrorName(error2), ok.message());
        OnReply(std::string(body.substr(0, n)));
      });
    });
  }

  void OnReply(const std::string& payload) {
    deadline_timer_.cancel();
    busy_ = false;
    const FrameHeader& h = reply_header_;
    if (h.type == FrameType::kReject) {
      LOG_WARNING("publisher_frame_rejected").Kv("replica", address()).Kv("version", h.base_version)
          .Kv("reason", payload);
      return Fail("rejected", payload);
    }
    if (h.type != FrameType::kAck && h.type != FrameType::kNeedFull)
      return Fail("unexpected_reply", FrameTypeName(h.type));
    backoff_ms_ = impl_->options.backoff_initial_ms;  // a healthy exchange
    if (h.type == FrameType::kNeedFull) {
      need_full_ = true;
    } else if (sent_type_ == FrameType::kFull) {
      need_full_ = false;
    }
    acked_ = h.version;
    version_gauge_->Set(static_cast<double>(acked_));
    const int64_t now = impl_->clock->NowMs();
    impl_->UpdateState(index_, [&](ReplicaState* s) {
      s->acked_version = h.version;
      s->acked_at_ms = now;
    });
    Pump();
  }

  Impl* impl_;
  size_t index_;
  std::string host_, port_;
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer idle_timer_, backoff_timer_, deadline_timer_;
  int64_t backoff_ms_;
  uint64_t gen_ = 0;  // bumps on every (re)connect; stale callbacks compare and return
  bool connected_ = false, busy_ = false, idle_ = false, need_full_ = false;
  FrameType sent_type_ = FrameType::kPing;
  uint64_t acked_ = 0;
  std::array<char, kFrameHeaderBytes> header_{};
  FrameHeader reply_header_;
  std::string body_;
  RateLimiter limiter_{5000};
  Gauge* version_gauge_;
  Gauge* connected_gauge_;
  Counter* bytes_;
};

void PushClient::Impl::WakeAll() {
  for (const auto& s : sessions) s->Wake();
}

void PushClient::Impl::RequestFull(uint64_t version) {
  PushClient::Payload given;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped || full_building == version || frames->target != version) return;
    full_building = version;
    given = frames->full_payload;
  }
  asio::post(*worker, [this, version, given] {
    StatusOr<PushClient::Payload> payload = given ? StatusOr<PushClient::Payload>(given) : options.full_source(version);
    Bytes frame;
    if (payload.ok() && *payload) {
      frame = std::make_shared<const std::string>(
          EncodeFrame({FrameType::kFull, version, 0}, **payload, options.hmac_key));
    } else {
      LOG_ERROR("publisher_full_unavailable").Kv("version", version)
          .Kv("error", payload.ok() ? "no full source" : payload.status().ToString());
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      full_building = 0;
      if (!frame || frames->target != version) return;  // failed (retried at the next ping) or superseded
      auto next = std::make_shared<Frames>(*frames);
      next->full_frame = frame;
      frames = next;
    }
    WakeAll();
  });
}

PushClient::PushClient(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->clock = impl_->options.clock ? impl_->options.clock : Clock::Real();
}

PushClient::~PushClient() { Stop(); }

Status PushClient::Start() {
  if (impl_->started) return FailedPreconditionError("PushClient::Start called twice");
  if (impl_->options.metrics == nullptr) return InvalidArgumentError("PushClient needs a metrics registry");
  if (!impl_->options.replicas.empty() && impl_->options.hmac_key.size() < kMinHmacKeyBytes)
    return InvalidArgumentError("publisher.hmac_key_file: the key must be at least " +
                                std::to_string(kMinHmacKeyBytes) + " bytes (head -c 32 /dev/urandom > FILE)");
  for (size_t i = 0; i < impl_->options.replicas.size(); ++i) {
    const std::string& r = impl_->options.replicas[i];
    const size_t colon = r.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == r.size())
      return InvalidArgumentError("publisher.replicas[" + std::to_string(i) + "]: '" + r + "' is not host:port");
    impl_->sessions.push_back(std::make_shared<Session>(impl_.get(), i, r.substr(0, colon), r.substr(colon + 1)));
    ReplicaState s;
    s.address = r;
    impl_->states.push_back(s);
  }
  impl_->ping_frame =
      std::make_shared<const std::string>(EncodeFrame({FrameType::kPing, 0, 0}, "", impl_->options.hmac_key));
  impl_->started = true;
  impl_->worker = std::make_unique<asio::thread_pool>(1);
  impl_->work.emplace(impl_->io.get_executor());
  for (const auto& s : impl_->sessions) s->Start();
  impl_->io_thread = std::thread([this] { impl_->io.run(); });
  return Status::Ok();
}

void PushClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->started || impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->worker->join();
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->io_thread.joinable()) impl_->io_thread.join();
  impl_->sessions.clear();
}

void PushClient::Publish(Target target) {
  Bytes delta_frame;
  if (target.delta)
    delta_frame = std::make_shared<const std::string>(EncodeFrame(
        {FrameType::kDelta, target.version, target.base_version}, *target.delta, impl_->options.hmac_key));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto next = std::make_shared<Frames>();
    if (delta_frame) {
      if (impl_->frames->target == target.base_version) next->deltas = impl_->frames->deltas;
      next->deltas[target.base_version] = {target.version, delta_frame};
      while (next->deltas.size() > kMaxDeltaChain) next->deltas.erase(next->deltas.begin());
    }
    next->target = target.version;
    next->full_payload = target.full;
    impl_->frames = next;
  }
  impl_->WakeAll();
}

std::vector<PushClient::ReplicaState> PushClient::Replicas() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->states;
}

bool PushClient::WaitForVersion(uint64_t version, int64_t timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->acked_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    for (const ReplicaState& s : impl_->states)
      if (s.acked_version != version) return false;
    return true;
  });
}

}  // namespace freshet::publisher
