#include "daemon/replication_api.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/api_util.h"
#include "daemon/federation_api.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/peer_client.h"
#include "daemon/rate_limiter.h"
#include "federation/records.h"
#include "federation/replication.h"
#include "protocol/account_record.h"

namespace backpack {

namespace net = boost::asio;
namespace bhttp = http::bhttp;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int64_t kPeerSyncMs = 1000;
constexpr size_t kMaxPokeBytes = 1024;
// Room in an answer for everything but the records: the members around
// them and a comma per record.
constexpr size_t kPageOverheadBytes = 64 * 1024;
constexpr size_t kMinPageBytes = 1024;

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A decimal number in [min, max]; nullopt otherwise.
std::optional<uint64_t> ParseNumber(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t value = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) return std::nullopt;
  return value;
}

bool IsDigest(std::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Retry-After in seconds, as milliseconds; 0 when absent or an HTTP date.
int64_t RetryAfterMs(std::string_view value) {
  auto seconds = ParseNumber(value, 0, 86400);
  return seconds ? static_cast<int64_t>(*seconds) * 1000 : 0;
}

// "403 not-active: <message>" from an error answer.
std::string Described(const PeerAnswer& answer) {
  const json body = json::parse(answer.body, nullptr, false);
  std::string detail;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& error = body["error"];
    detail = " " + (error.contains("code") && error["code"].is_string() ? error["code"].get<std::string>() : "") +
             ": " +
             (error.contains("message") && error["message"].is_string() ? error["message"].get<std::string>() : "");
  }
  return fmt::format("answered {}{}", answer.status, detail.substr(0, 500));
}

std::string_view KindName(federation::PullFailure::Kind kind) {
  switch (kind) {
    case federation::PullFailure::Kind::kTransport:
      return "transport";
    case federation::PullFailure::Kind::kRefusedPage:
      return "refused_page";
    case federation::PullFailure::Kind::kNotAccepted:
      return "not_accepted";
    case federation::PullFailure::Kind::kLocal:
      return "local";
  }
  return "transport";
}

// A Prometheus label value.
std::string Label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

struct ReplicationService::Impl : federation::ReplicationTransport,
                                  federation::ReplicationScheduler,
                                  federation::ReplicationEvents {
  // A long poll waiting on our change log.
  struct Waiter {
    std::string peer;
    federation::ChangesQuery query;
    http::Responder respond;
    int64_t deadline_ms = 0;  // NowMs() time
    std::string request_id;
    std::atomic<bool> done{false};  // answered (or handed on to be answered)
  };
  using WaiterPtr = std::shared_ptr<Waiter>;

  struct PeerCounters {
    uint64_t pages = 0;
    uint64_t applied = 0;
    uint64_t older = 0;
    uint64_t failures = 0;
    uint64_t refused = 0;
    uint64_t resyncs = 0;
    uint64_t pokes_sent = 0;
    uint64_t pokes_received = 0;
    uint64_t records_served = 0;
  };

  Impl(const config::Config& config, FederationService& federation_in, federation::RecordStore& records_in,
       net::io_context& ioc_in, net::thread_pool& workers_in)
      : federation_config(config.federation),
        fetch_config(config.fetch),
        federation(federation_in),
        records(records_in),
        ioc(ioc_in),
        workers(workers_in),
        pool(kExchangeThreads),
        timer(ioc_in),
        poke_limiter(config.federation.pokes_per_minute, std::chrono::minutes(1)) {
    // What we ask of a peer: our page limits, within what our client takes in.
    const size_t cap = static_cast<size_t>(std::max(0, fetch_config.max_bytes));
    response_cap = cap;
    page_bytes = static_cast<size_t>(federation_config.page_max_bytes);
    if (cap > kPageOverheadBytes + kMinPageBytes) {
      page_bytes = std::min(page_bytes, cap - kPageOverheadBytes);
    } else {
      page_bytes = kMinPageBytes;
    }
  }

  const config::FederationConfig federation_config;
  const config::FetchConfig fetch_config;
  FederationService& federation;
  federation::RecordStore& records;
  net::io_context& ioc;
  net::thread_pool& workers;
  net::thread_pool pool;  // outbound exchanges and the scheduler's tasks
  size_t response_cap = 0;
  size_t page_bytes = 0;

  // ---- Scheduler: one timer on `ioc`, tasks run on `pool` -------------------------

  std::mutex timer_mu;
  std::multimap<SteadyClock::time_point, std::function<void()>> due;
  SteadyClock::time_point armed_for = SteadyClock::time_point::max();
  bool stopping = false;    // under timer_mu
  net::steady_timer timer;  // used on ioc's thread only

  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count();
  }

  void RunAfter(int64_t delay_ms, std::function<void()> task) override {
    const auto at = SteadyClock::now() + std::chrono::milliseconds(std::max<int64_t>(0, delay_ms));
    std::lock_guard lock(timer_mu);
    if (stopping) return;
    due.emplace(at, std::move(task));
    if (at < armed_for) {
      armed_for = at;
      net::post(ioc, [this] { Rearm(); });
    }
  }

  // On ioc's thread.
  void Rearm() {
    std::lock_guard lock(timer_mu);
    if (stopping) return;
    if (due.empty()) {
      armed_for = SteadyClock::time_point::max();
      return;
    }
    armed_for = due.begin()->first;
    timer.expires_at(armed_for);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) OnTimer();
    });
  }

  void OnTimer() {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(timer_mu);
      const auto now = SteadyClock::now();
      while (!due.empty() && due.begin()->first <= now) {
        ready.push_back(std::move(due.begin()->second));
        due.erase(due.begin());
      }
      armed_for = SteadyClock::time_point::max();
    }
    for (auto& task : ready) net::post(pool, std::move(task));
    Rearm();
  }

  // ---- Transport over PeerClient ----------------------------------------------------

  void Pull(const federation::PeerAddress& peer, const federation::ChangesQuery& query,
            std::function<void(federation::PullResult)> done) override {
    // Called from a pool task: the blocking exchange runs right here.
    done(PullNow(peer, query));
  }

  federation::PullResult PullNow(const federation::PeerAddress& peer, const federation::ChangesQuery& query) {
    using Outcome = federation::PullResult::Outcome;
    PeerCall call;
    call.method = "GET";
    call.url = peer.base_url + federation::ChangesTarget(query);
    call.timeout = std::chrono::milliseconds(int64_t{query.wait_seconds} * 1000 + fetch_config.timeout_ms);
    call.max_response_bytes = response_cap;
    auto answer = federation.client().Send(call);
    if (!answer.ok()) return {Outcome::kFailed, {}, answer.status().message(), 0};
    const int64_t retry_after = RetryAfterMs(answer->retry_after);
    if (answer->status == 200) {
      auto page = federation::DecodeChangePage(answer->body, query);
      if (!page.ok()) return {Outcome::kFailed, {}, "an unusable page: " + page.status().message(), 0};
      return {Outcome::kPage, std::move(*page), "", 0};
    }
    const std::string what = peer.base_url + " " + Described(*answer);
    if (answer->status == 410) return {Outcome::kCursorInvalid, {}, what, retry_after};
    if (answer->status == 401 || answer->status == 403) return {Outcome::kNotAccepted, {}, what, retry_after};
    return {Outcome::kFailed, {}, what, retry_after};
  }

  void Poke(const federation::PeerAddress& peer, std::function<void(federation::PokeResult)> done) override {
    PeerCall call;
    call.method = "POST";
    call.url = peer.base_url + std::string(federation::kPokePath);
    call.body = "{}";
    call.max_response_bytes = 64 * 1024;
    auto answer = federation.client().Send(call);
    federation::PokeResult result;
    if (!answer.ok()) {
      result.status = answer.status();
    } else if (answer->status < 200 || answer->status > 299) {
      result.status = Unavailable(peer.base_url + " " + Described(*answer));
      result.retry_after_ms = RetryAfterMs(answer->retry_after);
    }
    done(std::move(result));
  }

  // ---- Events: logs, counters, the peer table --------------------------------------------

  mutable std::mutex counters_mu;
  std::map<std::string, PeerCounters, std::less<>> counters;
  std::vector<std::string> peer_names;  // the peers replicated with, as of the last sync

  void Count(const std::string& peer, const std::function<void(PeerCounters&)>& change) {
    std::lock_guard lock(counters_mu);
    change(counters[peer]);
  }

  void PageApplied(const std::string& peer, const federation::ChangePage& page,
                   const federation::ApplyResult& result) override {
    Count(peer, [&](PeerCounters& c) {
      ++c.pages;
      c.applied += result.applied;
      c.older += result.older;
    });
    log::Info("replication", "page applied",
              {{"peer", peer},
               {"records", page.records.size()},
               {"applied", result.applied},
               {"older", result.older},
               {"next", page.next},
               {"more", page.more}});
  }

  void PullSucceeded(const std::string& peer, int failures) override {
    if (failures > 0) log::Info("replication", "peer reachable again", {{"peer", peer}, {"after_failures", failures}});
    auto record = federation.peers().RecordSuccess(peer, UnixNow());
    if (!record.ok() && record.status().code() != StatusCode::kNotFound) {
      log::Warn("replication", "cannot update the peer record",
                {{"peer", peer}, {"error", record.status().ToString()}});
    }
  }

  void PullFailed(const std::string& peer, const federation::PullFailure& failure) override {
    using Kind = federation::PullFailure::Kind;
    Count(peer, [&](PeerCounters& c) {
      ++c.failures;
      if (failure.kind == Kind::kRefusedPage) ++c.refused;
    });
    log::Warn("replication", failure.kind == Kind::kRefusedPage ? "page refused" : "pull failed",
              {{"peer", peer},
               {"kind", KindName(failure.kind)},
               {"error", failure.error},
               {"failures", failure.failures},
               {"retry_in_ms", failure.retry_in_ms},
               {"suspended", failure.suspended}});
    if (failure.kind == Kind::kLocal) return;  // not the peer's fault
    const std::string error = "replication: " + failure.error.substr(0, 900);
    const int64_t now = UnixNow();
    Result<federation::PeerRecord> record = Internal("not updated");
    if (failure.kind == Kind::kNotAccepted) {
      // The peer no longer takes our requests: a handshake (scheduled with
      // backoff) finds out where we stand.
      record = federation.peers().RecordFailure(peer, error, "", now);
    } else {
      record = federation.peers().Update(peer, now, [&](federation::PeerRecord& r) {
        if (r.failures < (1 << 20)) ++r.failures;
        r.last_error = error;
        return Status::Ok();
      });
    }
    if (!record.ok()) {
      if (record.status().code() != StatusCode::kNotFound) {
        log::Warn("replication", "cannot update the peer record",
                  {{"peer", peer}, {"error", record.status().ToString()}});
      }
      return;
    }
    if (record->state == federation::PeerState::kSuspended && record->since == now &&
        record->failures == federation_config.breaker_failures) {
      log::Warn("replication", "peer suspended", {{"peer", peer}, {"failures", record->failures}});
    }
  }

  void Resync(const std::string& peer, const std::string& why) override {
    Count(peer, [](PeerCounters& c) { ++c.resyncs; });
    log::Warn("replication", "full resync", {{"peer", peer}, {"why", why}});
  }

  void PokeSent(const std::string& peer, const federation::PokeResult& result) override {
    Count(peer, [](PeerCounters& c) { ++c.pokes_sent; });
    if (!result.status.ok()) {
      log::Info("replication", "poke failed", {{"peer", peer}, {"error", result.status.ToString()}});
    }
  }

  // ---- Pullers ---------------------------------------------------------------------------

  std::unique_ptr<federation::Replicator> replicator;
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);

  // The active and suspended peers of the table go to the Replicator.
  void SyncPeers() {
    auto list = federation.peers().List();
    if (!list.ok()) {
      log::Warn("replication", "cannot list peers", {{"error", list.status().ToString()}});
      return;
    }
    std::vector<federation::ReplicationPeer> peers;
    std::vector<std::string> names;
    for (const federation::PeerRecord& record : *list) {
      if (record.base_url.empty()) continue;
      if (record.state != federation::PeerState::kActive && record.state != federation::PeerState::kSuspended) continue;
      peers.push_back({record.name, record.base_url, record.failures});
      names.push_back(record.name);
    }
    replicator->SetPeers(peers);
    std::lock_guard lock(counters_mu);
    peer_names = std::move(names);
  }

  void SyncLoop() {
    SyncPeers();
    RunAfter(kPeerSyncMs, [this] { SyncLoop(); });
  }

  // ---- Source side ---------------------------------------------------------------------

  RateLimiter poke_limiter;
  std::mutex waiters_mu;
  std::map<std::string, WaiterPtr, std::less<>> waiters;  // by peer: at most one each
  bool closed = false;                                    // under waiters_mu: Stop() answered every waiter
  std::atomic<uint64_t> polls_served{0};

  // The page for `peer`: badge records only when the account's mirrors
  // record names the peer. Tombstones go to everyone: a node just dropped
  // from the mirrors must learn that its copies are gone.
  Result<federation::ChangePage> PageFor(const std::string& peer, const federation::ChangesQuery& query) {
    std::map<std::string, bool, std::less<>> mirrored;  // account -> the peer mirrors its badges
    Status lookup;
    auto include = [&](const protocol::RecordEnvelope& e) {
      if (e.type != protocol::RecordType::kBadge) return true;
      auto [it, inserted] = mirrored.try_emplace(e.account, false);
      if (inserted) {
        auto stored = records.Get(e.account, "mirrors");
        if (!stored.ok()) {
          lookup = stored.status();
          return false;
        }
        if (stored->has_value()) {
          auto mirrors = protocol::ParseEnvelope(**stored);
          if (mirrors.ok() && mirrors->type == protocol::RecordType::kMirrors) {
            for (const json& node : mirrors->record["nodes"]) {
              if (node.is_string() && node.get_ref<const std::string&>() == peer) it->second = true;
            }
          }
        }
      }
      return it->second;
    };
    auto page = records.Changes(query.since, query.after, query.limit, query.max_bytes, include);
    // A failed look-up may have left out a record the peer should get.
    if (!lookup.ok()) return lookup;
    return page;
  }

  static http::Response PageResponse(const federation::ChangePage& page) {
    return http::JsonResponse(bhttp::status::ok, federation::EncodeChangePage(page));
  }

  http::Response EmptyPage(const Waiter& w) {
    federation::ChangePage page;
    page.log_id = records.LogId();
    page.next = w.query.since;
    page.digest = w.query.after;
    return PageResponse(page);
  }

  // Answers `query` for `peer` now, or parks it until a commit or the deadline.
  void Serve(const std::string& peer, const federation::ChangesQuery& query, http::Responder respond,
             int64_t deadline_ms, const std::string& request_id) {
    auto page = PageFor(peer, query);
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kFailedPrecondition &&
          page.status().message().starts_with("cursor_invalid")) {
        std::string_view message = page.status().message();
        message.remove_prefix(std::min(message.size(), std::string_view("cursor_invalid: ").size()));
        return respond(http::ErrorResponse(bhttp::status::gone, "cursor_invalid", message));
      }
      return respond(http::StatusResponse(page.status(), request_id));
    }
    const bool nothing = page->records.empty() && page->next == query.since && !page->more;
    if (!nothing || query.wait_seconds <= 0 || NowMs() >= deadline_ms) {
      polls_served.fetch_add(1, std::memory_order_relaxed);
      const size_t served = page->records.size();
      if (served > 0) Count(peer, [served](PeerCounters& c) { c.records_served += served; });
      return respond(PageResponse(*page));
    }
    auto waiter = std::make_shared<Waiter>();
    waiter->peer = peer;
    waiter->query = query;
    waiter->respond = std::move(respond);
    waiter->deadline_ms = deadline_ms;
    waiter->request_id = request_id;
    Park(waiter);
  }

  void Park(const WaiterPtr& waiter) {
    WaiterPtr replaced;
    bool refused = false;
    {
      std::lock_guard lock(waiters_mu);
      if (closed) {
        refused = true;
      } else {
        WaiterPtr& slot = waiters[waiter->peer];
        replaced = std::move(slot);
        slot = waiter;
      }
    }
    // One waiting poll per peer: the newer one wins, the older is answered.
    if (replaced && !replaced->done.exchange(true)) replaced->respond(EmptyPage(*replaced));
    if (refused) {
      if (!waiter->done.exchange(true)) waiter->respond(EmptyPage(*waiter));
      return;
    }
    // A commit between reading the page and parking.
    if (records.Watermark() >= waiter->query.since) return Wake(waiter);
    RunAfter(waiter->deadline_ms - NowMs(), [this, waiter] { Expire(waiter); });
  }

  void Unpark(const WaiterPtr& waiter) {
    std::lock_guard lock(waiters_mu);
    auto it = waiters.find(waiter->peer);
    if (it != waiters.end() && it->second == waiter) waiters.erase(it);
  }

  // News: the page is read again on a request worker.
  void Wake(const WaiterPtr& waiter) {
    Unpark(waiter);
    if (waiter->done.exchange(true)) return;
    net::post(workers, [this, waiter] {
      Serve(waiter->peer, waiter->query, std::move(waiter->respond), waiter->deadline_ms, waiter->request_id);
    });
  }

  void Expire(const WaiterPtr& waiter) {
    Unpark(waiter);
    if (!waiter->done.exchange(true)) waiter->respond(EmptyPage(*waiter));
  }

  // From the writing thread: keep it short.
  void OnCommit(uint64_t watermark) {
    std::vector<WaiterPtr> woken;
    {
      std::lock_guard lock(waiters_mu);
      for (auto it = waiters.begin(); it != waiters.end();) {
        if (it->second->query.since <= watermark) {
          woken.push_back(std::move(it->second));
          it = waiters.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const WaiterPtr& waiter : woken) Wake(waiter);
    replicator->OnLocalCommit();
  }

  // Our long poll to `peer` is answered at once when we ask again (see
  // OnChanges): a quick request without waiting, whose answer is dropped.
  void ReleaseLongPoll(const federation::PeerAddress& peer) {
    auto cursor = records.Cursor(peer.name);
    if (!cursor.ok()) return;
    federation::ChangesQuery query;
    query.since = cursor->next;
    query.after = cursor->digest;
    query.limit = 1;
    query.max_bytes = kMinPageBytes;
    PeerCall call;
    call.url = peer.base_url + federation::ChangesTarget(query);
    call.max_response_bytes = response_cap;
    auto answer = federation.client().Send(call);
    if (!answer.ok()) {
      log::Info("replication", "cannot release our long poll",
                {{"peer", peer.name}, {"error", answer.status().message()}});
    }
  }

  bool PeerIsWaiting(const std::string& peer) {
    std::lock_guard lock(waiters_mu);
    return waiters.contains(peer);
  }

  size_t WaitingPolls() {
    std::lock_guard lock(waiters_mu);
    return waiters.size();
  }

  // since, after, limit, bytes, wait: InvalidArgument naming the bad one.
  Result<federation::ChangesQuery> ReadQuery(const http::Context& ctx) {
    federation::ChangesQuery query;
    const auto since = ParseNumber(http::QueryParam(ctx.query, "since"), 0, std::numeric_limits<int64_t>::max());
    if (!since) return InvalidArgument("since must be a number: the first change log entry wanted");
    query.since = *since;
    query.after = http::QueryParam(ctx.query, "after");
    if (!query.after.empty() && !IsDigest(query.after)) {
      return InvalidArgument("after must be the SHA-256 hex digest of entry since - 1");
    }
    const size_t max_records = static_cast<size_t>(federation_config.page_max_records);
    const size_t max_bytes = static_cast<size_t>(federation_config.page_max_bytes);
    query.limit = max_records;
    query.max_bytes = max_bytes;
    if (const std::string limit = http::QueryParam(ctx.query, "limit"); !limit.empty()) {
      const auto n = ParseNumber(limit, 1, std::numeric_limits<uint32_t>::max());
      if (!n) return InvalidArgument("limit must be a positive number");
      query.limit = std::min<size_t>(*n, max_records);
    }
    if (const std::string bytes = http::QueryParam(ctx.query, "bytes"); !bytes.empty()) {
      const auto n = ParseNumber(bytes, 1, std::numeric_limits<uint32_t>::max());
      if (!n) return InvalidArgument("bytes must be a positive number");
      query.max_bytes = std::clamp<size_t>(*n, kMinPageBytes, max_bytes);
    }
    if (const std::string wait = http::QueryParam(ctx.query, "wait"); !wait.empty()) {
      const auto n = ParseNumber(wait, 0, 86400);
      if (!n) return InvalidArgument("wait must be a number of seconds");
      query.wait_seconds = static_cast<int>(std::min<uint64_t>(*n, federation_config.long_poll_seconds));
    }
    return query;
  }

  void OnChanges(http::Context& ctx, http::Responder respond) {
    auto verified = federation.AuthenticatePeer(ctx);
    if (auto* refusal = std::get_if<http::Response>(&verified)) return respond(std::move(*refusal));
    const std::string peer = std::get<federation::VerifiedRequest>(verified).node;
    // A puller has one request out at a time: a new one means the poll
    // still waiting is abandoned (a peer that stops sends one to get its
    // own poll back at once). Answer it.
    WaiterPtr abandoned;
    {
      std::lock_guard lock(waiters_mu);
      if (auto it = waiters.find(peer); it != waiters.end()) {
        abandoned = std::move(it->second);
        waiters.erase(it);
      }
    }
    if (abandoned && !abandoned->done.exchange(true)) abandoned->respond(EmptyPage(*abandoned));
    auto query = ReadQuery(ctx);
    if (!query.ok()) return respond(http::StatusResponse(query.status(), ctx.request_id));
    const int64_t deadline = NowMs() + int64_t{query->wait_seconds} * 1000;
    Serve(peer, *query, std::move(respond), deadline, ctx.request_id);
  }

  http::Response OnPoke(http::Context& ctx, const federation::VerifiedRequest& peer) {
    const std::string& body = ctx.request.body();
    if (body.size() > kMaxPokeBytes) {
      return http::ErrorResponse(bhttp::status::payload_too_large, "too_large",
                                 fmt::format("a poke is an empty JSON object (at most {} bytes)", kMaxPokeBytes));
    }
    if (!body.empty()) {
      const json parsed = json::parse(body, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return http::ErrorResponse(bhttp::status::bad_request, "invalid_argument", "a poke is an empty JSON object");
      }
    }
    std::chrono::seconds retry_after{};
    if (!poke_limiter.Allow(peer.node, &retry_after)) return api::TooMany(retry_after, "pokes");
    Count(peer.node, [](PeerCounters& c) { ++c.pokes_received; });
    if (!replicator->OnPoke(peer.node)) {
      // A peer that became active since the last look at the table.
      SyncPeers();
      if (!replicator->OnPoke(peer.node)) {
        log::Info("replication", "poke from a peer without a puller", {{"peer", peer.node}});
      }
    }
    return http::JsonResponse(bhttp::status::accepted, R"({"status":"accepted"})");
  }
};

ReplicationService::ReplicationService(const config::Config& config, FederationService& federation,
                                       federation::RecordStore& records, net::io_context& ioc,
                                       net::thread_pool& workers)
    : impl_(std::make_unique<Impl>(config, federation, records, ioc, workers)) {
  Impl& d = *impl_;
  federation::ReplicationOptions options;
  options.page_max_records = static_cast<size_t>(config.federation.page_max_records);
  options.page_max_bytes = d.page_bytes;
  options.long_poll_seconds = config.federation.long_poll_seconds;
  options.idle_poll_seconds = 60;
  options.max_long_polls = kExchangeThreads - 4;
  options.retry_min_seconds = config.federation.retry_min_seconds;
  options.retry_max_seconds = config.federation.retry_max_seconds;
  options.breaker_failures = config.federation.breaker_failures;
  options.pokes_per_minute = config.federation.pokes_per_minute;
  options.seed = std::chrono::steady_clock::now().time_since_epoch().count();
  options.peer_is_waiting = [&d](const std::string& peer) { return d.PeerIsWaiting(peer); };
  d.replicator = std::make_unique<federation::Replicator>(records, d, d, d, std::move(options));
}

ReplicationService::~ReplicationService() {
  Stop();
  Join();
}

void ReplicationService::RegisterRoutes(http::Router& router) {
  Impl& d = *impl_;
  router.AddDeferred(bhttp::verb::get, std::string(federation::kChangesPath),
                     [&d](http::Context& ctx, http::Responder respond) { d.OnChanges(ctx, std::move(respond)); });
  router.Add(bhttp::verb::post, std::string(federation::kPokePath), http::Exec::kWorker,
             SignedByPeer(d.federation, [&d](http::Context& ctx, const federation::VerifiedRequest& peer) {
               return d.OnPoke(ctx, peer);
             }));
}

void ReplicationService::Start() {
  Impl& d = *impl_;
  d.records.OnCommit([&d, alive = d.alive](uint64_t watermark) {
    if (alive->load()) d.OnCommit(watermark);
  });
  d.RunAfter(0, [&d] { d.SyncLoop(); });
}

void ReplicationService::Stop() {
  Impl& d = *impl_;
  d.replicator->Stop();
  {
    std::lock_guard lock(d.timer_mu);
    if (d.stopping) return;
    d.stopping = true;
    d.due.clear();
  }
  net::post(d.ioc, [&d] { d.timer.cancel(); });
  // Our long polls would hold Join() for up to long_poll_seconds.
  for (federation::PeerAddress& peer : d.replicator->LongPolling()) {
    net::post(d.workers, [&d, peer = std::move(peer)] { d.ReleaseLongPoll(peer); });
  }
  std::map<std::string, Impl::WaiterPtr, std::less<>> waiting;
  {
    std::lock_guard lock(d.waiters_mu);
    d.closed = true;
    waiting.swap(d.waiters);
  }
  for (auto& [peer, waiter] : waiting) {
    if (!waiter->done.exchange(true)) waiter->respond(d.EmptyPage(*waiter));
  }
}

void ReplicationService::Join() {
  impl_->pool.join();
  impl_->alive->store(false);
}

std::string ReplicationService::RenderMetrics() const {
  Impl& d = *impl_;
  std::map<std::string, Impl::PeerCounters, std::less<>> counters;
  std::vector<std::string> peers;
  {
    std::lock_guard lock(d.counters_mu);
    counters = d.counters;
    peers = d.peer_names;
  }
  for (const std::string& peer : peers) counters.try_emplace(peer);
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    uint64_t Impl::PeerCounters::*member) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const auto& [peer, c] : counters) out += fmt::format("{}{{peer=\"{}\"}} {}\n", name, Label(peer), c.*member);
  };
  family("backpackd_replication_pages_total", "counter", "Pages with progress applied from each peer.",
         &Impl::PeerCounters::pages);
  family("backpackd_replication_records_applied_total", "counter",
         "Records stored from each peer (newer than what was held).", &Impl::PeerCounters::applied);
  family("backpackd_replication_records_older_total", "counter",
         "Records from each peer skipped because as new a version was held.", &Impl::PeerCounters::older);
  family("backpackd_replication_pull_failures_total", "counter", "Failed pulls from each peer.",
         &Impl::PeerCounters::failures);
  family("backpackd_replication_pages_refused_total", "counter", "Pages from each peer refused by verification.",
         &Impl::PeerCounters::refused);
  family("backpackd_replication_resyncs_total", "counter", "Full resyncs from each peer's change log.",
         &Impl::PeerCounters::resyncs);
  family("backpackd_replication_pokes_sent_total", "counter", "Pokes sent to each peer.",
         &Impl::PeerCounters::pokes_sent);
  family("backpackd_replication_pokes_received_total", "counter", "Pokes accepted from each peer.",
         &Impl::PeerCounters::pokes_received);
  family("backpackd_replication_records_served_total", "counter", "Records of our change log sent to each peer.",
         &Impl::PeerCounters::records_served);

  out +=
      "# HELP backpackd_replication_cursor Entries of each peer's change log applied here.\n"
      "# TYPE backpackd_replication_cursor gauge\n";
  for (const std::string& peer : peers) {
    auto cursor = d.records.Cursor(peer);
    if (cursor.ok())
      out += fmt::format("backpackd_replication_cursor{{peer=\"{}\"}} {}\n", Label(peer), cursor->next - 1);
  }
  out += fmt::format(
      "# HELP backpackd_replication_log_entries Entries of our change log that have committed.\n"
      "# TYPE backpackd_replication_log_entries gauge\nbackpackd_replication_log_entries {}\n"
      "# HELP backpackd_replication_polls_waiting Long polls of peers waiting on our change log.\n"
      "# TYPE backpackd_replication_polls_waiting gauge\nbackpackd_replication_polls_waiting {}\n"
      "# HELP backpackd_replication_long_polls Our long polls in flight to peers.\n"
      "# TYPE backpackd_replication_long_polls gauge\nbackpackd_replication_long_polls {}\n"
      "# HELP backpackd_replication_polls_served_total Change pages answered to peers.\n"
      "# TYPE backpackd_replication_polls_served_total counter\nbackpackd_replication_polls_served_total {}\n",
      d.records.Watermark(), d.WaitingPolls(), d.replicator->long_polls(), d.polls_served.load());
  return out;
}

}  // namespace backpack
