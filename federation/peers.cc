#include "federation/peers.h"

#include <algorithm>
#include <utility>

#include "config/config.h"

namespace backpack::federation {
namespace {

using nlohmann::json;

constexpr storage::Family kFamily = storage::Family::kPeers;

bool IsCapabilityChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' || c == '-';
}

std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 100)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (text.size() > 100) out += "...";
  return out;
}

Result<std::vector<std::string>> ReadCapabilities(const json& value, std::string_view where) {
  if (!value.is_array()) return InvalidArgument(std::string(where) + ": capabilities must be an array of strings");
  if (value.size() > kMaxCapabilities) {
    return InvalidArgument(std::string(where) + ": more than " + std::to_string(kMaxCapabilities) + " capabilities");
  }
  std::vector<std::string> out;
  for (const json& entry : value) {
    if (!entry.is_string()) return InvalidArgument(std::string(where) + ": a capability is not a string");
    const std::string capability = entry.get<std::string>();
    if (capability.empty() || capability.size() > kMaxCapabilityBytes ||
        !std::all_of(capability.begin(), capability.end(), IsCapabilityChar)) {
      return InvalidArgument(std::string(where) + ": the capability \"" + Shown(capability) + "\" is not 1.." +
                             std::to_string(kMaxCapabilityBytes) + " characters of [a-z0-9._/-]");
    }
    if (std::find(out.begin(), out.end(), capability) != out.end()) {
      return InvalidArgument(std::string(where) + ": the capability " + capability + " is repeated");
    }
    out.push_back(capability);
  }
  return out;
}

std::string StringMember(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t IntMember(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

bool BoolMember(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

std::string_view PeerStateName(PeerState state) {
  switch (state) {
    case PeerState::kPending: return "pending";
    case PeerState::kActive: return "active";
    case PeerState::kSuspended: return "suspended";
    case PeerState::kBlocked: return "blocked";
  }
  return "pending";
}

std::optional<PeerState> ParsePeerState(std::string_view name) {
  for (PeerState state : {PeerState::kPending, PeerState::kActive, PeerState::kSuspended, PeerState::kBlocked}) {
    if (PeerStateName(state) == name) return state;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Handshakes.

Result<Handshake> ParseHandshake(std::string_view json_text, bool is_answer) {
  const std::string what = is_answer ? "the handshake answer" : "the handshake";
  if (json_text.size() > kMaxHandshakeBytes) {
    return InvalidArgument(what + " is larger than " + std::to_string(kMaxHandshakeBytes) + " bytes");
  }
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument(what + " is not a JSON object");
  Handshake out;
  const auto node = doc.find("node");
  if (node == doc.end() || !node->is_string() || !config::IsNodeName(node->get<std::string>())) {
    return InvalidArgument(what + ": node must be a node name (host[:port] in lower case)");
  }
  out.node = node->get<std::string>();
  const auto base_url = doc.find("base_url");
  if (base_url == doc.end() || !base_url->is_string()) return InvalidArgument(what + ": base_url is missing");
  auto url = config::ParseBaseUrl(base_url->get<std::string>());
  if (!url.ok()) return InvalidArgument(what + ": base_url: " + url.status().message());
  if (url->authority != out.node) {
    return InvalidArgument(what + ": the authority of base_url (" + url->authority + ") is not the node (" +
                           out.node + ")");
  }
  out.base_url = url->url;
  const auto capabilities = doc.find("capabilities");
  if (capabilities != doc.end()) {
    auto read = ReadCapabilities(*capabilities, what);
    if (!read.ok()) return read.status();
    out.capabilities = std::move(*read);
  }
  if (is_answer) {
    out.state = StringMember(doc, "state");
    if (out.state != "active" && out.state != "pending") {
      return InvalidArgument(what + ": state must be \"active\" or \"pending\"");
    }
  }
  return out;
}

std::string ToJson(const Handshake& handshake) {
  json doc = {{"node", handshake.node}, {"base_url", handshake.base_url}, {"capabilities", handshake.capabilities}};
  if (!handshake.state.empty()) doc["state"] = handshake.state;
  return doc.dump();
}

// ---------------------------------------------------------------------------
// Records.

json ToJson(const PeerRecord& record) {
  return {{"name", record.name},
          {"base_url", record.base_url},
          {"state", PeerStateName(record.state)},
          {"since", record.since},
          {"capabilities", record.capabilities},
          {"failures", record.failures},
          {"next_attempt", record.next_attempt},
          {"last_error", record.last_error},
          {"origin", record.origin},
          {"approved", record.approved},
          {"blocked", record.blocked},
          {"remote_state", record.remote_state},
          {"created", record.created},
          {"last_seen", record.last_seen},
          {"cursor", record.cursor}};
}

Result<PeerRecord> PeerRecordFromJson(std::string_view json_text) {
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return DataLoss("a peer record is not a JSON object");
  PeerRecord out;
  out.name = StringMember(doc, "name");
  if (out.name.empty()) return DataLoss("a peer record has no name");
  out.base_url = StringMember(doc, "base_url");
  const auto state = ParsePeerState(StringMember(doc, "state"));
  if (!state) return DataLoss("the peer record of " + out.name + " has no valid state");
  out.state = *state;
  out.since = IntMember(doc, "since");
  if (const auto it = doc.find("capabilities"); it != doc.end() && it->is_array()) {
    for (const json& c : *it) {
      if (c.is_string()) out.capabilities.push_back(c.get<std::string>());
    }
  }
  out.failures = static_cast<int>(std::clamp<int64_t>(IntMember(doc, "failures"), 0, 1 << 20));
  out.next_attempt = IntMember(doc, "next_attempt");
  out.last_error = StringMember(doc, "last_error");
  out.origin = StringMember(doc, "origin");
  out.approved = BoolMember(doc, "approved");
  out.blocked = BoolMember(doc, "blocked");
  out.remote_state = StringMember(doc, "remote_state");
  out.created = IntMember(doc, "created");
  out.last_seen = IntMember(doc, "last_seen");
  if (const auto it = doc.find("cursor"); it != doc.end()) out.cursor = *it;
  return out;
}

PeerState Derive(const PeerRecord& record, const PeerPolicy& policy) {
  const bool config_blocked =
      std::find(policy.blocked.begin(), policy.blocked.end(), record.name) != policy.blocked.end();
  if (record.blocked || config_blocked) return PeerState::kBlocked;
  if (!record.approved) return PeerState::kPending;
  if (record.failures >= policy.breaker_failures) return PeerState::kSuspended;
  return record.remote_state == "active" ? PeerState::kActive : PeerState::kPending;
}

int64_t BackoffSeconds(int failures, const PeerPolicy& policy) {
  const int64_t max = std::max(1, policy.retry_max_seconds);
  int64_t delay = std::max(1, policy.retry_min_seconds);
  for (int i = 1; i < failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

// ---------------------------------------------------------------------------
// The table.

PeerTable::PeerTable(storage::Store& store, PeerPolicy policy) : store_(store), policy_(std::move(policy)) {}

bool PeerTable::BlockedByConfig(std::string_view name) const {
  return std::find(policy_.blocked.begin(), policy_.blocked.end(), name) != policy_.blocked.end();
}

Result<std::optional<PeerRecord>> PeerTable::GetLocked(std::string_view name) {
  auto value = store_.Get(kFamily, name);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<PeerRecord>();
  auto record = PeerRecordFromJson(**value);
  if (!record.ok()) return record.status();
  return std::optional<PeerRecord>(std::move(*record));
}

Result<std::optional<PeerRecord>> PeerTable::Get(std::string_view name) {
  std::lock_guard lock(mu_);
  return GetLocked(name);
}

Result<std::vector<PeerRecord>> PeerTable::List() {
  std::vector<PeerRecord> out;
  Status failed;
  const Status scanned = store_.Scan(
      kFamily, "",
      [&](std::string_view, std::string_view value) {
        auto record = PeerRecordFromJson(value);
        if (!record.ok()) {
          failed = record.status();
          return false;
        }
        out.push_back(std::move(*record));
        return true;
      },
      policy_.max_peers + 1);
  BP_RETURN_IF_ERROR(scanned);
  BP_RETURN_IF_ERROR(failed);
  return out;
}

Status PeerTable::CountLocked() {
  if (count_) return Status::Ok();
  size_t n = 0;
  BP_RETURN_IF_ERROR(store_.Scan(kFamily, "", [&n](std::string_view, std::string_view) {
    ++n;
    return true;
  }));
  count_ = n;
  return Status::Ok();
}

Status PeerTable::PutLocked(PeerRecord& record, int64_t now, storage::WriteBatch batch) {
  const PeerState state = Derive(record, policy_);
  if (state != record.state || record.since == 0) record.since = now;
  record.state = state;
  batch.Put(kFamily, record.name, ToJson(record).dump());
  return store_.Write(batch);
}

Status PeerTable::ApplyConfig(const std::vector<std::string>& peer_urls, int64_t now) {
  std::lock_guard lock(mu_);
  auto records = List();
  if (!records.ok()) return records.status();
  for (PeerRecord& record : *records) {
    if (Derive(record, policy_) != record.state) BP_RETURN_IF_ERROR(PutLocked(record, now));
  }
  for (const std::string& text : peer_urls) {
    auto url = config::ParseBaseUrl(text);
    if (!url.ok()) return InvalidArgument("federation.peers: " + url.status().message());
    if (url->authority == policy_.self) return InvalidArgument("federation.peers: " + url->url + " is this node");
    auto existing = GetLocked(url->authority);
    if (!existing.ok()) return existing.status();
    PeerRecord record;
    if (existing->has_value()) {
      record = std::move(**existing);
    } else {
      record.name = url->authority;
      record.created = now;
    }
    record.base_url = url->url;
    record.origin = "config";
    record.approved = true;
    if (!record.blocked && !BlockedByConfig(record.name)) record.next_attempt = now;
    BP_RETURN_IF_ERROR(PutLocked(record, now));
  }
  for (const std::string& name : policy_.blocked) {
    auto existing = GetLocked(name);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) continue;  // its state was recomputed above
    PeerRecord record;
    record.name = name;
    record.origin = "config";
    record.created = now;
    BP_RETURN_IF_ERROR(PutLocked(record, now));
  }
  count_.reset();
  return Status::Ok();
}

Result<PeerRecord> PeerTable::Add(std::string_view base_url, int64_t now) {
  auto url = config::ParseBaseUrl(base_url);
  if (!url.ok()) return url.status();
  if (url->authority == policy_.self) return InvalidArgument(url->url + " is this node");
  std::lock_guard lock(mu_);
  auto existing = GetLocked(url->authority);
  if (!existing.ok()) return existing.status();
  PeerRecord record;
  if (existing->has_value()) {
    record = std::move(**existing);
  } else {
    BP_RETURN_IF_ERROR(CountLocked());
    if (*count_ >= policy_.max_peers) return ResourceExhausted("the peer table is full");
    record.name = url->authority;
    record.origin = "operator";
    record.created = now;
  }
  if (record.blocked || BlockedByConfig(record.name)) {
    return FailedPrecondition(record.name + " is blocked; unblock it first");
  }
  record.base_url = url->url;
  record.approved = true;
  record.next_attempt = now;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  if (!existing->has_value() && count_) ++*count_;
  return record;
}

Result<PeerRecord> PeerTable::Approve(std::string_view name, int64_t now) {
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  if (record.blocked || BlockedByConfig(record.name)) {
    return FailedPrecondition(record.name + " is blocked; unblock it first");
  }
  record.approved = true;
  if (!record.base_url.empty()) record.next_attempt = now;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  return record;
}

Result<PeerRecord> PeerTable::Block(std::string_view name, int64_t now) {
  if (!config::IsNodeName(name)) return InvalidArgument("\"" + Shown(name) + "\" is not a node name");
  if (name == policy_.self) return InvalidArgument(std::string(name) + " is this node");
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  PeerRecord record;
  if (existing->has_value()) {
    record = std::move(**existing);
  } else {
    // Blocking is allowed past max_peers: it is how an operator stops a flood.
    record.name = std::string(name);
    record.origin = "operator";
    record.created = now;
  }
  record.blocked = true;
  record.next_attempt = 0;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  if (!existing->has_value() && count_) ++*count_;
  return record;
}

Result<PeerRecord> PeerTable::Unblock(std::string_view name, int64_t now) {
  if (BlockedByConfig(name)) {
    return FailedPrecondition(std::string(name) + " is blocked by federation.blocked in the configuration; remove it there");
  }
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  record.blocked = false;
  record.failures = 0;
  record.next_attempt = record.approved && !record.base_url.empty() ? now : 0;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  return record;
}

Result<PeerRecord> PeerTable::OnHandshake(const Handshake& from, int64_t now) {
  if (from.node == policy_.self) return InvalidArgument("a handshake from this node itself");
  if (BlockedByConfig(from.node)) return PermissionDenied("blocked: the node " + from.node + " is blocked here");
  std::lock_guard lock(mu_);
  auto existing = GetLocked(from.node);
  if (!existing.ok()) return existing.status();
  PeerRecord record;
  if (existing->has_value()) {
    record = std::move(**existing);
    if (record.blocked) return PermissionDenied("blocked: the node " + from.node + " is blocked here");
  } else {
    BP_RETURN_IF_ERROR(CountLocked());
    if (*count_ >= policy_.max_peers) return ResourceExhausted("the peer table is full");
    record.name = from.node;
    record.origin = "inbound";
    record.created = now;
  }
  // The operator's or the configuration's URL stays; a node that came by
  // itself is reached where it says.
  if (record.base_url.empty() || record.origin == "inbound") record.base_url = from.base_url;
  if (policy_.open) record.approved = true;
  record.capabilities = from.capabilities;
  record.remote_state = "active";
  record.failures = 0;
  record.last_error.clear();
  record.last_seen = now;
  if (Derive(record, policy_) == PeerState::kActive) record.next_attempt = 0;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  if (!existing->has_value() && count_) ++*count_;
  return record;
}

Result<PeerRecord> PeerTable::OnAnswer(std::string_view name, const Handshake& answer, int64_t now) {
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  record.capabilities = answer.capabilities;
  record.remote_state = answer.state;
  record.failures = 0;
  record.last_error.clear();
  record.last_seen = now;
  record.next_attempt = answer.state == "pending" ? now + std::max(1, policy_.retry_max_seconds) : 0;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  return record;
}

Result<PeerRecord> PeerTable::RecordFailure(std::string_view name, std::string_view error, std::string_view remote_state,
                                            int64_t now) {
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  if (record.failures < (1 << 20)) ++record.failures;
  record.last_error = std::string(error.substr(0, 1000));
  if (!remote_state.empty()) record.remote_state = std::string(remote_state);
  record.next_attempt = record.blocked ? 0 : now + BackoffSeconds(record.failures, policy_);
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  return record;
}

Result<PeerRecord> PeerTable::RecordSuccess(std::string_view name, int64_t now) {
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  if (record.failures == 0 && record.last_error.empty()) return record;  // nothing to write
  record.failures = 0;
  record.last_error.clear();
  record.last_seen = now;
  BP_RETURN_IF_ERROR(PutLocked(record, now));
  return record;
}

Result<std::vector<PeerRecord>> PeerTable::Due(int64_t now) {
  auto records = List();
  if (!records.ok()) return records.status();
  std::vector<PeerRecord> out;
  for (PeerRecord& record : *records) {
    if (record.state != PeerState::kBlocked && record.approved && !record.base_url.empty() &&
        record.next_attempt > 0 && record.next_attempt <= now) {
      out.push_back(std::move(record));
    }
  }
  return out;
}

Result<std::optional<int64_t>> PeerTable::NextAttempt() {
  auto records = List();
  if (!records.ok()) return records.status();
  std::optional<int64_t> next;
  for (const PeerRecord& record : *records) {
    if (record.state == PeerState::kBlocked || !record.approved || record.base_url.empty() ||
        record.next_attempt <= 0) {
      continue;
    }
    next = next ? std::min(*next, record.next_attempt) : record.next_attempt;
  }
  return next;
}

Result<PeerRecord> PeerTable::Update(std::string_view name, int64_t now,
                                     const std::function<Status(PeerRecord&)>& change, storage::WriteBatch batch) {
  std::lock_guard lock(mu_);
  auto existing = GetLocked(name);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return NotFound("no peer is named " + Shown(name));
  PeerRecord record = std::move(**existing);
  BP_RETURN_IF_ERROR(change(record));
  record.name = std::string(name);  // the key cannot change
  BP_RETURN_IF_ERROR(PutLocked(record, now, std::move(batch)));
  return record;
}

}  // namespace backpack::federation
