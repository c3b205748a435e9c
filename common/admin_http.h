// AdminServer: the small HTTP server every Freshet daemon runs for operators and
// tools. Built in: /healthz (process is alive), /readyz (every registered readiness
// check passes; 503 with the failing ones otherwise), /metrics (Prometheus text),
// /status (JSON from the component), /config (effective config). Components add
// their own paths with Handle(). Binds 127.0.0.1 unless configured otherwise; a
// mutating handler should check the admin token with RequireToken().
//
// Thread-safety: register handlers and checks before Start(); after that the server
// calls them from its own I/O thread, one request at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace freshet {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::map<std::string, std::string> query;  // decoded ?a=b&c=d
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class AdminServer {
 public:
  struct Options {
    std::string component = "freshet";  // shown in /status and logs
    std::string bind_address = "127.0.0.1";
    int port = 0;                 // 0 = pick a free port (tests)
    std::string admin_token;      // required by RequireToken(); empty = mutating calls refused
  };

  AdminServer(Options options, MetricsRegistry* metrics);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Serves `path` (exact match) with `handler`.
  void Handle(const std::string& path, HttpHandler handler);
  // /readyz is green only while every check returns OK.
  void AddReadinessCheck(const std::string& name, std::function<Status()> check);
  // /status body (JSON object); default: {"component": ...}.
  void SetStatusProvider(std::function<std::string()> provider);
  // /config body.
  void SetConfigText(std::string text);

  // Binds and starts serving on a background thread. Fails (UNAVAILABLE, naming the
  // address) if the port is taken.
  Status Start();
  // Stops accepting and joins the I/O thread. Idempotent; called by the destructor.
  void Stop();
  // The bound port (useful with port 0). REQUIRES: Start() succeeded.
  int port() const;
  std::string url() const;

  // Returns a 401/403 response when the request lacks the admin token (header
  // "Authorization: Bearer TOKEN"), or nullptr-equivalent (status 0) when it is fine.
  HttpResponse RequireToken(const HttpRequest& request) const;

  // Runs the handler for a request without the network (unit tests, CLI dry runs).
  HttpResponse Dispatch(const HttpRequest& request) const;

 private:
  struct Impl;
  Options options_;
  MetricsRegistry* metrics_;
  std::map<std::string, HttpHandler> handlers_;
  std::vector<std::pair<std::string, std::function<Status()>>> readiness_checks_;
  std::function<std::string()> status_provider_;
  std::string config_text_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshet
