#include "daemon/earner_federation.h"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "base/time.h"
#include "config/config.h"
#include "daemon/accounts.h"
#include "daemon/badges.h"
#include "daemon/collections.h"
#include "daemon/log.h"
#include "federation/records.h"
#include "protocol/account_record.h"
#include "protocol/email_address.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
using protocol::RecordEnvelope;
using protocol::RecordType;

namespace {

constexpr size_t kStripes = 64;
constexpr size_t kMaxQueued = 10000;
constexpr size_t kBadgePage = 500;
constexpr auto kSweepInterval = std::chrono::hours(1);
constexpr auto kBusyStep = std::chrono::seconds(5);
constexpr auto kIdleStep = std::chrono::seconds(60);

std::string BadgeKey(std::string_view id) { return "badge/" + std::string(id); }
std::string DirectoryKey(std::string_view hash) { return "directory/" + std::string(hash); }

bool IsAccountId(std::string_view s) {
  if (s.size() != 33 || s[0] != 'a') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); });
}

// The mirrors record's content (none published: no mirrors, not all).
struct Mirrors {
  std::vector<std::string> nodes;
  bool all = false;
  bool published = false;
};

// What is held for an account, read once from its records.
struct Held {
  std::string home_node;
  std::string home_url;
  Mirrors mirrors;
  std::map<std::string, bool> directory;         // hash -> discoverable (live directory records)
  std::map<std::string, RecordEnvelope> badges;  // badge id -> live badge record
};

Result<RecordEnvelope> ParseStored(std::string_view text) {
  auto envelope = protocol::ParseEnvelope(text);
  if (!envelope.ok()) return DataLoss("a stored federation record is malformed: " + envelope.status().message());
  return envelope;
}

void ReadMirrors(const RecordEnvelope& e, Mirrors& out) {
  out.nodes.clear();
  for (const json& node : e.record["nodes"]) out.nodes.push_back(node.get<std::string>());
  const auto all = e.record.find("mirror_all");
  out.all = all != e.record.end() && all->is_boolean() && all->get<bool>();
  out.published = true;
}

Result<Held> ReadHeld(federation::RecordStore& records, const std::string& account) {
  auto texts = records.AccountRecords(account);
  if (!texts.ok()) return texts.status();
  Held held;
  for (const std::string& text : *texts) {
    auto e = ParseStored(text);
    if (!e.ok()) return e.status();
    switch (e->type) {
      case RecordType::kHome:
        held.home_node = e->record["node"].get<std::string>();
        held.home_url = e->record["url"].get<std::string>();
        break;
      case RecordType::kMirrors:
        ReadMirrors(*e, held.mirrors);
        break;
      case RecordType::kDirectory:
        held.directory[e->record["email_sha256"].get<std::string>()] = e->record["discoverable"].get<bool>();
        break;
      case RecordType::kBadge:
        held.badges.emplace(e->record["badge"].get<std::string>(), std::move(*e));
        break;
      case RecordType::kTombstone:
        break;
    }
  }
  return held;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string TimeOrEmpty(int64_t t) { return t == 0 ? std::string() : FormatRfc3339(t); }

// The stored badge record says what the badge says now (the bytes change
// only with a replacement, which moves replaced_at).
bool SameBadge(const json& record, const BadgeRecord& r, bool is_public) {
  return record.value("state", "") == BadgeStateName(r.state) && record.value("public", !is_public) == is_public &&
         record.value("spec_version", "") == r.spec_version &&
         record.value("imported_at", "") == TimeOrEmpty(r.imported_at) &&
         record.value("replaced_at", "") == TimeOrEmpty(r.replaced_at);
}

// How a reconciliation treats the badge records it finds.
struct Sweep {
  bool republish = false;  // publish every wanted badge record again, changed or not
};

}  // namespace

std::string InboxUrl(std::string_view home_url, std::string_view account) {
  return fmt::format("{}/_federation/v1/inbox/{}", home_url, account);
}

struct EarnerFederation::Impl {
  Impl(federation::RecordStore& r, AccountService& a, BadgeService& b, CollectionService& c, EarnerFederationOptions o)
      : records(r), accounts(a), badges(b), collections(c), options(std::move(o)) {}

  federation::RecordStore& records;
  AccountService& accounts;
  BadgeService& badges;
  CollectionService& collections;
  EarnerFederationOptions options;

  // One account's changes at a time; never held while taking another stripe.
  std::array<std::mutex, kStripes> stripes;
  std::mutex& StripeOf(const std::string& local) { return stripes[std::hash<std::string>{}(local) % kStripes]; }

  // The reconciliation queue and sweep.
  mutable std::mutex queue_mu;
  std::set<std::string> queue;
  std::mutex sweep_mu;
  bool sweeping = true;  // a sweep runs from the start
  std::string sweep_cursor;
  std::chrono::steady_clock::time_point next_sweep;

  void Enqueue(const std::string& local) {
    std::lock_guard lock(queue_mu);
    if (queue.size() < kMaxQueued) {
      queue.insert(local);
      return;
    }
    // Full: the next sweep reaches every account anyway.
    std::lock_guard sweep(sweep_mu);
    if (!sweeping) {
      sweeping = true;
      sweep_cursor.clear();
    }
  }

  bool IsActivePeer(std::string_view node) const { return options.is_active_peer && options.is_active_peer(node); }

  // The badges in at least one public collection.
  Result<std::unordered_set<std::string>> PublicBadges(const std::string& local) {
    auto all = collections.List(local);
    if (!all.ok()) return all.status();
    std::unordered_set<std::string> out;
    for (const Collection& c : *all) {
      if (c.is_public) out.insert(c.badge_ids.begin(), c.badge_ids.end());
    }
    return out;
  }

  // The badge record to publish for `r`, or nullopt when it is too large to mirror.
  Result<std::optional<json>> BadgeRecordFor(const std::string& local, const BadgeRecord& r, bool is_public) {
    auto original = badges.GetOriginal(local, r.id);
    if (!original.ok()) return original.status();
    if (original->assertion.size() > kMaxMirroredAssertionBytes) {
      log::Info("federation", "badge not mirrored: its assertion is too large",
                {{"account", local}, {"badge", r.id}, {"bytes", original->assertion.size()}});
      return std::optional<json>();
    }
    json record = {{"type", "badge"},
                   {"badge", r.id},
                   {"original", protocol::Base64UrlEncode(original->assertion)},
                   {"form", r.assertion_form},
                   {"spec_version", r.spec_version},
                   {"state", std::string(BadgeStateName(r.state))},
                   {"public", is_public},
                   {"imported_at", TimeOrEmpty(r.imported_at)}};
    if (r.replaced_at != 0) record["replaced_at"] = TimeOrEmpty(r.replaced_at);
    if (!original->image.empty() && original->image.size() <= kMaxMirroredImageBytes) {
      record["image"] = {{"format", r.image_format}, {"base64url", protocol::Base64UrlEncode(original->image)}};
    }
    return std::optional<json>(std::move(record));
  }

  // Makes badge/<id> match the badge: publishes it, or tombstones it.
  // `badge`: nullopt when the account no longer holds it. `held`: the live
  // record, if any. `force`: publish again even when unchanged.
  Status SyncBadge(const std::string& local, const std::string& id, const std::optional<BadgeRecord>& badge,
                   const RecordEnvelope* held, const std::unordered_set<std::string>& public_ids,
                   const Mirrors& mirrors, bool force) {
    const bool is_public = public_ids.contains(id);
    const bool wanted = badge.has_value() && badge->state == BadgeState::kAccepted && !mirrors.nodes.empty() &&
                        (mirrors.all || is_public);
    if (wanted) {
      if (held != nullptr && !force && SameBadge(held->record, *badge, is_public)) return Status::Ok();
      auto record = BadgeRecordFor(local, *badge, is_public);
      if (!record.ok()) return record.status();
      if (record->has_value()) {
        auto published = records.Publish(local, std::move(**record));
        return published.ok() ? Status::Ok() : published.status();
      }
    }
    if (held == nullptr) return Status::Ok();
    auto published = records.Publish(local, {{"type", "tombstone"}, {"target", BadgeKey(id)}});
    return published.ok() ? Status::Ok() : published.status();
  }

  // The badges of `changed` (ids), one by one.
  Status SyncBadges(const std::string& local, const std::string& account, const std::vector<std::string>& changed) {
    auto mirrors_text = records.Get(account, "mirrors");
    if (!mirrors_text.ok()) return mirrors_text.status();
    Mirrors mirrors;
    if (mirrors_text->has_value()) {
      auto e = ParseStored(**mirrors_text);
      if (!e.ok()) return e.status();
      if (e->type == RecordType::kMirrors) ReadMirrors(*e, mirrors);
    }
    std::unordered_set<std::string> public_ids;
    if (!mirrors.nodes.empty() && !mirrors.all) {
      auto ids = PublicBadges(local);
      if (!ids.ok()) return ids.status();
      public_ids = std::move(*ids);
    }
    Status first;
    for (const std::string& id : changed) {
      auto text = records.Get(account, BadgeKey(id));
      if (!text.ok()) return text.status();
      std::optional<RecordEnvelope> held;
      if (text->has_value()) {
        auto e = ParseStored(**text);
        if (!e.ok()) return e.status();
        if (e->type == RecordType::kBadge) held = std::move(*e);
      }
      std::optional<BadgeRecord> badge;
      if (auto b = badges.Get(local, id); b.ok()) {
        badge = std::move(*b);
      } else if (b.status().code() != StatusCode::kNotFound) {
        return b.status();
      }
      if (!badge && !held) continue;
      if (Status s = SyncBadge(local, id, badge, held ? &*held : nullptr, public_ids, mirrors, false);
          !s.ok() && first.ok()) {
        first = s;
      }
    }
    return first;
  }

  // Every record of the account against its data (the caller holds its stripe).
  Status ReconcileLocked(const std::string& local, const federation::AccountIdentity& id, Sweep sweep = {}) {
    auto view = accounts.GetAccount(local);
    const bool gone = !view.ok() && view.status().code() == StatusCode::kNotFound;
    if (!view.ok() && !gone) return view.status();
    auto held = ReadHeld(records, id.account);
    if (!held.ok()) return held.status();
    Status first;
    auto note = [&](const Status& s) {
      if (!s.ok() && first.ok()) first = s;
    };

    // Addresses that left the account: their directory records go.
    std::unordered_set<std::string> verified;
    if (!gone) {
      for (const EmailView& e : view->emails) {
        if (e.verified) verified.insert(protocol::EmailHash(e.address));
      }
    }
    for (const auto& [hash, discoverable] : held->directory) {
      if (verified.contains(hash)) continue;
      note(records.Publish(local, {{"type", "tombstone"}, {"target", DirectoryKey(hash)}}).status());
    }

    // Badges.
    std::unordered_set<std::string> public_ids;
    std::vector<BadgeRecord> all;
    if (!gone) {
      auto ids = PublicBadges(local);
      if (!ids.ok()) return ids.status();
      public_ids = std::move(*ids);
      std::string cursor;
      do {
        auto page = badges.List(local, std::nullopt, kBadgePage, cursor);
        if (!page.ok()) return page.status();
        for (BadgeRecord& r : page->badges) all.push_back(std::move(r));
        cursor = page->next_cursor;
      } while (!cursor.empty());
    }
    std::unordered_set<std::string> present;
    for (const BadgeRecord& r : all) {
      present.insert(r.id);
      auto it = held->badges.find(r.id);
      note(SyncBadge(local, r.id, r, it == held->badges.end() ? nullptr : &it->second, public_ids, held->mirrors,
                     sweep.republish));
    }
    for (const auto& [badge_id, envelope] : held->badges) {
      if (present.contains(badge_id)) continue;
      note(SyncBadge(local, badge_id, std::nullopt, &envelope, public_ids, held->mirrors, false));
    }
    return first;
  }

  Status Reconcile(const std::string& local, Sweep sweep = {}) {
    std::lock_guard lock(StripeOf(local));
    auto id = records.FindIdentity(local);
    if (!id.ok()) return id.status();
    if (!id->has_value()) return Status::Ok();
    return ReconcileLocked(local, **id, sweep);
  }

  Result<FederationChoices> GetLocked(const std::string& local, const AccountView& view,
                                      const federation::AccountIdentity& id) {
    auto held = ReadHeld(records, id.account);
    if (!held.ok()) return held.status();
    FederationChoices out;
    out.account = id.account;
    out.home = held->home_node;
    for (const EmailView& e : view.emails) {
      if (!e.verified) continue;
      auto it = held->directory.find(protocol::EmailHash(e.address));
      if (it != held->directory.end() && it->second) out.discoverable.push_back(e.address);
    }
    out.mirrors = held->mirrors.nodes;
    out.mirror_all = held->mirrors.all;
    out.mirrored_badges = held->badges.size();
    for (const std::string& node : out.mirrors) {
      if (!IsActivePeer(node)) {
        out.warnings.push_back(fmt::format(
            "{} is not an active peer of this node: it receives your badges once the two nodes peer", node));
      }
    }
    return out;
  }
};

EarnerFederation::EarnerFederation(federation::RecordStore& records, AccountService& accounts, BadgeService& badges,
                                   CollectionService& collections, EarnerFederationOptions options)
    : impl_(std::make_unique<Impl>(records, accounts, badges, collections, std::move(options))) {}

EarnerFederation::~EarnerFederation() = default;

void EarnerFederation::Listen() {
  auto listener = [this](const Change& change) { OnChange(change); };
  impl_->accounts.AddChangeListener(listener);
  impl_->badges.AddChangeListener(listener);
  impl_->collections.AddChangeListener(listener);
}

Result<FederationChoices> EarnerFederation::Get(const std::string& local_id) {
  Impl& d = *impl_;
  auto view = d.accounts.GetAccount(local_id);
  if (!view.ok()) return view.status();
  std::lock_guard lock(d.StripeOf(local_id));
  auto id = d.records.Identity(local_id);
  if (!id.ok()) return id.status();
  return d.GetLocked(local_id, *view, *id);
}

Result<FederationChoices> EarnerFederation::Set(const std::string& local_id, const FederationChoicesChange& change) {
  Impl& d = *impl_;
  auto view = d.accounts.GetAccount(local_id);
  if (!view.ok()) return view.status();

  // The addresses asked for, as the account holds them.
  std::optional<std::set<std::string>> wanted;  // hashes
  if (change.discoverable) {
    wanted.emplace();
    for (const std::string& typed : *change.discoverable) {
      auto clean = protocol::CleanEmail(typed);
      const std::string normalized = protocol::NormalizeEmail(clean.ok() ? *clean : typed);
      auto it = std::find_if(view->emails.begin(), view->emails.end(), [&](const EmailView& e) {
        return e.verified && protocol::NormalizeEmail(e.address) == normalized;
      });
      if (it == view->emails.end()) {
        return InvalidArgument(fmt::format("discoverable: '{}' is not a verified address of this account",
                                           typed.substr(0, protocol::kMaxEmailLength)));
      }
      wanted->insert(protocol::EmailHash(it->address));
    }
  }
  std::optional<std::vector<std::string>> mirrors;
  if (change.mirrors) {
    mirrors.emplace();
    for (const std::string& node : *change.mirrors) {
      if (!config::IsNodeName(node)) {
        return InvalidArgument(
            fmt::format("mirrors: '{}' is not a node name (host[:port] in lower case, without port 80 or 443)",
                        node.substr(0, 300)));
      }
      if (node == d.options.node_name) return InvalidArgument(fmt::format("mirrors: {} is this node, your home", node));
      if (!Contains(*mirrors, node)) mirrors->push_back(node);
    }
    if (mirrors->size() > kMaxMirrors) return InvalidArgument(fmt::format("mirrors: at most {} nodes", kMaxMirrors));
  }

  std::lock_guard lock(d.StripeOf(local_id));
  auto id = d.records.Identity(local_id);
  if (!id.ok()) return id.status();
  auto held = ReadHeld(d.records, id->account);
  if (!held.ok()) return held.status();

  if (wanted) {
    for (const EmailView& e : view->emails) {
      if (!e.verified) continue;
      const std::string hash = protocol::EmailHash(e.address);
      const auto it = held->directory.find(hash);
      const bool now_discoverable = it != held->directory.end() && it->second;
      const bool want = wanted->contains(hash);
      // An address never made discoverable is never published, not even as hidden.
      if (want == now_discoverable) continue;
      auto published =
          d.records.Publish(local_id, {{"type", "directory"}, {"email_sha256", hash}, {"discoverable", want}});
      if (!published.ok()) return published.status();
    }
  }

  Sweep sweep;
  Mirrors next = held->mirrors;
  if (mirrors) next.nodes = *mirrors;
  if (change.mirror_all) next.all = *change.mirror_all;
  const bool changed = next.nodes != held->mirrors.nodes || next.all != held->mirrors.all;
  if (changed) {
    auto published =
        d.records.Publish(local_id, {{"type", "mirrors"}, {"nodes", next.nodes}, {"mirror_all", next.all}});
    if (!published.ok()) return published.status();
    // A new mirror has not seen the badge records published before it was
    // named (peers are served badge records by the mirrors record as it is
    // when they pull): they go into the change log again.
    for (const auto& node : next.nodes) sweep.republish |= !Contains(held->mirrors.nodes, node);
  }
  // Addresses that left the account and the badges follow the new choices.
  if (Status s = d.ReconcileLocked(local_id, *id, sweep); !s.ok()) {
    log::Warn("federation", "records of an account could not all be published; queued for a retry",
              {{"account", local_id}, {"error", s.ToString()}});
    d.Enqueue(local_id);
  }
  return d.GetLocked(local_id, *view, *id);
}

void EarnerFederation::OnChange(const Change& change) {
  Impl& d = *impl_;
  Status result;
  {
    std::lock_guard lock(d.StripeOf(change.account));
    auto id = d.records.FindIdentity(change.account);
    if (!id.ok()) {
      result = id.status();
    } else if (!id->has_value()) {
      return;  // the earner never chose anything: no records
    } else if (change.subject == Change::Subject::kAccount) {
      result = d.ReconcileLocked(change.account, **id);
    } else if (!change.badges.empty()) {
      result = d.SyncBadges(change.account, (*id)->account, change.badges);
    }
  }
  if (!result.ok()) {
    log::Warn("federation", "records could not follow a change; queued for a retry",
              {{"account", change.account}, {"error", result.ToString()}});
    d.Enqueue(change.account);
  }
}

Status EarnerFederation::Reconcile(const std::string& local_id) { return impl_->Reconcile(local_id); }

std::chrono::seconds EarnerFederation::ReconcileStep(size_t budget) {
  Impl& d = *impl_;
  std::vector<std::string> retry;
  {
    std::lock_guard lock(d.queue_mu);
    while (!d.queue.empty() && retry.size() < budget) {
      retry.push_back(*d.queue.begin());
      d.queue.erase(d.queue.begin());
    }
  }
  auto attempt = [&d](const std::string& local) {
    if (Status s = d.Reconcile(local); !s.ok()) {
      log::Warn("federation", "reconciliation of an account failed; queued for a retry",
                {{"account", local}, {"error", s.ToString()}});
      d.Enqueue(local);
    }
  };
  for (const std::string& local : retry) attempt(local);

  bool sweeping = false;
  {
    std::unique_lock lock(d.sweep_mu);
    const auto now = std::chrono::steady_clock::now();
    if (!d.sweeping && now >= d.next_sweep) {
      d.sweeping = true;
      d.sweep_cursor.clear();
    }
    const size_t left = budget - retry.size();
    if (d.sweeping && left > 0) {
      auto batch = d.records.LocalAccounts(d.sweep_cursor, left);
      if (!batch.ok()) {
        log::Warn("federation", "reconciliation sweep could not list accounts", {{"error", batch.status().ToString()}});
      } else {
        if (!batch->empty()) d.sweep_cursor = batch->back();
        if (batch->size() < left) {
          d.sweeping = false;
          d.sweep_cursor.clear();
          d.next_sweep = now + kSweepInterval;
        }
        lock.unlock();
        for (const std::string& local : *batch) attempt(local);
        lock.lock();
      }
    }
    sweeping = d.sweeping;
  }
  if (sweeping || queued() > 0) return kBusyStep;
  return kIdleStep;
}

size_t EarnerFederation::queued() const {
  std::lock_guard lock(impl_->queue_mu);
  return impl_->queue.size();
}

Result<std::optional<json>> EarnerFederation::Discover(std::string_view email_sha256, std::string_view subject,
                                                       const std::vector<std::string>& rels) {
  Impl& d = *impl_;
  auto entry = d.records.Lookup(email_sha256);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value()) return std::optional<json>();
  const json directory = json::parse((*entry)->directory, nullptr, false);
  const json home = json::parse((*entry)->home, nullptr, false);
  auto home_record = protocol::ParseEnvelopeObject(home);
  if (directory.is_discarded() || !home_record.ok() || home_record->type != RecordType::kHome) {
    return DataLoss("a stored directory or home record is malformed");
  }
  const std::string& account = (*entry)->account;
  const std::string home_url = home_record->record["url"].get<std::string>();
  json links = json::array();
  auto link = [&](const char* rel, std::string href) {
    if (rels.empty() || Contains(rels, rel)) links.push_back({{"rel", rel}, {"href", std::move(href)}});
  };
  link(kRelObDiscovery, home_url + "/ims/ob/v3p0/discovery");
  link(kRelInbox, InboxUrl(home_url, account));
  json jrd = {{"subject", std::string(subject)},
              {"properties",
               {{"https://backpackd.org/ns/account", account},
                {"https://backpackd.org/ns/home", home_record->record["node"].get<std::string>()}}},
              {"links", std::move(links)},
              // The signed records, so the asker can check this answer
              // whichever node gave it (docs/federation.md).
              {"records", {{"directory", directory}, {"home", home}, {"genesis", (*entry)->genesis}}}};
  return std::optional<json>(std::move(jrd));
}

Result<InboxRoute> EarnerFederation::RouteInbox(std::string_view account) {
  Impl& d = *impl_;
  InboxRoute route;
  if (!IsAccountId(account)) return route;
  auto local = d.records.LocalAccount(account);
  if (!local.ok()) return local.status();
  if (local->has_value()) {
    route.kind = InboxRoute::Kind::kLocal;
    route.local_id = **local;
    return route;
  }
  auto home = d.records.Get(account, "home");
  if (!home.ok()) return home.status();
  if (!home->has_value()) return route;
  auto e = ParseStored(**home);
  if (!e.ok()) return e.status();
  if (e->type != RecordType::kHome) return route;
  // A home record naming this node for an account that is not here is
  // stale (the account left); never send the issuer round in circles.
  if (e->record["node"].get<std::string>() == d.options.node_name) return route;
  route.kind = InboxRoute::Kind::kRedirect;
  route.location = InboxUrl(e->record["url"].get<std::string>(), account);
  return route;
}

}  // namespace backpack
