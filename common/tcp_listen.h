// ListenTcp: opens a Boost.Asio acceptor the way every Freshet server listens (admin
// HTTP, the serving replicas' push listener): close-on-exec, address reuse, bound and
// listening. Returns the bound port (useful when `port` is 0).
//
//   tcp::acceptor acceptor{io};
//   int port = ListenTcp(&acceptor, "127.0.0.1", 0);  // throws boost::system::system_error
//
// Thread-safety: call before the acceptor is used by any other thread.
#pragma once

#include <fcntl.h>

#include <boost/asio.hpp>
#include <string>

namespace freshet {

inline int ListenTcp(boost::asio::ip::tcp::acceptor* acceptor, const std::string& address, int port) {
  boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(address), static_cast<unsigned short>(port));
  acceptor->open(endpoint.protocol());
  // Child processes (serving replicas, shell commands) must not inherit the listening
  // socket: they would keep the port accepting connections after this server stops.
  ::fcntl(acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  acceptor->set_option(boost::asio::socket_base::reuse_address(true));
  acceptor->bind(endpoint);
  acceptor->listen();
  return acceptor->local_endpoint().port();
}

}  // namespace freshet
