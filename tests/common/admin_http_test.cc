// AdminServer over a real loopback socket: every built-in endpoint, custom handlers,
// readiness turning red, the admin token, 404s; and /metrics passing promtool.
#include "common/admin_http.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "common/http_client.h"

namespace freshet {
namespace {

class AdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminServer::Options opt;
    opt.component = "test";
    opt.admin_token = "s3cret";
    server_ = std::make_unique<AdminServer>(opt, &metrics_);
    server_->AddReadinessCheck("kafka", [this] { return kafka_ok_ ? Status::Ok() : UnavailableError("broker down"); });
    server_->SetConfigText("kafka { partitions: 4 }\n");
    server_->SetStatusProvider([] { return std::string(R"({"component":"test","version":3})"); });
    server_->Handle("/v1/rollback", [this](const HttpRequest& req) {
      HttpResponse denied = server_->RequireToken(req);
      if (denied.status != 0) return denied;
      return HttpResponse::Text(200, "rolled back to " + req.query.at("to") + "\n");
    });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  HttpResult Get(const std::string& target) {
    auto r = HttpGet("127.0.0.1", server_->port(), target);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResult{};
  }

  MetricsRegistry metrics_;
  std::unique_ptr<AdminServer> server_;
  bool kafka_ok_ = true;
};

TEST_F(AdminHttpTest, BuiltInEndpoints) {
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
  HttpResult status = Get("/status");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(status.content_type, "application/json");
  EXPECT_EQ(status.body, R"({"component":"test","version":3})");
  EXPECT_EQ(Get("/config").body, "kafka { partitions: 4 }\n");
  metrics_.GetCounter("freshet_test_requests_total", "Requests")->Inc(5);
  HttpResult m = Get("/metrics");
  EXPECT_NE(m.body.find("freshet_test_requests_total 5"), std::string::npos) << m.body;
}

TEST_F(AdminHttpTest, ReadinessTurnsRedWithTheReason) {
  kafka_ok_ = false;
  HttpResult r = Get("/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("kafka: UNAVAILABLE: broker down"), std::string::npos) << r.body;
}

TEST_F(AdminHttpTest, UnknownPathIs404AndListsKnownPaths) {
  HttpResult r = Get("/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("/metrics"), std::string::npos);
}

TEST_F(AdminHttpTest, MutatingCallNeedsToken) {
  auto no_token = HttpCall("POST", "127.0.0.1", server_->port(), "/v1/rollback?to=7");
  ASSERT_TRUE(no_token.ok());
  EXPECT_EQ(no_token->status, 401);
  auto ok = HttpCall("POST", "127.0.0.1", server_->port(), "/v1/rollback?to=7", "",
                     {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "rolled back to 7\n");
}

TEST_F(AdminHttpTest, SecondServerOnSamePortFailsWithClearError) {
  AdminServer::Options opt;
  opt.port = server_->port();
  AdminServer other(opt, &metrics_);
  Status s = other.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(std::to_string(server_->port())), std::string::npos) << s;
}

TEST(HttpClientTest, UnreachableServerIsUnavailable) {
  // Bind and close to find a port nobody listens on.
  MetricsRegistry m;
  int port;
  {
    AdminServer s({}, &m);
    ASSERT_TRUE(s.Start().ok());
    port = s.port();
  }
  auto r = HttpGet("127.0.0.1", port, "/healthz", 500);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST_F(AdminHttpTest, MetricsPassPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_FAIL() << "promtool not installed: run ops/install-deps.sh (package prometheus)";
  }
  metrics_.GetCounter("freshet_ingest_events_total", "Events consumed", {{"topic", "impressions"}})->Inc(3);
  metrics_.GetGauge("freshet_learner_auc", "Windowed prequential AUC", {{"task", "click"}})->Set(0.71);
  auto* h = metrics_.GetHistogram("freshet_freshness_seconds", "Freshness per stage",
                                  ExponentialBuckets(0.01, 2, 16), {{"stage", "joined"}});
  h->Observe(0.3);
  std::string path = ::testing::TempDir() + "/metrics.txt";
  {
    std::ofstream out(path);
    out << Get("/metrics").body;
  }
  std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[256];
  while (fgets(buf, sizeof(buf), p)) output += buf;
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << output;
}

}  // namespace
}  // namespace freshet
