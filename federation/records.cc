#include "federation/records.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <charconv>
#include <condition_variable>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "protocol/encoding.h"

namespace backpack::federation {
namespace {

using Json = nlohmann::json;
using storage::Family;

constexpr std::string_view kLogIdKey = "fed_log_id";
constexpr std::string_view kCursorPrefix = "fed_cursor/";
constexpr std::string_view kGenesisKey = "#genesis";  // sorts before every record key
constexpr size_t kMaxCachedIdentities = 10000;

std::string LogKey(uint64_t seq) { return fmt::format("{:016x}", seq); }
std::optional<uint64_t> ParseLogKey(std::string_view key) {
  uint64_t seq = 0;
  if (key.size() != 16 || std::from_chars(key.data(), key.data() + 16, seq, 16).ec != std::errc()) return std::nullopt;
  return seq;
}
std::string RecordKey(std::string_view account, std::string_view key) {
  return fmt::format("{}/{}", account, key);
}
std::string DirectoryKey(std::string_view hash, std::string_view account) { return fmt::format("{}/{}", hash, account); }

Status Refuse(size_t index, const Status& why) {
  return Status(why.code(), fmt::format("record {}: {}", index, why.message()));
}

}  // namespace

// ---- HybridClock ----------------------------------------------------------------

protocol::RecordVersion HybridClock::Next() {
  std::lock_guard lock(mu_);
  last_ = protocol::NextVersion(last_, now_ms_());
  return last_;
}

void HybridClock::Observe(const protocol::RecordVersion& seen) {
  std::lock_guard lock(mu_);
  if (seen > last_) last_ = seen;
}

// ---- PeerCursor -------------------------------------------------------------------

Json PeerCursor::ToJson() const { return {{"log", log_id}, {"next", next}, {"digest", digest}}; }

std::optional<PeerCursor> PeerCursor::FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("log") || !j["log"].is_string() || !j.contains("next") ||
      !j["next"].is_number_unsigned() || !j.contains("digest") || !j["digest"].is_string()) {
    return std::nullopt;
  }
  PeerCursor c;
  c.log_id = j["log"];
  c.next = j["next"];
  c.digest = j["digest"];
  if (c.next == 0) return std::nullopt;
  return c;
}

std::string EntryDigest(std::string_view envelope) { return protocol::Sha256Hex(envelope); }

// ---- RecordStore --------------------------------------------------------------------

struct RecordStore::Impl {
  Impl(storage::Store& s, storage::KeyLocks& l, RecordStoreOptions o, MillisClock clock, RandomBytes rnd)
      : store(s), locks(l), options(std::move(o)), now_ms(clock), random(std::move(rnd)), hlc(clock) {}

  storage::Store& store;
  storage::KeyLocks& locks;
  RecordStoreOptions options;
  MillisClock now_ms;
  RandomBytes random;
  HybridClock hlc;

  // Change log numbering (see the header).
  std::mutex log_mu;
  std::condition_variable log_cv;
  uint64_t next_seq = 1;
  std::set<uint64_t> in_flight;
  std::atomic<uint64_t> watermark{0};
  std::string log_id;
  std::vector<std::function<void(uint64_t)>> listeners;

  std::mutex apply_mu;  // one page applied at a time

  std::mutex identity_mu;
  std::unordered_map<std::string, AccountIdentity> identities;  // by local id

  Status Open() {
    // The last entry: the highest key present, found by bisection with
    // one-key probes (no reverse scan needed).
    uint64_t lo = 0;              // known present (0: nothing)
    uint64_t hi = uint64_t{1} << 62;  // known absent
    auto present_from = [&](uint64_t seq) -> Result<bool> {
      bool found = false;
      BP_RETURN_IF_ERROR(store.ScanFrom(Family::kChangeLog, "", LogKey(seq),
                                        [&](std::string_view, std::string_view) { return !(found = true); }, 1));
      return found;
    };
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      auto found = present_from(mid);
      if (!found.ok()) return found.status();
      if (*found) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    // lo: the largest number with an entry at or after it; find that entry.
    uint64_t last = 0;
    BP_RETURN_IF_ERROR(store.ScanFrom(Family::kChangeLog, "", LogKey(lo), [&](std::string_view key, std::string_view value) {
      if (auto seq = ParseLogKey(key)) last = *seq;
      // Versions issued from now on stay above every version already logged.
      if (auto envelope = protocol::ParseEnvelope(value); envelope.ok()) hlc.Observe(envelope->version);
      return false;
    }, 1));
    next_seq = last + 1;
    watermark = last;

    auto stored = store.Get(Family::kMeta, kLogIdKey);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      log_id = **stored;
    } else {
      log_id = protocol::HexEncode(random(16));
      storage::WriteBatch batch;
      batch.Put(Family::kMeta, kLogIdKey, log_id);
      BP_RETURN_IF_ERROR(store.Write(batch));
    }
    return Status::Ok();
  }

  uint64_t Allocate() {
    std::lock_guard lock(log_mu);
    const uint64_t seq = next_seq++;
    in_flight.insert(seq);
    return seq;
  }

  void Finish(uint64_t seq) {
    uint64_t mark = 0;
    std::vector<std::function<void(uint64_t)>> notify;
    {
      std::lock_guard lock(log_mu);
      in_flight.erase(seq);
      mark = in_flight.empty() ? next_seq - 1 : *in_flight.begin() - 1;
      if (mark <= watermark) return;
      watermark = mark;
      notify = listeners;
    }
    log_cv.notify_all();
    for (const auto& listener : notify) listener(mark);
  }

  Result<std::optional<Json>> StoredGenesis(std::string_view account) {
    auto stored = store.Get(Family::kFedRecords, RecordKey(account, kGenesisKey));
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return std::optional<Json>();
    Json genesis = Json::parse(**stored, nullptr, false);
    if (genesis.is_discarded()) return DataLoss("a stored genesis record is not JSON");
    return std::optional<Json>(std::move(genesis));
  }

  Result<std::optional<protocol::RecordEnvelope>> StoredRecord(std::string_view account, std::string_view key) {
    auto stored = store.Get(Family::kFedRecords, RecordKey(account, key));
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return std::optional<protocol::RecordEnvelope>();
    auto envelope = protocol::ParseEnvelope(**stored);
    if (!envelope.ok()) return DataLoss("a stored record is malformed: " + envelope.status().message());
    return std::optional<protocol::RecordEnvelope>(std::move(*envelope));
  }

  // The directory index follows directory records and their tombstones.
  static void IndexDirectory(storage::WriteBatch& batch, const protocol::RecordEnvelope& e) {
    if (e.type == protocol::RecordType::kDirectory) {
      const std::string key = DirectoryKey(e.record["email_sha256"].get<std::string>(), e.account);
      if (e.record["discoverable"].get<bool>()) {
        batch.Put(Family::kDirectory, key, "");
      } else {
        batch.Delete(Family::kDirectory, key);
      }
    } else if (e.type == protocol::RecordType::kTombstone && e.key.starts_with("directory/")) {
      batch.Delete(Family::kDirectory, DirectoryKey(std::string_view(e.key).substr(10), e.account));
    }
  }

  Result<AccountIdentity> LoadIdentity(const std::string& local_id) {
    auto stored = store.Get(Family::kFedIdentity, local_id);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return NotFound("no federated identity yet");
    const Json j = Json::parse(**stored, nullptr, false);
    if (!j.is_object() || !j.contains("account") || !j.contains("genesis") || !j.contains("key")) {
      return DataLoss("a stored federated identity is malformed");
    }
    auto key = protocol::PrivateKey::FromPem(j["key"].get<std::string>());
    if (!key.ok()) return DataLoss("a stored account key is unreadable: " + key.status().message());
    AccountIdentity id;
    id.local_id = local_id;
    id.account = j["account"];
    id.genesis = j["genesis"];
    id.key = std::make_shared<const protocol::PrivateKey>(std::move(*key));
    return id;
  }

  // Signs and writes one record of `id` (the caller holds its record key lock).
  Result<std::string> PublishLocked(const AccountIdentity& id, Json record) {
    record["account"] = id.account;
    record["version"] = hlc.Next().ToString();
    const bool home = record.value("type", "") == "home";
    auto text = protocol::SignRecord(record, *id.key, home ? &id.genesis : nullptr);
    if (!text.ok()) return text.status();
    auto envelope = protocol::ParseEnvelope(*text);
    if (!envelope.ok()) return envelope.status();
    storage::WriteBatch batch;
    batch.Put(Family::kFedRecords, RecordKey(id.account, envelope->key), *text);
    IndexDirectory(batch, *envelope);
    const uint64_t seq = Allocate();
    batch.Put(Family::kChangeLog, LogKey(seq), *text);
    const Status written = store.Write(batch);
    Finish(seq);  // a failed write leaves a gap, which readers skip
    if (!written.ok()) return written;
    return *text;
  }
};

RecordStore::RecordStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<RecordStore>> RecordStore::Open(storage::Store& store, storage::KeyLocks& locks,
                                                       RecordStoreOptions options, MillisClock now_ms,
                                                       RandomBytes random) {
  auto impl = std::make_unique<Impl>(store, locks, std::move(options), std::move(now_ms), std::move(random));
  BP_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<RecordStore>(new RecordStore(std::move(impl)));
}

RecordStore::~RecordStore() = default;

Result<AccountIdentity> RecordStore::Identity(const std::string& local_id) {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.identity_mu);
    if (auto it = d.identities.find(local_id); it != d.identities.end()) return it->second;
  }
  // Two key locks are never held at once (KeyLocks orders the stripes of
  // one Lock() call only; nested calls could deadlock): the identity's lock
  // is released before the home record's is taken.
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({"fed-identity/" + local_id}));
  auto loaded = d.LoadIdentity(local_id);
  if (!loaded.ok() && loaded.status().code() != StatusCode::kNotFound) return loaded.status();
  if (!loaded.ok()) {
    // First use: the account key, its genesis record and the id they give.
    auto key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
    if (!key.ok()) return key.status();
    AccountIdentity id;
    id.local_id = local_id;
    id.genesis = protocol::MakeGenesis(key->public_key(), d.now_ms() / 1000, protocol::HexEncode(d.random(16)));
    id.account = protocol::AccountIdOf(id.genesis);
    const Json stored = {{"account", id.account}, {"genesis", id.genesis}, {"key", key->ToPem()}};
    storage::WriteBatch batch;
    batch.Put(Family::kFedIdentity, local_id, stored.dump());
    batch.Put(Family::kFedIdentity, "@" + id.account, local_id);
    batch.Put(Family::kFedRecords, RecordKey(id.account, kGenesisKey), id.genesis.dump());
    BP_RETURN_IF_ERROR(d.store.Write(batch));
    id.key = std::make_shared<const protocol::PrivateKey>(std::move(*key));
    loaded = std::move(id);
  }
  guard.reset();
  // The home record, published once (again after a crash between the two writes).
  {
    auto home_guard = d.locks.Lock({"fed-record/" + RecordKey(loaded->account, "home")});
    auto home = d.StoredRecord(loaded->account, "home");
    if (!home.ok()) return home.status();
    if (!home->has_value()) {
      auto published = d.PublishLocked(*loaded, {{"type", "home"}, {"node", d.options.node_name}, {"url", d.options.node_url}});
      if (!published.ok()) return published.status();
    }
  }
  std::lock_guard lock(d.identity_mu);
  if (d.identities.size() >= kMaxCachedIdentities) d.identities.clear();
  d.identities.emplace(local_id, *loaded);
  return loaded;
}

Result<std::optional<std::string>> RecordStore::LocalAccount(std::string_view account) {
  return impl_->store.Get(Family::kFedIdentity, "@" + std::string(account));
}

Result<std::optional<AccountIdentity>> RecordStore::FindIdentity(const std::string& local_id) {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.identity_mu);
    if (auto it = d.identities.find(local_id); it != d.identities.end()) return std::optional(it->second);
  }
  auto loaded = d.LoadIdentity(local_id);
  if (!loaded.ok()) {
    if (loaded.status().code() == StatusCode::kNotFound) return std::optional<AccountIdentity>();
    return loaded.status();
  }
  return std::optional(std::move(*loaded));
}

Result<std::vector<std::string>> RecordStore::LocalAccounts(std::string_view after, size_t limit) {
  std::vector<std::string> out;
  if (limit == 0) return out;
  // Local ids and "@" + federated id share the family: skip over the latter.
  std::string start = after.empty() ? std::string() : std::string(after) + '\0';
  for (int pass = 0; pass < 2 && out.size() < limit; ++pass) {
    bool skipped = false;
    BP_RETURN_IF_ERROR(impl_->store.ScanFrom(Family::kFedIdentity, "", start, [&](std::string_view key, std::string_view) {
      if (key.starts_with('@')) {
        skipped = true;
        return false;
      }
      out.emplace_back(key);
      return out.size() < limit;
    }));
    if (!skipped) break;
    start = std::max<std::string>(start, "A");  // '@' + 1: past every federated id
  }
  return out;
}

Result<std::string> RecordStore::Publish(const std::string& local_id, Json record) {
  auto id = Identity(local_id);
  if (!id.ok()) return id.status();
  // The record key decides the lock: versions of one record are written in order.
  record["account"] = id->account;
  record["version"] = "0.0";  // replaced when published
  auto key = protocol::RecordKeyOf(record);
  if (!key.ok()) return key.status();
  auto guard = impl_->locks.Lock({"fed-record/" + RecordKey(id->account, *key)});
  return impl_->PublishLocked(*id, std::move(record));
}

Result<std::optional<std::string>> RecordStore::Get(std::string_view account, std::string_view key) {
  return impl_->store.Get(Family::kFedRecords, RecordKey(account, key));
}

Result<std::vector<std::string>> RecordStore::AccountRecords(std::string_view account) {
  std::vector<std::string> out;
  const std::string prefix = std::string(account) + "/";
  BP_RETURN_IF_ERROR(impl_->store.Scan(Family::kFedRecords, prefix, [&](std::string_view key, std::string_view value) {
    if (key.substr(prefix.size()) != kGenesisKey) out.emplace_back(value);
    return true;
  }));
  return out;
}

Result<std::optional<Json>> RecordStore::Genesis(std::string_view account) { return impl_->StoredGenesis(account); }

Result<std::optional<DirectoryEntry>> RecordStore::Lookup(std::string_view email_sha256) {
  Impl& d = *impl_;
  std::vector<std::string> accounts;
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kDirectory, std::string(email_sha256) + "/",
                                  [&](std::string_view key, std::string_view) {
                                    accounts.emplace_back(key.substr(email_sha256.size() + 1));
                                    return true;
                                  }));
  // One address is verified by one account per node; across nodes the most
  // recently published directory record wins.
  std::optional<DirectoryEntry> best;
  protocol::RecordVersion best_version;
  for (const std::string& account : accounts) {
    auto directory = d.StoredRecord(account, "directory/" + std::string(email_sha256));
    auto home = Get(account, "home");
    auto genesis = d.StoredGenesis(account);
    if (!directory.ok()) return directory.status();
    if (!home.ok()) return home.status();
    if (!genesis.ok()) return genesis.status();
    if (!directory->has_value() || !home->has_value() || !genesis->has_value()) continue;
    if (best && (*directory)->version <= best_version) continue;
    auto text = Get(account, "directory/" + std::string(email_sha256));
    if (!text.ok()) return text.status();
    best = DirectoryEntry{account, **text, **home, **genesis};
    best_version = (*directory)->version;
  }
  return best;
}

std::string RecordStore::LogId() { return impl_->log_id; }

uint64_t RecordStore::Watermark() const { return impl_->watermark.load(); }

Result<ChangePage> RecordStore::Changes(uint64_t since, std::string_view after, size_t max_records, size_t max_bytes,
                                        const std::function<bool(const protocol::RecordEnvelope&)>& include) {
  Impl& d = *impl_;
  const uint64_t mark = Watermark();
  if (since == 0 || since > mark + 1) {
    return FailedPrecondition(fmt::format("cursor_invalid: entry {} is beyond this log (it ends at {})", since, mark));
  }
  if (since > 1) {
    auto before = d.store.Get(Family::kChangeLog, LogKey(since - 1));
    if (!before.ok()) return before.status();
    if (!before->has_value() || EntryDigest(**before) != after) {
      return FailedPrecondition(fmt::format("cursor_invalid: entry {} is not the one the cursor names", since - 1));
    }
  }
  ChangePage page;
  page.log_id = d.log_id;
  page.next = since;
  page.digest = std::string(after);
  size_t bytes = 0;
  const std::string end = LogKey(mark + 1);
  Status error;
  BP_RETURN_IF_ERROR(d.store.ScanFrom(Family::kChangeLog, "", LogKey(since), [&](std::string_view key, std::string_view value) {
    if (key >= end) return false;
    auto seq = ParseLogKey(key);
    if (!seq) {
      error = DataLoss("a change log key is malformed");
      return false;
    }
    bool wanted = true;
    if (include) {
      auto envelope = protocol::ParseEnvelope(value);
      if (!envelope.ok()) {
        error = DataLoss("a change log entry is malformed: " + envelope.status().message());
        return false;
      }
      wanted = include(*envelope);
    }
    if (wanted) {
      if (page.records.size() >= max_records || (!page.records.empty() && bytes + value.size() > max_bytes)) {
        page.more = true;
        return false;
      }
      bytes += value.size();
      page.records.emplace_back(value);
    }
    page.next = *seq + 1;
    page.digest = EntryDigest(value);
    return true;
  }));
  BP_RETURN_IF_ERROR(error);
  return page;
}

uint64_t RecordStore::WaitFor(uint64_t number, int64_t deadline_ms) {
  Impl& d = *impl_;
  std::unique_lock lock(d.log_mu);
  while (d.watermark.load() < number) {
    const int64_t left = deadline_ms - d.now_ms();
    if (left <= 0) break;
    d.log_cv.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 1000)));
  }
  return d.watermark.load();
}

void RecordStore::OnCommit(std::function<void(uint64_t)> listener) {
  std::lock_guard lock(impl_->log_mu);
  impl_->listeners.push_back(std::move(listener));
}

Result<ApplyResult> RecordStore::Apply(std::string_view peer, const std::vector<std::string>& records,
                                       const PeerCursor& cursor) {
  Impl& d = *impl_;
  std::lock_guard lock(d.apply_mu);
  const int64_t now = d.now_ms();
  storage::WriteBatch batch;
  ApplyResult result;
  // What this page has written so far, so later records see earlier ones.
  std::map<std::string, protocol::RecordVersion> versions;  // account/key -> version
  std::map<std::string, std::string> homes;                 // account -> home node
  std::map<std::string, Json> geneses;                      // account -> genesis
  for (size_t i = 0; i < records.size(); ++i) {
    auto envelope = protocol::ParseEnvelope(records[i]);
    if (!envelope.ok()) return Refuse(i, envelope.status());
    const protocol::RecordEnvelope& e = *envelope;
    auto local = LocalAccount(e.account);
    if (!local.ok()) return local.status();
    if (local->has_value()) return Refuse(i, PermissionDenied("account " + e.account + " is at home on this node"));

    // The account key, from the genesis record whose hash is the account id.
    Json genesis;
    if (auto it = geneses.find(e.account); it != geneses.end()) {
      genesis = it->second;
    } else {
      auto stored = d.StoredGenesis(e.account);
      if (!stored.ok()) return stored.status();
      if (stored->has_value()) genesis = **stored;
    }
    if (genesis.is_null()) {
      if (e.genesis.is_null()) {
        return Refuse(i, InvalidArgument("no genesis record is known for account " + e.account));
      }
      genesis = e.genesis;
      batch.Put(Family::kFedRecords, RecordKey(e.account, kGenesisKey), genesis.dump());
    }
    auto key = protocol::GenesisKey(genesis, e.account);
    if (!key.ok()) return Refuse(i, key.status());
    geneses[e.account] = genesis;
    if (Status verified = protocol::VerifyEnvelope(e, *key, now, d.options.max_future_ms); !verified.ok()) {
      return Refuse(i, verified);
    }

    // Only the account's home writes its records.
    std::string home;
    if (auto it = homes.find(e.account); it != homes.end()) {
      home = it->second;
    } else {
      auto stored = d.StoredRecord(e.account, "home");
      if (!stored.ok()) return stored.status();
      if (stored->has_value()) home = (*stored)->record["node"].get<std::string>();
    }
    if (e.type == protocol::RecordType::kHome) {
      const std::string named = e.record["node"];
      if (named != peer) {
        return Refuse(i, PermissionDenied(fmt::format("{} sent a home record naming {} for account {}", peer, named,
                                                      e.account)));
      }
      if (!home.empty() && home != peer) {
        return Refuse(i, PermissionDenied(fmt::format("account {} is at home on {}, not {}", e.account, home, peer)));
      }
    } else if (home != peer) {
      return Refuse(i, PermissionDenied(fmt::format("{} is not the home of account {}", peer, e.account)));
    }

    // The newer version wins; a tombstone replaces the record it names.
    const std::string record_key = RecordKey(e.account, e.key);
    std::optional<protocol::RecordVersion> held;
    if (auto it = versions.find(record_key); it != versions.end()) {
      held = it->second;
    } else {
      auto stored = d.StoredRecord(e.account, e.key);
      if (!stored.ok()) return stored.status();
      if (stored->has_value()) held = (*stored)->version;
    }
    if (held && e.version <= *held) {
      ++result.older;
      continue;
    }
    batch.Put(Family::kFedRecords, record_key, records[i]);
    Impl::IndexDirectory(batch, e);
    versions[record_key] = e.version;
    if (e.type == protocol::RecordType::kHome) homes[e.account] = peer;
    ++result.applied;
  }
  batch.Put(Family::kMeta, std::string(kCursorPrefix) + std::string(peer), cursor.ToJson().dump());
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  return result;
}

Result<PeerCursor> RecordStore::Cursor(std::string_view peer) {
  auto stored = impl_->store.Get(Family::kMeta, std::string(kCursorPrefix) + std::string(peer));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return PeerCursor{};
  auto cursor = PeerCursor::FromJson(Json::parse(**stored, nullptr, false));
  if (!cursor) return DataLoss("a stored peer cursor is malformed");
  return *cursor;
}

Status RecordStore::ResetCursor(std::string_view peer) {
  storage::WriteBatch batch;
  batch.Delete(Family::kMeta, std::string(kCursorPrefix) + std::string(peer));
  return impl_->store.Write(batch);
}

}  // namespace backpack::federation
