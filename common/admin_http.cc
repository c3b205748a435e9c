// AdminServer on Boost.Beast: one I/O thread, asynchronous accept, one request per
// connection at a time (keep-alive supported). Handlers are quick (render text), so
// a single thread is enough and keeps handler code free of locking surprises.
#include "common/admin_http.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "common/json.h"
#include "common/logging.h"
#include "common/tcp_listen.h"

namespace freshet {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void ParseTarget(std::string_view target, HttpRequest* req) {
  size_t q = target.find('?');
  req->path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = UrlDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
    if (!key.empty()) req->query[key] = value;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

}  // namespace

// One accepted connection: read a request, answer it, repeat while keep-alive.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, const AdminServer* server)
      : stream_(std::move(socket)), server_(server) {}

  void Start() { Read(); }

 private:
  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    HttpRequest req;
    req.method = std::string(request_.method_string());
    ParseTarget(std::string_view(request_.target().data(), request_.target().size()), &req);
    for (const auto& field : request_) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(field.value());
    }
    req.body = request_.body();
    HttpResponse out = server_->Dispatch(req);

    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(request_.version());
    res->result(static_cast<http::status>(out.status));
    res->set(http::field::server, "freshet");
    res->set(http::field::content_type, out.content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(request_.keep_alive());
    res->body() = std::move(out.body);
    res->prepare_payload();
    response_ = res;
    http::async_write(stream_, *res, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->response_->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->Read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::shared_ptr<http::response<http::string_body>> response_;
  const AdminServer* server_;
};

struct AdminServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::atomic<bool> running{false};
  int port = 0;

  void Accept(const AdminServer* server) {
    acceptor.async_accept([this, server](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (!ec) std::make_shared<AdminSession>(std::move(socket), server)->Start();
      Accept(server);
    });
  }
};

AdminServer::AdminServer(Options options, MetricsRegistry* metrics)
    : options_(std::move(options)), metrics_(metrics), impl_(std::make_unique<Impl>()) {}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Handle(const std::string& path, HttpHandler handler) {
  handlers_[path] = std::move(handler);
}

void AdminServer::AddReadinessCheck(const std::string& name, std::function<Status()> check) {
  readiness_checks_.emplace_back(name, std::move(check));
}

void AdminServer::SetStatusProvider(std::function<std::string()> provider) {
  status_provider_ = std::move(provider);
}

void AdminServer::SetConfigText(std::string text) { config_text_ = std::move(text); }

Status AdminServer::Start() {
  try {
    impl_->port = ListenTcp(&impl_->acceptor, options_.bind_address, options_.port);
  } catch (const std::exception& e) {
    return UnavailableError("admin server for " + options_.component + " cannot listen on " +
                            options_.bind_address + ":" + std::to_string(options_.port) + ": " +
                            e.what() + " (is another freshet process running? pick another admin port)");
  }
  impl_->Accept(this);
  impl_->running.store(true);
  impl_->thread = std::thread([this] { impl_->io.run(); });
  LOG_INFO("admin_http_started").Kv("component", options_.component).Kv("url", url());
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!impl_ || !impl_->running.exchange(false)) return;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int AdminServer::port() const { return impl_->port; }

std::string AdminServer::url() const {
  return "http://" + options_.bind_address + ":" + std::to_string(impl_->port);
}

HttpResponse AdminServer::RequireToken(const HttpRequest& request) const {
  if (options_.admin_token.empty()) {
    return HttpResponse::Text(403, "mutating admin calls are disabled: set admin.token_file in the config (a file holding the token)\n");
  }
  auto it = request.headers.find("authorization");
  if (it == request.headers.end() || it->second != "Bearer " + options_.admin_token) {
    return HttpResponse::Text(401, "missing or wrong admin token (header: Authorization: Bearer TOKEN)\n");
  }
  return HttpResponse{0, "", ""};
}

HttpResponse AdminServer::Dispatch(const HttpRequest& request) const {
  if (auto it = handlers_.find(request.path); it != handlers_.end()) {
    try {
      return it->second(request);
    } catch (const std::exception& e) {
      LOG_ERROR("admin_handler_failed").Kv("path", request.path).Kv("error", e.what());
      return HttpResponse::Text(500, std::string("internal error: ") + e.what() + "\n");
    }
  }
  if (request.path == "/healthz") return HttpResponse::Text(200, "ok\n");
  if (request.path == "/readyz") {
    std::string failures;
    for (const auto& [name, check] : readiness_checks_) {
      Status s = check();
      if (!s.ok()) failures += name + ": " + s.ToString() + "\n";
    }
    if (failures.empty()) return HttpResponse::Text(200, "ready\n");
    return HttpResponse::Text(503, "not ready\n" + failures);
  }
  if (request.path == "/metrics") {
    HttpResponse r = HttpResponse::Text(200, metrics_ ? metrics_->Render() : "");
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (request.path == "/status") {
    if (status_provider_) return HttpResponse::Json(200, status_provider_());
    JsonWriter w;
    w.BeginObject().Key("component").String(options_.component).EndObject();
    return HttpResponse::Json(200, w.str());
  }
  if (request.path == "/config") return HttpResponse::Text(200, config_text_);
  std::string known = "/healthz /readyz /metrics /status /config";
  for (const auto& [path, h] : handlers_) known += " " + path;
  return HttpResponse::Text(404, "no such admin path: " + request.path + " (known: " + known + ")\n");
}

}  // namespace freshet
