#include "daemon/federation_api.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/api_util.h"
#include "daemon/fetcher.h"
#include "daemon/log.h"
#include "daemon/peer_client.h"
#include "daemon/rate_limiter.h"
#include "federation/node_keys.h"
#include "protocol/encoding.h"
#include "storage/store.h"

namespace backpack {

namespace bhttp = http::bhttp;
using nlohmann::json;

namespace {

constexpr std::string_view kPeerPath = "/_federation/v1/peer";
constexpr size_t kMaxKeysDocumentBytes = 64 * 1024;
constexpr std::string_view kAdminTokenFile = "admin-token";

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7).
std::string HttpDate(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  const size_t n = std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buffer, n);
}

bool IsLoopback(const std::string& address) {
  boost::system::error_code ec;
  const auto parsed = boost::asio::ip::make_address(address, ec);
  if (ec) return false;
  if (parsed.is_loopback()) return true;
  if (parsed.is_v6() && parsed.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, parsed.to_v6()).is_loopback();
  }
  return false;
}

// Writes `content` to `path` (0600): temporary file, fsync, rename.
Status WriteSecretFile(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash; absent is fine
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Unavailable(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  size_t written = 0;
  bool ok = true;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Unavailable(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  return Status::Ok();
}

// The one header field `name`; "" when absent. `repeated` is set when the
// request carries it more than once.
std::string_view OneField(const http::Request& request, std::string_view name, bool* repeated) {
  const auto range = request.equal_range(name);
  if (range.first == range.second) return {};
  if (std::next(range.first) != range.second) *repeated = true;
  return range.first->value();
}

http::Response JsonObject(const json& body) { return http::JsonResponse(bhttp::status::ok, body.dump()); }

}  // namespace

struct FederationService::Impl {
  Impl(const config::Config& config_in, std::string public_url_in, federation::NodeDescription description_in,
       storage::Store& store_in, Fetcher& fetcher_in, UnixClock clock_in, RandomBytes random_in, Post post_in)
      : federation(config_in.federation),
        fetch(config_in.fetch),
        admin(config_in.admin),
        data_dir(config_in.storage.data_dir),
        public_url(std::move(public_url_in)),
        description(std::move(description_in)),
        store(store_in),
        fetcher(fetcher_in),
        clock(std::move(clock_in)),
        random(std::move(random_in)),
        post(std::move(post_in)),
        handshake_limiter(config_in.federation.handshakes_per_minute, std::chrono::minutes(1)) {}

  const config::FederationConfig federation;
  const config::FetchConfig fetch;
  const config::AdminConfig admin;
  const std::string data_dir;
  const std::string public_url;
  std::string base_url;  // public_url normalised: what peers are told
  std::string node_name;
  const std::vector<std::string> capabilities{std::string(federation::kPeeringCapability)};

  mutable std::mutex description_mu;
  federation::NodeDescription description;
  std::string node_document;

  storage::Store& store;
  Fetcher& fetcher;
  const UnixClock clock;
  const RandomBytes random;
  const Post post;

  std::optional<federation::NodeKeys> keys;
  std::string keys_document;
  std::unique_ptr<PeerClient> client;
  std::unique_ptr<federation::RequestVerifier> verifier;
  std::unique_ptr<federation::PeerTable> peers;
  RateLimiter handshake_limiter;
  std::string admin_token_sha256;

  std::mutex in_flight_mu;
  std::set<std::string> in_flight;  // peers with a handshake running

  // --- Node description ------------------------------------------------------

  void RefreshDescription() {
    auto records = peers->List();
    if (!records.ok()) {
      log::Warn("federation", "cannot list peers for the node description", {{"error", records.status().ToString()}});
      return;
    }
    std::vector<federation::NodeDescription::Peer> active;
    for (const federation::PeerRecord& record : *records) {
      if (record.state == federation::PeerState::kActive) {
        active.push_back({record.name, record.base_url, record.capabilities});
      }
    }
    std::lock_guard lock(description_mu);
    description.peers = std::move(active);
    node_document = federation::ToJson(description);
  }

  // --- Signed requests in ----------------------------------------------------

  // Builds the verifier's view of the request, or the answer to a request
  // that repeats a signature field.
  Result<federation::VerifiedRequest> Verify(const http::Context& ctx, const federation::VerifyOptions& options) {
    const http::Request& request = ctx.request;
    bool repeated = false;
    const std::string_view host = OneField(request, "Host", &repeated);
    const std::string_view input = OneField(request, "Signature-Input", &repeated);
    const std::string_view signature = OneField(request, "Signature", &repeated);
    const std::string_view digest = OneField(request, "Content-Digest", &repeated);
    if (repeated) {
      return InvalidArgument("malformed: Host, Signature-Input, Signature and Content-Digest may appear once each");
    }
    const std::string scheme = public_url.starts_with("https://") ? "https" : "http";
    const std::string target_uri = scheme + "://" + std::string(host) + std::string(request.target());
    federation::InboundRequest inbound{request.method_string(), target_uri, host, input, signature, digest,
                                       request.body()};
    return verifier->Verify(inbound, options);
  }

  Status AdmitUnblocked(std::string_view node) {
    if (peers->BlockedByConfig(node)) return PermissionDenied("blocked: the node " + std::string(node) + " is blocked here");
    auto record = peers->Get(node);
    if (!record.ok()) return record.status();
    if (record->has_value() && (*record)->state == federation::PeerState::kBlocked) {
      return PermissionDenied("blocked: the node " + std::string(node) + " is blocked here");
    }
    return Status::Ok();
  }

  Status AdmitActive(std::string_view node) {
    BP_RETURN_IF_ERROR(AdmitUnblocked(node));
    auto record = peers->Get(node);
    if (!record.ok()) return record.status();
    if (!record->has_value() || (*record)->state != federation::PeerState::kActive) {
      return PermissionDenied("not-active: " + std::string(node) + " is not an active peer of this node");
    }
    return Status::Ok();
  }

  // The answer to a refused signed request: the fault name as the error code.
  http::Response Refusal(const Status& status, const http::Context& ctx) {
    bhttp::status code = bhttp::status::internal_server_error;
    switch (status.code()) {
      case StatusCode::kInvalidArgument: code = bhttp::status::bad_request; break;
      case StatusCode::kUnauthenticated: code = bhttp::status::unauthorized; break;
      case StatusCode::kPermissionDenied: code = bhttp::status::forbidden; break;
      case StatusCode::kResourceExhausted: code = bhttp::status::too_many_requests; break;
      case StatusCode::kUnavailable: code = bhttp::status::service_unavailable; break;
      default: return http::StatusResponse(status, ctx.request_id);  // the detail goes to the log only
    }
    const std::string_view fault = federation::RequestAuthFault(status);
    std::string_view message = status.message();
    if (message.starts_with(fault) && message.substr(fault.size()).starts_with(": ")) {
      message.remove_prefix(fault.size() + 2);
    }
    http::Response res = http::ErrorResponse(code, fault, message);
    if (fault == "future" || fault == "stale") res.set(bhttp::field::date, HttpDate(clock()));
    if (code == bhttp::status::service_unavailable || code == bhttp::status::too_many_requests) {
      res.set(bhttp::field::retry_after, "30");
    }
    log::Info("federation", "signed request refused",
              {{"req", ctx.request_id}, {"remote", ctx.remote_address}, {"fault", fault}, {"error", status.message()}});
    return res;
  }

  // --- Handshakes ----------------------------------------------------------

  federation::Handshake Ours() const {
    federation::Handshake h;
    h.node = node_name;
    h.base_url = base_url;
    h.capabilities = capabilities;
    return h;
  }

  // True when this call may run the handshake with `name` (none running).
  bool Claim(const std::string& name) {
    std::lock_guard lock(in_flight_mu);
    return in_flight.insert(name).second;
  }
  void Release(const std::string& name) {
    std::lock_guard lock(in_flight_mu);
    in_flight.erase(name);
  }

  Result<federation::PeerRecord> HandshakeWith(const federation::PeerRecord& peer) {
    const std::string url = peer.base_url + std::string(kPeerPath);
    auto answer = client->Post(url, federation::ToJson(Ours()));
    const int64_t now = clock();
    Result<federation::PeerRecord> result = Internal("no handshake");
    if (!answer.ok()) {
      result = peers->RecordFailure(peer.name, answer.status().message(), "", now);
    } else if (answer->status == 200) {
      auto parsed = federation::ParseHandshake(answer->body, true);
      if (!parsed.ok()) {
        result = peers->RecordFailure(peer.name, "the answer is unusable: " + parsed.status().message(), "", now);
      } else if (parsed->node != peer.name) {
        result = peers->RecordFailure(peer.name, "the answer comes from " + parsed->node + ", not " + peer.name, "",
                                      now);
      } else {
        result = peers->OnAnswer(peer.name, *parsed, now);
      }
    } else {
      std::string code;
      const json body = json::parse(answer->body, nullptr, false);
      if (body.is_object() && body.contains("error") && body["error"].is_object()) {
        code = body["error"].value("code", "") + ": " + body["error"].value("message", "");
      }
      const std::string error = fmt::format("{} answered {} {}", url, answer->status, code.substr(0, 500));
      result = peers->RecordFailure(peer.name, error, answer->status == 403 ? "blocked" : "", now);
    }
    if (result.ok()) {
      log::Info("federation", "handshake",
                {{"peer", peer.name},
                 {"state", federation::PeerStateName(result->state)},
                 {"remote_state", result->remote_state},
                 {"error", result->last_error}});
      RefreshDescription();
    }
    return result;
  }

  // Handshakes now, unless one with the same peer is already running.
  Result<federation::PeerRecord> HandshakeIfIdle(const federation::PeerRecord& peer) {
    if (!peer.approved || peer.base_url.empty() || peer.state == federation::PeerState::kBlocked) return peer;
    if (!Claim(peer.name)) return peer;
    auto result = HandshakeWith(peer);
    Release(peer.name);
    return result;
  }

  // --- Handlers --------------------------------------------------------------

  http::Response OnHandshake(http::Context& ctx) {
    std::chrono::seconds retry_after{};
    if (!handshake_limiter.Allow(ctx.remote_address, &retry_after)) return api::TooMany(retry_after, "handshakes");
    if (ctx.request.body().size() > federation::kMaxHandshakeBytes) {
      return http::ErrorResponse(bhttp::status::payload_too_large, "too_large",
                                 fmt::format("a handshake is at most {} bytes", federation::kMaxHandshakeBytes));
    }
    auto handshake = federation::ParseHandshake(ctx.request.body(), false);
    if (!handshake.ok()) return http::StatusResponse(handshake.status(), ctx.request_id);

    federation::VerifyOptions options;
    options.base_url_hint = handshake->base_url;
    options.admit = [this](std::string_view node) { return AdmitUnblocked(node); };
    auto verified = Verify(ctx, options);
    if (!verified.ok()) return Refusal(verified.status(), ctx);
    if (verified->node != handshake->node) {
      return http::ErrorResponse(bhttp::status::bad_request, "invalid_argument",
                                 "the handshake names " + handshake->node + " but is signed by " + verified->node);
    }
    auto record = peers->OnHandshake(*handshake, clock());
    if (!record.ok()) {
      if (record.status().code() == StatusCode::kPermissionDenied) return Refusal(record.status(), ctx);
      return http::StatusResponse(record.status(), ctx.request_id);
    }
    log::Info("federation", "handshake received",
              {{"req", ctx.request_id}, {"peer", record->name}, {"state", federation::PeerStateName(record->state)}});
    RefreshDescription();
    federation::Handshake answer = Ours();
    answer.state = record->state == federation::PeerState::kActive ? "active" : "pending";
    return http::JsonResponse(bhttp::status::ok, federation::ToJson(answer));
  }

  // Runs fn(ctx) for the operator only: a loopback client (unless
  // admin.allow_remote) with the token of <data_dir>/admin-token.
  template <class Fn>
  http::Handler Admin(Fn fn) {
    return [this, fn = std::move(fn)](http::Context& ctx) -> http::Response {
      if (!admin.allow_remote && !IsLoopback(ctx.remote_address)) {
        return http::ErrorResponse(bhttp::status::forbidden, "permission_denied",
                                   "the admin API answers loopback clients only (admin.allow_remote)");
      }
      const std::string token = api::BearerToken(ctx);
      if (token.empty() || !protocol::ConstantTimeEquals(protocol::Sha256(token), admin_token_sha256)) {
        http::Response res = http::ErrorResponse(bhttp::status::unauthorized, "unauthenticated",
                                                 "the admin API needs the token of <data_dir>/admin-token");
        res.set(bhttp::field::www_authenticate, "Bearer");
        return res;
      }
      return fn(ctx);
    };
  }

  http::Response PeerAnswerOf(const Result<federation::PeerRecord>& record, const http::Context& ctx) {
    if (!record.ok()) return http::StatusResponse(record.status(), ctx.request_id);
    RefreshDescription();
    return JsonObject(federation::ToJson(*record));
  }
};

FederationService::FederationService(const config::Config& config, std::string public_url,
                                     federation::NodeDescription description, storage::Store& store, Fetcher& fetcher,
                                     UnixClock clock, RandomBytes random, Post post)
    : impl_(std::make_unique<Impl>(config, std::move(public_url), std::move(description), store, fetcher,
                                   std::move(clock), std::move(random), std::move(post))) {}

FederationService::~FederationService() = default;

const std::string& FederationService::node_name() const { return impl_->node_name; }
federation::PeerTable& FederationService::peers() { return *impl_->peers; }
PeerClient& FederationService::client() { return *impl_->client; }
federation::RequestVerifier& FederationService::verifier() { return *impl_->verifier; }

std::string FederationService::NodeDocument() const {
  std::lock_guard lock(impl_->description_mu);
  return impl_->node_document;
}

Status FederationService::Start() {
  Impl& d = *impl_;
  auto name = config::FederationNodeName(d.federation, d.public_url);
  if (!name.ok()) return name.status();
  d.node_name = *name;
  d.base_url = config::ParseBaseUrl(d.public_url)->url;  // FederationNodeName parsed it

  const int64_t now = d.clock();
  auto keys = federation::NodeKeys::LoadOrCreate(federation::KeysDirectory(d.data_dir), now);
  if (!keys.ok()) return keys.status();
  d.keys.emplace(std::move(*keys));
  d.keys_document = d.keys->KeysDocument(d.node_name);

  d.client = std::make_unique<PeerClient>(d.fetch, PeerClient::Identity{d.node_name, d.keys->current()},
                                          d.federation.signature_lifetime_seconds, AddressPolicy(), d.clock, d.random);
  BP_RETURN_IF_ERROR(d.client->init_status());

  federation::PeerPolicy policy;
  policy.self = d.node_name;
  policy.open = d.federation.mode == "open";
  policy.blocked = d.federation.blocked;
  policy.retry_min_seconds = d.federation.retry_min_seconds;
  policy.retry_max_seconds = d.federation.retry_max_seconds;
  policy.breaker_failures = d.federation.breaker_failures;
  d.peers = std::make_unique<federation::PeerTable>(d.store, policy);
  BP_RETURN_IF_ERROR(d.peers->ApplyConfig(d.federation.peers, now));

  federation::RequestVerifierOptions options;
  options.node_name = d.node_name;
  options.max_skew_seconds = d.federation.max_clock_skew_seconds;
  options.max_lifetime_seconds = d.federation.signature_lifetime_seconds;
  d.verifier = std::make_unique<federation::RequestVerifier>(
      options,
      [&fetcher = d.fetcher](const std::string& url) -> Result<std::string> {
        FetchRequest request;
        request.url = url;
        request.accept = "application/json";
        request.max_bytes = kMaxKeysDocumentBytes;
        auto fetched = fetcher.Fetch(request);
        if (!fetched.ok()) return fetched.status();
        if (fetched->status != 200) return Unavailable(fmt::format("{} answered {}", url, fetched->status));
        return std::move(fetched->body);
      },
      [peers = d.peers.get()](std::string_view node) -> std::string {
        auto record = peers->Get(node);
        return record.ok() && record->has_value() ? (*record)->base_url : std::string();
      },
      d.clock);

  const std::string token = protocol::Base64UrlEncode(d.random(32));
  BP_RETURN_IF_ERROR(WriteSecretFile(d.data_dir + "/" + std::string(kAdminTokenFile), token + "\n"));
  d.admin_token_sha256 = protocol::Sha256(token);

  {
    std::lock_guard lock(d.description_mu);
    d.description.capabilities = d.capabilities;
  }
  d.RefreshDescription();
  log::Info("federation", "node identity",
            {{"node", d.node_name},
             {"key", d.node_name + "#" + d.keys->current().id},
             {"mode", d.federation.mode},
             {"configured_peers", d.federation.peers.size()}});
  return Status::Ok();
}

void FederationService::RegisterRoutes(http::Router& router) {
  Impl& d = *impl_;
  router.Add(bhttp::verb::get, std::string(federation::kKeysPath), http::Exec::kInline, [&d](http::Context&) {
    http::Response res = http::JsonResponse(bhttp::status::ok, d.keys_document);
    res.set(bhttp::field::cache_control, "public, max-age=60");
    res.set(bhttp::field::access_control_allow_origin, "*");
    return res;
  });
  router.Add(bhttp::verb::post, std::string(kPeerPath), http::Exec::kWorker,
             [&d](http::Context& ctx) { return d.OnHandshake(ctx); });

  router.Add(bhttp::verb::get, "/_admin/v1/peers", http::Exec::kWorker, d.Admin([&d](http::Context& ctx) {
    auto records = d.peers->List();
    if (!records.ok()) return http::StatusResponse(records.status(), ctx.request_id);
    json list = json::array();
    for (const federation::PeerRecord& record : *records) list.push_back(federation::ToJson(record));
    return JsonObject({{"node", d.node_name}, {"mode", d.federation.mode}, {"peers", std::move(list)}});
  }));
  router.Add(bhttp::verb::post, "/_admin/v1/peers", http::Exec::kWorker, d.Admin([&d](http::Context& ctx) {
    auto fields = api::BodyFields(ctx, {"url"});
    if (auto* error = std::get_if<http::Response>(&fields)) return std::move(*error);
    auto record = d.peers->Add(std::get<api::Fields>(fields)[0], d.clock());
    if (record.ok()) record = d.HandshakeIfIdle(*record);
    return d.PeerAnswerOf(record, ctx);
  }));
  router.Add(bhttp::verb::post, "/_admin/v1/peers/{name}/approve", http::Exec::kWorker,
             d.Admin([&d](http::Context& ctx) {
               auto record = d.peers->Approve(ctx.params[0], d.clock());
               // Tell the peer at once: its own record of us leaves pending.
               if (record.ok()) record = d.HandshakeIfIdle(*record);
               return d.PeerAnswerOf(record, ctx);
             }));
  router.Add(bhttp::verb::post, "/_admin/v1/peers/{name}/block", http::Exec::kWorker,
             d.Admin([&d](http::Context& ctx) {
               auto record = d.peers->Block(ctx.params[0], d.clock());
               if (record.ok()) d.verifier->Forget(record->name);
               return d.PeerAnswerOf(record, ctx);
             }));
  router.Add(bhttp::verb::post, "/_admin/v1/peers/{name}/unblock", http::Exec::kWorker,
             d.Admin([&d](http::Context& ctx) {
               auto record = d.peers->Unblock(ctx.params[0], d.clock());
               if (record.ok()) record = d.HandshakeIfIdle(*record);
               return d.PeerAnswerOf(record, ctx);
             }));
}

std::variant<federation::VerifiedRequest, http::Response> FederationService::AuthenticatePeer(
    const http::Context& ctx) {
  Impl& d = *impl_;
  federation::VerifyOptions options;
  options.admit = [&d](std::string_view node) { return d.AdmitActive(node); };
  auto verified = d.Verify(ctx, options);
  if (!verified.ok()) return d.Refusal(verified.status(), ctx);
  return std::move(*verified);
}

void FederationService::RefreshNodeDocument() { impl_->RefreshDescription(); }

std::chrono::seconds FederationService::RunDueHandshakes() {
  Impl& d = *impl_;
  d.RefreshDescription();  // peers that replication suspended or revived
  const int64_t now = d.clock();
  auto due = d.peers->Due(now);
  if (!due.ok()) {
    log::Warn("federation", "cannot list due handshakes", {{"error", due.status().ToString()}});
    return std::chrono::seconds(60);
  }
  for (federation::PeerRecord& peer : *due) {
    if (!d.Claim(peer.name)) continue;
    d.post([&d, peer = std::move(peer)] {
      auto result = d.HandshakeWith(peer);
      if (!result.ok()) {
        log::Warn("federation", "handshake bookkeeping failed",
                  {{"peer", peer.name}, {"error", result.status().ToString()}});
      }
      d.Release(peer.name);
    });
  }
  auto next = d.peers->NextAttempt();
  if (!next.ok() || !next->has_value()) return std::chrono::seconds(60);
  return std::chrono::seconds(std::clamp<int64_t>(**next - d.clock(), 1, 60));
}

Result<federation::PeerRecord> FederationService::Handshake(const federation::PeerRecord& peer) {
  return impl_->HandshakeIfIdle(peer);
}

}  // namespace backpack
