// The TLS client settings every outbound call of the node uses (the
// guarded fetcher, signed requests to peers): TLS 1.2 or newer (RFC 8996,
// RFC 9325), no compression, the system's CA certificates plus the
// operator's `fetch.ca_file`. Certificate and host name checks are set per
// stream by the caller.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include "base/status.h"

namespace backpack {

// Makes `tls` a client context with those settings. `who` names the caller
// in error messages ("fetch", "peer client"). Internal when OpenSSL refuses
// a setting; FailedPrecondition when a CA file cannot be loaded.
inline Status SetUpClientTls(std::optional<boost::asio::ssl::context>& tls, const std::string& ca_file,
                             std::string_view who) {
  namespace ssl = boost::asio::ssl;
  try {
    tls.emplace(ssl::context::tls_client);
  } catch (const std::exception& e) {
    return Internal(fmt::format("{}: cannot set up TLS: {}", who, e.what()));
  }
  if (SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION) != 1) {
    return Internal(fmt::format("{}: cannot set the minimum TLS version", who));
  }
  boost::system::error_code ec;
  tls->set_options(ssl::context::no_compression, ec);
  if (ec) return Internal(fmt::format("{}: cannot set TLS options: {}", who, ec.message()));
  tls->set_default_verify_paths(ec);
  if (ec) return FailedPrecondition(fmt::format("{}: cannot load the system CA certificates: {}", who, ec.message()));
  if (!ca_file.empty()) {
    tls->load_verify_file(ca_file, ec);
    if (ec) return FailedPrecondition(fmt::format("{}: cannot load fetch.ca_file {}: {}", who, ca_file, ec.message()));
  }
  return Status::Ok();
}

}  // namespace backpack
