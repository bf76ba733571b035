#include "federation/request_auth.h"

#include <algorithm>
#include <utility>

#include "config/config.h"
#include "protocol/http_signature.h"

namespace backpack::federation {
namespace {

Status Fault(std::string_view name, StatusCode code, std::string_view message) {
  std::string text(name);
  text += ": ";
  text += message;
  return Status(code, std::move(text));
}

Status Unauth(std::string_view name, std::string_view message) {
  return Fault(name, StatusCode::kUnauthenticated, message);
}

std::string Shown(std::string_view text, size_t max = 100) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (text.size() > max) out += "...";
  return out;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// host[:port] in lower case without the default port of `scheme_https`.
std::string NormalizeHost(std::string_view host, bool https) {
  std::string out;
  for (char c : host) out += Lower(c);
  const std::string_view default_port = https ? ":443" : ":80";
  if (out.ends_with(default_port)) out.resize(out.size() - default_port.size());
  return out;
}

bool IsFaultToken(std::string_view text) {
  return !text.empty() && text.size() <= 32 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || c == '-';
  });
}

}  // namespace

std::string_view RequestAuthFault(const Status& status) {
  if (status.ok()) return "";
  const std::string_view message = status.message();
  const size_t colon = message.find(": ");
  if (colon != std::string_view::npos && IsFaultToken(message.substr(0, colon))) return message.substr(0, colon);
  return "internal";
}

Result<OutboundSignature> SignOutboundRequest(const OutboundRequest& request, std::string_view node_name,
                                              const NodeKey& key, int64_t now, int64_t lifetime_seconds,
                                              std::string_view nonce) {
  OutboundSignature out;
  out.content_digest = protocol::ContentDigest(request.body);
  protocol::RequestComponents components{request.method, request.target_uri, request.authority, out.content_digest};
  protocol::RequestSignatureParams params;
  params.created = now;
  params.expires = now + lifetime_seconds;
  params.nonce = std::string(nonce);
  params.key_id = std::string(node_name) + "#" + key.id;
  auto headers = protocol::SignRequest(components, params, key.key);
  if (!headers.ok()) return headers.status();
  out.signature_input = std::move(headers->signature_input);
  out.signature = std::move(headers->signature);
  return out;
}

RequestVerifier::RequestVerifier(RequestVerifierOptions options, KeysFetcher fetch, PeerBaseUrlLookup base_url_of,
                                 UnixClock clock)
    : options_(std::move(options)),
      fetch_(std::move(fetch)),
      base_url_of_(std::move(base_url_of)),
      clock_(std::move(clock)) {}

std::string RequestVerifier::BaseUrlFor(const std::string& node, const VerifyOptions& options) const {
  if (base_url_of_) {
    std::string known = base_url_of_(node);
    if (auto url = config::ParseBaseUrl(known); url.ok() && url->authority == node) return url->url;
  }
  if (!options.base_url_hint.empty()) {
    if (auto url = config::ParseBaseUrl(options.base_url_hint); url.ok() && url->authority == node) return url->url;
  }
  return "https://" + node;
}

Result<PublishedKey> RequestVerifier::ResolveKey(const std::string& node, const std::string& key_id,
                                                 const VerifyOptions& options) {
  const auto find = [&key_id](const std::vector<PublishedKey>& keys) -> const PublishedKey* {
    for (const PublishedKey& key : keys) {
      if (key.id == key_id) return &key;
    }
    return nullptr;
  };
  const int64_t now = clock_();
  {
    std::lock_guard lock(keys_mu_);
    auto it = keys_.find(node);
    if (it != keys_.end()) {
      CachedKeys& entry = it->second;
      entry.last_used = ++use_counter_;
      const bool fresh = entry.keys && now < entry.fetched_at + options_.keys_ttl_seconds;
      const bool may_fetch = now >= entry.last_attempt + options_.min_refetch_seconds;
      const PublishedKey* key = entry.keys ? find(*entry.keys) : nullptr;
      // A stale document still answers while a new fetch is not allowed.
      if (key != nullptr && (fresh || !may_fetch)) return *key;
      if (!may_fetch) {
        if (entry.keys) {
          return Unauth(kFaultUnknownKey, "the keys of " + node + " do not list " + Shown(key_id));
        }
        return Fault(kFaultKeysUnavailable, StatusCode::kUnavailable,
                     "the keys of " + node + " could not be fetched: " + entry.last_error);
      }
      entry.last_attempt = now;
    } else {
      if (keys_.size() >= std::max<size_t>(1, options_.max_cached_nodes)) {
        auto oldest = std::min_element(keys_.begin(), keys_.end(), [](const auto& a, const auto& b) {
          return a.second.last_used < b.second.last_used;
        });
        keys_.erase(oldest);
      }
      CachedKeys entry;
      entry.last_attempt = now;
      entry.last_used = ++use_counter_;
      keys_.emplace(node, std::move(entry));
    }
  }

  // Fetch without the lock: it blocks on the network.
  const std::string url = BaseUrlFor(node, options) + std::string(kKeysPath);
  Result<std::vector<PublishedKey>> parsed = Status(StatusCode::kInternal, "not fetched");
  auto body = fetch_ ? fetch_(url) : Result<std::string>(Unavailable("no fetcher"));
  if (body.ok()) {
    parsed = ParseKeysDocument(*body, node);
  } else {
    parsed = body.status();
  }

  std::lock_guard lock(keys_mu_);
  CachedKeys& entry = keys_[node];
  entry.last_used = ++use_counter_;
  if (!parsed.ok()) {
    entry.last_error = Shown(parsed.status().message(), 300);
    entry.last_attempt = std::max(entry.last_attempt, now);
    if (entry.keys) {
      if (const PublishedKey* key = find(*entry.keys)) return *key;  // keep using what we had
      return Unauth(kFaultUnknownKey, "the keys of " + node + " do not list " + Shown(key_id));
    }
    return Fault(kFaultKeysUnavailable, StatusCode::kUnavailable,
                 "the keys of " + node + " could not be fetched from " + Shown(url) + ": " + entry.last_error);
  }
  entry.keys = std::move(*parsed);
  entry.fetched_at = now;
  entry.last_error.clear();
  if (const PublishedKey* key = find(*entry.keys)) return *key;
  return Unauth(kFaultUnknownKey, "the keys of " + node + " do not list " + Shown(key_id));
}

Status RequestVerifier::RememberNonce(const std::string& key_id, const std::string& nonce, int64_t keep_until,
                                      int64_t now) {
  std::string key = key_id;
  key += '\n';
  key += nonce;
  std::lock_guard lock(nonces_mu_);
  // Forget what can no longer be replayed: its signature has expired.
  while (!nonce_expiry_.empty() && nonce_expiry_.begin()->first < now) {
    nonces_.erase(nonce_expiry_.begin()->second);
    nonce_expiry_.erase(nonce_expiry_.begin());
  }
  if (nonces_.count(key) > 0) {
    return Unauth(kFaultReplayed, "the nonce of this " + Shown(key_id) + " signature was used before");
  }
  // Full of live entries: refusing is safe, forgetting one is not.
  if (nonces_.size() >= std::max<size_t>(1, options_.max_nonces)) {
    return Fault(kFaultBusy, StatusCode::kUnavailable, "too many signed requests in flight; retry later");
  }
  nonces_.emplace(key, keep_until);
  nonce_expiry_.emplace(keep_until, std::move(key));
  return Status::Ok();
}

Result<VerifiedRequest> RequestVerifier::Verify(const InboundRequest& request, const VerifyOptions& options) {
  if (request.signature_input.empty() && request.signature.empty()) {
    return Unauth(kFaultUnsigned, "this endpoint needs a signed request (Signature-Input and Signature)");
  }
  const bool https = request.target_uri.starts_with("https://");
  const std::string authority = NormalizeHost(request.host, https);
  if (authority != options_.node_name) {
    return Unauth(kFaultWrongAuthority, "the request is for " + Shown(authority) + ", but this node is " +
                                            options_.node_name);
  }

  protocol::RequestComponents components{std::string(request.method), std::string(request.target_uri),
                                         std::string(request.host), std::string(request.content_digest)};
  auto parsed = protocol::ParseRequestSignature(request.signature_input, request.signature, components);
  if (!parsed.ok()) return parsed.status();

  const std::string& key_id = parsed->params.key_id;
  const size_t hash = key_id.rfind('#');
  const std::string node = hash == std::string::npos ? std::string() : key_id.substr(0, hash);
  if (hash == std::string::npos || hash + 1 == key_id.size() || !config::IsNodeName(node)) {
    return Unauth(kFaultUnknownKey, "the keyid \"" + Shown(key_id) + "\" is not \"<node>#<key id>\"");
  }
  if (options.admit) BP_RETURN_IF_ERROR(options.admit(node));

  auto key = ResolveKey(node, key_id, options);
  if (!key.ok()) return key.status();
  if (key->retired && parsed->params.created >= *key->retired) {
    return Unauth(kFaultRetiredKey, Shown(key_id) + " was retired at " + std::to_string(*key->retired) +
                                        "; the signature was created at " + std::to_string(parsed->params.created));
  }

  const int64_t now = clock_();
  protocol::RequestSignaturePolicy policy;
  policy.now = now;
  policy.max_skew_seconds = options_.max_skew_seconds;
  policy.max_lifetime_seconds = options_.max_lifetime_seconds;
  BP_RETURN_IF_ERROR(protocol::VerifyRequestSignature(*parsed, key->key, policy));
  BP_RETURN_IF_ERROR(protocol::CheckContentDigest(request.content_digest, request.body));
  // Kept past expires by the skew, in case our clock steps back.
  BP_RETURN_IF_ERROR(
      RememberNonce(key_id, parsed->params.nonce, parsed->params.expires + options_.max_skew_seconds, now));

  VerifiedRequest out;
  out.node = node;
  out.key_id = key_id;
  out.created = parsed->params.created;
  out.expires = parsed->params.expires;
  return out;
}

void RequestVerifier::Forget(std::string_view node) {
  std::lock_guard lock(keys_mu_);
  keys_.erase(std::string(node));
}

}  // namespace backpack::federation
