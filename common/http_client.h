// A blocking HTTP/1.1 client for admin endpoints: used by the `freshet ops` CLI, by
// daemons probing each other's /readyz, and by tests. Not for the data path.
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace freshet {

struct HttpResult {
  int status = 0;
  std::string content_type;
  std::string body;
};

// UNAVAILABLE (naming host:port) when the server cannot be reached within timeout_ms.
StatusOr<HttpResult> HttpCall(const std::string& method, const std::string& host, int port,
                              const std::string& target, const std::string& body = "",
                              const std::map<std::string, std::string>& headers = {},
                              int timeout_ms = 5000);

inline StatusOr<HttpResult> HttpGet(const std::string& host, int port, const std::string& target,
                                    int timeout_ms = 5000) {
  return HttpCall("GET", host, port, target, "", {}, timeout_ms);
}

}  // namespace freshet
