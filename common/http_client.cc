// Blocking HTTP client on Boost.Beast; see http_client.h.
#include "common/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace freshet {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

StatusOr<HttpResult> HttpCall(const std::string& method, const std::string& host, int port,
                              const std::string& target, const std::string& body,
                              const std::map<std::string, std::string>& headers, int timeout_ms) {
  const std::string where = host + ":" + std::to_string(port) + target;
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    auto endpoints = resolver.resolve(host, std::to_string(port));

    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "freshet");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();

    // The deadline covers connect, write and read together. tcp_stream's timer only
    // governs asynchronous operations (a blocking read waits forever on a peer that
    // accepted and never answers), so the exchange runs as one async chain.
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    beast::error_code result;
    const char* stage = "connect";
    stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return void(result = ec);
      stage = "send the request";
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec) return void(result = ec);
        stage = "read the response";
        http::async_read(stream, buffer, res, [&](beast::error_code ec, size_t) { result = ec; });
      });
    });
    io.run();
    if (result) {
      const bool timed_out = result == beast::error::timeout;
      return UnavailableError("cannot reach " + where + ": " + stage + ": " +
                              (timed_out ? "no answer within " + std::to_string(timeout_ms) + " ms" : result.message()) +
                              " (is the daemon running and is this its admin port?)");
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);

    HttpResult out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
  } catch (const std::exception& e) {
    return UnavailableError("cannot reach " + where + ": " + e.what() +
                            " (is the daemon running and is this its admin port?)");
  }
}

}  // namespace freshet
