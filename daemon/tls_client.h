// The TLS client settings every outbound call of the node uses (the
// guarded fetcher, signed requests to peers): TLS 1.2 or newer (RFC 8996,
// RFC 9325), no compression, the system's CA certificates plus the
// operator's `fetch.ca_file`. Certificate and host name checks are set per
// stream by the caller.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <openssl/x509.h>
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

// Prepares one TLS stream to `host`: the peer's certificate must chain to a
// trusted CA and be valid for `host` (DNS name or IP address); a refusal's
// reason is written to `*certificate_error` (which must outlive the
// handshake). SNI names the site, never for an IP literal (RFC 6066 3).
template <class Stream>
Status SetUpClientTlsStream(Stream& stream, const std::string& host, std::string* certificate_error,
                            std::string_view who) {
  namespace ssl = boost::asio::ssl;
  boost::system::error_code ec;
  stream.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Internal(fmt::format("{}: cannot set TLS verify mode: {}", who, ec.message()));
  stream.set_verify_callback(
      [certificate_error, host, check = ssl::host_name_verification(host)](bool preverified,
                                                                           ssl::verify_context& context) {
        if (!preverified) {
          if (certificate_error->empty()) {
            *certificate_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.native_handle()));
          }
          return false;
        }
        if (!check(preverified, context)) {
          if (certificate_error->empty()) *certificate_error = "the certificate is not valid for " + host;
          return false;
        }
        return true;
      },
      ec);
  if (ec) return Internal(fmt::format("{}: cannot set TLS verify callback: {}", who, ec.message()));
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (not_ip && SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()) != 1) {
    return Internal(fmt::format("{}: cannot set the TLS server name", who));
  }
  return Status::Ok();
}

}  // namespace backpack
