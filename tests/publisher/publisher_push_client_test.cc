// PushClient against fake replicas on loopback sockets (the real frame codec, a
// scripted replica behind it): DELTA only onto the acked base, FULL otherwise and on
// NEED_FULL, reconnect with backoff after a replica comes back, and a silent or dead
// replica never holding up a healthy one. The real `freshet serve` processes are in
// publisher_push_test.cc.
#include "publisher/push_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "publisher/frame.h"

namespace freshet::publisher {
namespace {

const std::string kKey(32, 'k');

bool ReadAll(int fd, char* buf, size_t n) {
  while (n > 0) {
    const ssize_t r = read(fd, buf, n);
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A replica that serves one connection at a time and records what it received.
class FakeReplica {
 public:
  enum class Mode { kNormal, kSilent, kForgetful };  // forgetful: ACKs PINGs with v1, NEED_FULL to deltas
  explicit FakeReplica(Mode mode, int port = 0) : mode_(mode) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    listen(listen_fd_, 4);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeReplica() { Close(); }
  void Close() {
    if (listen_fd_ < 0) return;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    if (int fd = conn_fd_.exchange(-1); fd >= 0) shutdown(fd, SHUT_RDWR);
    thread_.join();
    listen_fd_ = -1;
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // "FULL1 DELTA2 ...": every non-PING frame received.
  std::string received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  void Serve() {
    while (true) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      conn_fd_ = fd;
      Connection(fd);
      conn_fd_ = -1;
      close(fd);
    }
  }
  void Connection(int fd) {
    while (true) {
      std::string header(kFrameHeaderBytes, '\0');
      if (!ReadAll(fd, header.data(), header.size())) return;
      auto h = DecodeFrameHeader(header, 1 << 30);
      if (!h.ok()) return;
      std::string body(h->payload_bytes + kFrameMacBytes, '\0');
      if (!ReadAll(fd, body.data(), body.size())) return;
      if (!VerifyFrame(*h, header, std::string_view(body).substr(0, h->payload_bytes),
                       std::string_view(body).substr(h->payload_bytes), kKey)
               .ok())
        return;
      if (mode_ == Mode::kSilent) continue;
      FrameType reply = FrameType::kAck;
      if (h->type == FrameType::kPing) {
        if (mode_ == Mode::kForgetful && served_ == 0) served_ = 1;
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        received_ += std::string(received_.empty() ? "" : " ") + FrameTypeName(h->type) + std::to_string(h->version);
        if (h->type == FrameType::kFull) served_ = h->version;
        else if (mode_ == Mode::kForgetful || h->base_version != served_) reply = FrameType::kNeedFull;
        else served_ = h->version;
      }
      const std::string out = EncodeFrame({reply, served_, h->version}, "", kKey);
      if (write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return;
    }
  }

  Mode mode_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<int> conn_fd_{-1};
  uint64_t served_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::string received_;
};

PushClient::Payload Bytes(const std::string& s) { return std::make_shared<const std::string>(s); }

PushClient::Options Opts(MetricsRegistry* m, std::vector<std::string> replicas) {
  PushClient::Options o;
  o.replicas = std::move(replicas);
  o.hmac_key = kKey;
  o.backoff_initial_ms = 20;
  o.backoff_max_ms = 100;
  o.ping_interval_ms = 50;
  o.metrics = m;
  o.full_source = [](uint64_t v) -> StatusOr<PushClient::Payload> { return Bytes("materialized-full-" + std::to_string(v)); };
  return o;
}

TEST(PushClientTest, DeltaOnlyOntoTheAckedBaseFullOtherwise) {
  FakeReplica replica(FakeReplica::Mode::kNormal);
  MetricsRegistry m;
  PushClient client(Opts(&m, {replica.address()}));
  ASSERT_TRUE(client.Start().ok());
  client.Publish(PushClient::Target::Full(1, Bytes("full-1")));
  ASSERT_TRUE(client.WaitForVersion(1, 10000));
  client.Publish(PushClient::Target::Delta(2, 1, Bytes("delta-2")));
  ASSERT_TRUE(client.WaitForVersion(2, 10000));
  client.Publish(PushClient::Target::Delta(4, 3, Bytes("delta-4")));  // v3 never reached it
  ASSERT_TRUE(client.WaitForVersion(4, 10000));
  client.Publish(PushClient::Target::Full(2, Bytes("rollback-2")));  // a rollback: back to an older version
  ASSERT_TRUE(client.WaitForVersion(2, 10000));
  EXPECT_EQ(replica.received(), "FULL1 DELTA2 FULL4 FULL2");
  EXPECT_EQ(m.GetGauge("freshet_publisher_replica_version", "", {{"replica", replica.address()}})->Value(), 2);
}

TEST(PushClientTest, NeedFullIsAnsweredWithAFull) {
  FakeReplica replica(FakeReplica::Mode::kForgetful);  // claims v1, refuses deltas
  MetricsRegistry m;
  PushClient client(Opts(&m, {replica.address()}));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.WaitForVersion(1, 10000));  // the PING's ACK
  client.Publish(PushClient::Target::Delta(2, 1, Bytes("delta-2")));
  ASSERT_TRUE(client.WaitForVersion(2, 10000));
  EXPECT_EQ(replica.received(), "DELTA2 FULL2");
}

TEST(PushClientTest, ASilentOrDeadReplicaDoesNotHoldUpAHealthyOne) {
  FakeReplica healthy(FakeReplica::Mode::kNormal), silent(FakeReplica::Mode::kSilent);
  int dead_port = 0;
  { FakeReplica gone(FakeReplica::Mode::kNormal); dead_port = gone.port(); }  // nothing listens there now
  const std::string dead = "127.0.0.1:" + std::to_string(dead_port);
  MetricsRegistry m;
  PushClient client(Opts(&m, {silent.address(), dead, healthy.address()}));
  ASSERT_TRUE(client.Start().ok());
  for (uint64_t v = 1; v <= 5; ++v) {
    client.Publish(v == 1 ? PushClient::Target::Full(1, Bytes("f"))
                          : PushClient::Target::Delta(v, v - 1, Bytes("d")));
    bool acked = false;
    for (int i = 0; i < 500 && !acked; ++i) {
      acked = client.Replicas()[2].acked_version == v;
      if (!acked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(acked) << "v" << v;
  }
  EXPECT_EQ(healthy.received(), "FULL1 DELTA2 DELTA3 DELTA4 DELTA5");
  const auto states = client.Replicas();
  EXPECT_EQ(states[0].acked_version, 0u);
  EXPECT_FALSE(states[1].connected);
  // The dead one is retried with backoff, not given up on. The five versions can be
  // acked before the first retry is due, so wait for it (up to 5 s).
  Counter* refused = m.GetCounter("freshet_publisher_replica_errors_total", "", {{"replica", dead}, {"reason", "connect"}});
  for (int i = 0; i < 500 && refused->Value() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(refused->Value(), 2);
}

TEST(PushClientTest, AReplicaThatComesBackIsReconnectedAndCaughtUp) {
  auto replica = std::make_unique<FakeReplica>(FakeReplica::Mode::kNormal);
  const int port = replica->port();
  MetricsRegistry m;
  PushClient client(Opts(&m, {replica->address()}));
  ASSERT_TRUE(client.Start().ok());
  client.Publish(PushClient::Target::Full(1, Bytes("f1")));
  ASSERT_TRUE(client.WaitForVersion(1, 10000));
  replica->Close();
  client.Publish(PushClient::Target::Delta(2, 1, Bytes("d2")));
  EXPECT_FALSE(client.WaitForVersion(2, 300));
  replica = std::make_unique<FakeReplica>(FakeReplica::Mode::kNormal, port);  // empty again
  ASSERT_TRUE(client.WaitForVersion(2, 10000));
  EXPECT_EQ(replica->received(), "FULL2");  // acked 0 ≠ the delta's base: a FULL, made by full_source
  EXPECT_TRUE(client.Replicas()[0].connected);
}

}  // namespace
}  // namespace freshet::publisher
