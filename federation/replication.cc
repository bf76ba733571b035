#include "federation/replication.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/json_depth.h"

namespace backpack::federation {
namespace {

using Json = nlohmann::json;

constexpr int kMaxPageDepth = 64;
constexpr size_t kMaxLogIdBytes = 128;

bool IsDigest(std::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

// ---- Wire format --------------------------------------------------------------

std::string ChangesTarget(const ChangesQuery& query) {
  // `after` is hex, the rest are numbers: nothing needs escaping.
  return fmt::format("{}?since={}&after={}&limit={}&bytes={}&wait={}", kChangesPath, query.since, query.after,
                     query.limit, query.max_bytes, query.wait_seconds);
}

std::string EncodeChangePage(const ChangePage& page) {
  size_t size = 128 + page.log_id.size() + page.digest.size();
  for (const std::string& record : page.records) size += record.size() + 1;
  std::string out;
  out.reserve(size);
  out += R"({"log":)";
  out += Json(page.log_id).dump();
  out += R"(,"records":[)";
  for (size_t i = 0; i < page.records.size(); ++i) {
    if (i > 0) out += ',';
    out += page.records[i];
  }
  out += R"(],"next":)";
  out += std::to_string(page.next);
  out += R"(,"digest":)";
  out += Json(page.digest).dump();
  out += R"(,"more":)";
  out += page.more ? "true" : "false";
  out += '}';
  return out;
}

Result<ChangePage> DecodeChangePage(std::string_view body, const ChangesQuery& query) {
  if (protocol::JsonNestingDepth(body, kMaxPageDepth) > kMaxPageDepth) {
    return InvalidArgument(fmt::format("the page nests deeper than {}", kMaxPageDepth));
  }
  Json doc = Json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument("the page is not a JSON object");
  const auto log = doc.find("log");
  const auto records = doc.find("records");
  const auto next = doc.find("next");
  const auto digest = doc.find("digest");
  const auto more = doc.find("more");
  if (log == doc.end() || !log->is_string() || log->get_ref<const std::string&>().empty() ||
      log->get_ref<const std::string&>().size() > kMaxLogIdBytes) {
    return InvalidArgument("the page's 'log' must be a string of 1..128 characters");
  }
  if (records == doc.end() || !records->is_array()) return InvalidArgument("the page's 'records' must be an array");
  if (next == doc.end() || !next->is_number_unsigned()) {
    return InvalidArgument("the page's 'next' must be a non-negative integer");
  }
  if (digest == doc.end() || !digest->is_string()) return InvalidArgument("the page's 'digest' must be a string");
  if (more == doc.end() || !more->is_boolean()) return InvalidArgument("the page's 'more' must be true or false");

  ChangePage page;
  page.log_id = log->get<std::string>();
  page.next = next->get<uint64_t>();
  page.digest = digest->get<std::string>();
  page.more = more->get<bool>();
  if (records->size() > query.limit) {
    return InvalidArgument(fmt::format("the page holds {} records; {} were asked for", records->size(), query.limit));
  }
  if (page.next < query.since) {
    return InvalidArgument(fmt::format("the page ends at {}, before the {} asked for", page.next, query.since));
  }
  const bool progress = page.next > query.since;
  if (!progress && !records->empty()) return InvalidArgument("the page holds records but does not advance");
  if (page.next - query.since < records->size()) {
    return InvalidArgument("the page holds more records than the entries it advances over");
  }
  if (!progress && page.more) return InvalidArgument("the page says there is more but does not advance");
  if (progress ? !IsDigest(page.digest) : page.digest != query.after) {
    return InvalidArgument("the page's 'digest' is not the SHA-256 hex digest of its last entry");
  }
  page.records.reserve(records->size());
  for (const Json& record : *records) {
    if (!record.is_object()) return InvalidArgument("a record of the page is not a JSON object");
    page.records.push_back(record.dump());
  }
  return page;
}

int64_t BackoffMs(int failures, int retry_min_seconds, int retry_max_seconds, int breaker_failures, double u) {
  const int64_t min_ms = int64_t{std::max(1, retry_min_seconds)} * 1000;
  const int64_t max_ms = std::max(min_ms, int64_t{retry_max_seconds} * 1000);
  int64_t base = min_ms;
  if (failures >= std::max(1, breaker_failures)) {
    base = max_ms;
  } else {
    for (int i = 1; i < failures && base < max_ms; ++i) base *= 2;
    base = std::min(base, max_ms);
  }
  u = std::clamp(u, 0.0, 1.0);
  const auto jittered = static_cast<int64_t>(static_cast<double>(base) - u * static_cast<double>(base) / 2);
  return std::clamp(jittered, min_ms, max_ms);
}

// ---- Replicator -----------------------------------------------------------------

struct Replicator::Peer {
  PeerAddress address;
  bool enabled = true;

  // Pulls.
  bool pulling = false;
  uint64_t timer = 0;  // token of the armed pull timer; older timers do nothing
  int64_t due_ms = 0;
  int failures = 0;
  bool poked = false;      // a poke came during the pull in flight
  bool resynced = false;   // the last pull ended in a resync
  bool long_poll = false;  // the pull in flight counts as a long poll
  uint64_t pulls = 0;

  // Pokes.
  bool poke_in_flight = false;
  bool poke_pending = false;
  bool poke_armed = false;
  uint64_t poke_timer = 0;
  int64_t poke_not_before = 0;
  int poke_failures = 0;
  uint64_t pokes = 0;
};

Replicator::Replicator(RecordStore& records, ReplicationTransport& transport, ReplicationScheduler& scheduler,
                       ReplicationEvents& events, ReplicationOptions options)
    : records_(records),
      transport_(transport),
      scheduler_(scheduler),
      events_(events),
      options_(std::move(options)),
      rng_(options_.seed) {}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
}

bool Replicator::SuspendedLocked(const Peer& p) const { return p.failures >= std::max(1, options_.breaker_failures); }

double Replicator::JitterLocked() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

void Replicator::SetPeers(const std::vector<ReplicationPeer>& peers) {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  std::map<std::string, const ReplicationPeer*, std::less<>> wanted;
  for (const ReplicationPeer& peer : peers) wanted.emplace(peer.name, &peer);
  for (auto& [name, p] : peers_) {
    if (p->enabled && !wanted.contains(name)) {
      p->enabled = false;
      ++p->timer;  // the armed timers do nothing
      ++p->poke_timer;
      p->poke_armed = false;
      p->poke_pending = false;
    }
  }
  for (const auto& [name, peer] : wanted) {
    auto it = peers_.find(name);
    if (it == peers_.end()) {
      auto p = std::make_shared<Peer>();
      p->address = {peer->name, peer->base_url};
      p->failures = std::max(0, peer->failures);
      peers_.emplace(name, p);
      ArmPullLocked(p, 0);
      continue;
    }
    const PeerPtr& p = it->second;
    p->address.base_url = peer->base_url;
    if (!p->enabled) {
      p->enabled = true;
      p->failures = std::max(0, peer->failures);
      if (p->pulling) {
        p->poked = true;  // go on as soon as the pull in flight ends
      } else {
        ArmPullLocked(p, 0);
      }
    }
  }
}

bool Replicator::OnPoke(std::string_view peer) {
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second->enabled) return false;
  const PeerPtr& p = it->second;
  if (p->pulling) {
    p->poked = true;
  } else {
    ArmPullLocked(p, 0);
  }
  return true;
}

void Replicator::OnLocalCommit() {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  const int64_t now = scheduler_.NowMs();
  for (auto& [name, p] : peers_) {
    if (!p->enabled || SuspendedLocked(*p)) continue;
    p->poke_pending = true;
    if (!p->poke_in_flight && !p->poke_armed) ArmPokeLocked(p, std::max<int64_t>(0, p->poke_not_before - now));
  }
}

std::optional<Replicator::PeerStatus> Replicator::StatusOf(std::string_view peer) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  const Peer& p = *it->second;
  PeerStatus status;
  status.enabled = p.enabled;
  status.pulling = p.pulling;
  status.failures = p.failures;
  status.suspended = SuspendedLocked(p);
  status.next_pull_ms = p.pulling || !p.enabled ? -1 : p.due_ms;
  status.pulls = p.pulls;
  status.long_poll = p.long_poll;
  status.poke_in_flight = p.poke_in_flight;
  status.poke_pending = p.poke_pending;
  status.pokes = p.pokes;
  return status;
}

size_t Replicator::long_polls() const {
  std::lock_guard lock(mu_);
  return long_polls_;
}

std::vector<PeerAddress> Replicator::LongPolling() const {
  std::lock_guard lock(mu_);
  std::vector<PeerAddress> out;
  for (const auto& [name, p] : peers_) {
    if (p->long_poll) out.push_back(p->address);
  }
  return out;
}

// ---- Pulls ----------------------------------------------------------------------

void Replicator::ArmPullLocked(const PeerPtr& p, int64_t delay_ms) {
  p->due_ms = scheduler_.NowMs() + delay_ms;
  const uint64_t token = ++p->timer;
  scheduler_.RunAfter(delay_ms, [this, p, token] { OnPullTimer(p, token); });
}

void Replicator::OnPullTimer(const PeerPtr& p, uint64_t token) {
  PeerAddress address;
  bool long_poll = false;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || !p->enabled || p->pulling || token != p->timer) return;
    p->pulling = true;
    p->poked = false;
    ++p->pulls;
    long_poll = options_.long_poll_seconds > 0 && long_polls_ < options_.max_long_polls;
    if (long_poll) ++long_polls_;
    p->long_poll = long_poll;
    address = p->address;
  }
  auto cursor = records_.Cursor(address.name);
  if (!cursor.ok()) {
    {
      std::lock_guard lock(mu_);
      if (p->long_poll) --long_polls_;
      p->long_poll = false;
    }
    Fail(p, PullFailure::Kind::kLocal, "reading the cursor: " + cursor.status().ToString(), 0);
    return;
  }
  ChangesQuery query;
  query.since = cursor->next;
  query.after = cursor->digest;
  query.limit = options_.page_max_records;
  query.max_bytes = options_.page_max_bytes;
  query.wait_seconds = long_poll ? options_.long_poll_seconds : 0;
  const int64_t started = scheduler_.NowMs();
  transport_.Pull(address, query, [this, p, cursor = *cursor, query, started](PullResult result) {
    OnPulled(p, cursor, query, started, std::move(result));
  });
}

void Replicator::OnPulled(const PeerPtr& p, const PeerCursor& cursor, const ChangesQuery& query, int64_t started_ms,
                          PullResult result) {
  {
    std::lock_guard lock(mu_);
    if (p->long_poll) --long_polls_;
    p->long_poll = false;
    if (stopped_) return;  // `pulling` stays set: nothing starts again
    if (!p->enabled) {
      p->pulling = false;
      return;
    }
  }
  const std::string& peer = p->address.name;
  switch (result.outcome) {
    case PullResult::Outcome::kPage: {
      const ChangePage& page = result.page;
      if (page.next < query.since) {
        return Fail(p, PullFailure::Kind::kTransport,
                    fmt::format("the page ends at {}, before the {} asked for", page.next, query.since), 0);
      }
      if (!cursor.log_id.empty() && page.log_id != cursor.log_id) {
        return Resync(p, fmt::format("the peer's change log is another one (log {}, the cursor names {})", page.log_id,
                                     cursor.log_id));
      }
      const bool progress = page.next > query.since;
      if (!progress) return Succeed(p, query, started_ms, false, page.more);
      auto applied = records_.Apply(peer, page.records, PeerCursor{page.log_id, page.next, page.digest});
      if (!applied.ok()) {
        const bool ours = applied.status().code() != StatusCode::kInvalidArgument &&
                          applied.status().code() != StatusCode::kPermissionDenied;
        return Fail(p, ours ? PullFailure::Kind::kLocal : PullFailure::Kind::kRefusedPage,
                    fmt::format("page {}..{} refused: {}", query.since, page.next - 1, applied.status().ToString()), 0);
      }
      events_.PageApplied(peer, page, *applied);
      return Succeed(p, query, started_ms, true, page.more);
    }
    case PullResult::Outcome::kCursorInvalid:
      if (query.since == 1) {
        return Fail(p, PullFailure::Kind::kTransport, "cursor_invalid for entry 1: " + result.error,
                    result.retry_after_ms);
      }
      return Resync(p, result.error);
    case PullResult::Outcome::kNotAccepted:
      return Fail(p, PullFailure::Kind::kNotAccepted, std::move(result.error), result.retry_after_ms);
    case PullResult::Outcome::kFailed:
      return Fail(p, PullFailure::Kind::kTransport, std::move(result.error), result.retry_after_ms);
  }
}

void Replicator::Succeed(const PeerPtr& p, const ChangesQuery& query, int64_t started_ms, bool progress, bool more) {
  int failures = 0;
  {
    std::lock_guard lock(mu_);
    p->pulling = false;
    failures = p->failures;
    p->failures = 0;
    p->resynced = false;
    if (stopped_ || !p->enabled) return;
    int64_t delay = 0;
    if (!more && !progress && !p->poked) {
      // Nothing new. A long poll that was answered early waits out the rest
      // of its time here, so a source that does not hold polls is not
      // asked in a loop.
      const int64_t now = scheduler_.NowMs();
      delay = query.wait_seconds > 0 ? std::max<int64_t>(0, started_ms + int64_t{query.wait_seconds} * 1000 - now)
                                     : int64_t{std::max(1, options_.idle_poll_seconds)} * 1000;
    }
    ArmPullLocked(p, delay);
  }
  events_.PullSucceeded(p->address.name, failures);
}

void Replicator::Fail(const PeerPtr& p, PullFailure::Kind kind, std::string error, int64_t retry_after_ms) {
  PullFailure failure;
  {
    std::lock_guard lock(mu_);
    p->pulling = false;
    if (stopped_) return;
    if (p->failures < (1 << 20)) ++p->failures;
    int64_t delay = BackoffMs(p->failures, options_.retry_min_seconds, options_.retry_max_seconds,
                              options_.breaker_failures, JitterLocked());
    // The peer may ask for a longer wait, up to retry_max.
    const int64_t max_ms = int64_t{std::max(options_.retry_min_seconds, options_.retry_max_seconds)} * 1000;
    delay = std::max(delay, std::min(retry_after_ms, max_ms));
    failure.kind = kind;
    failure.error = std::move(error);
    failure.failures = p->failures;
    failure.retry_in_ms = delay;
    failure.suspended = SuspendedLocked(*p);
    if (p->enabled) ArmPullLocked(p, delay);
  }
  events_.PullFailed(p->address.name, failure);
}

void Replicator::Resync(const PeerPtr& p, const std::string& why) {
  bool again = false;
  {
    std::lock_guard lock(mu_);
    again = p->resynced;
  }
  // A second resync in a row without a page in between: the peer's log is
  // unusable, not merely restored.
  if (again) return Fail(p, PullFailure::Kind::kTransport, "resync again without progress: " + why, 0);
  if (Status reset = records_.ResetCursor(p->address.name); !reset.ok()) {
    return Fail(p, PullFailure::Kind::kLocal, "resetting the cursor: " + reset.ToString(), 0);
  }
  {
    std::lock_guard lock(mu_);
    p->pulling = false;
    p->resynced = true;
    if (stopped_ || !p->enabled) return;
    ArmPullLocked(p, 0);
  }
  events_.Resync(p->address.name, why);
}

// ---- Pokes ----------------------------------------------------------------------

void Replicator::ArmPokeLocked(const PeerPtr& p, int64_t delay_ms) {
  p->poke_armed = true;
  const uint64_t token = ++p->poke_timer;
  scheduler_.RunAfter(delay_ms, [this, p, token] { OnPokeTimer(p, token); });
}

void Replicator::OnPokeTimer(const PeerPtr& p, uint64_t token) {
  std::string name;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || token != p->poke_timer) return;
    p->poke_armed = false;
    if (!p->enabled || !p->poke_pending || p->poke_in_flight || SuspendedLocked(*p)) return;
    name = p->address.name;
  }
  if (options_.peer_is_waiting && options_.peer_is_waiting(name)) {
    std::lock_guard lock(mu_);
    // A commit after this point arms another timer.
    if (!p->poke_armed) p->poke_pending = false;
    return;
  }
  PeerAddress address;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || !p->enabled || !p->poke_pending || p->poke_in_flight || p->poke_armed) return;
    p->poke_pending = false;
    p->poke_in_flight = true;
    ++p->pokes;
    address = p->address;
  }
  transport_.Poke(address, [this, p](PokeResult result) { OnPoked(p, result); });
}

void Replicator::OnPoked(const PeerPtr& p, const PokeResult& result) {
  {
    std::lock_guard lock(mu_);
    p->poke_in_flight = false;
    if (stopped_) return;
    const int64_t now = scheduler_.NowMs();
    if (result.status.ok()) {
      p->poke_failures = 0;
      p->poke_not_before = now + 60000 / std::max(1, options_.pokes_per_minute);
    } else {
      if (p->poke_failures < (1 << 20)) ++p->poke_failures;
      const int64_t delay = BackoffMs(p->poke_failures, options_.retry_min_seconds, options_.retry_max_seconds,
                                      options_.breaker_failures, JitterLocked());
      p->poke_not_before = now + std::max(delay, result.retry_after_ms);
      p->poke_pending = true;  // the news is still untold
    }
    if (p->enabled && p->poke_pending && !p->poke_armed && !SuspendedLocked(*p)) {
      ArmPokeLocked(p, std::max<int64_t>(0, p->poke_not_before - now));
    }
  }
  events_.PokeSent(p->address.name, result);
}

}  // namespace backpack::federation
