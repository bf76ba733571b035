#include "daemon/collections.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/log.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
using storage::Family;

namespace {

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxDescriptionBytes = 4000;
constexpr size_t kMaxBadgesPerCollection = 1000;
constexpr size_t kIdBytes = 16;  // collection ids and share slugs: 128 random bits
// An encoded id or slug: 16 bytes in unpadded base64url.
constexpr size_t kEncodedIdLength = 22;
// Reading more distinct badges than this lists the account's badges once
// instead of looking each one up.
constexpr size_t kPointLookupLimit = 256;
constexpr size_t kBadgePageSize = 500;

std::string RecordKey(std::string_view account, std::string_view id) {
  return fmt::format("{}/{}", account, id);
}
// All of an account's collections are changed under this one lock, so the
// count checked against the limit cannot change before the write.
std::string AccountLock(std::string_view account) { return fmt::format("collections:{}", account); }
std::string CollectionLock(std::string_view key) { return fmt::format("collection:{}", key); }

bool IsEncodedId(std::string_view s) {
  if (s.size() != kEncodedIdLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// Well-formed UTF-8: shortest forms only, no surrogates, nothing past U+10FFFF.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// The control characters a text may hold: none in a name; line breaks and
// tabs in a description.
bool HasControl(std::string_view s, bool allow_line_breaks) {
  return std::any_of(s.begin(), s.end(), [&](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (allow_line_breaks && (c == '\n' || c == '\r' || c == '\t')) return false;
    return c < 0x20 || c == 0x7f;
  });
}

Result<std::string> CleanName(std::string_view in) {
  const std::string_view name = TrimSpace(in);
  if (name.empty()) return InvalidArgument("name must not be empty");
  if (name.size() > kMaxNameBytes) return InvalidArgument("name is longer than 200 bytes");
  if (!IsUtf8(name)) return InvalidArgument("name is not valid UTF-8");
  if (HasControl(name, false)) return InvalidArgument("name contains control characters");
  return std::string(name);
}

Result<std::string> CleanDescription(std::string_view in) {
  const std::string_view text = TrimSpace(in);
  if (text.size() > kMaxDescriptionBytes) return InvalidArgument("description is longer than 4000 bytes");
  if (!IsUtf8(text)) return InvalidArgument("description is not valid UTF-8");
  if (HasControl(text, true)) return InvalidArgument("description contains control characters");
  return std::string(text);
}

// An id as it may appear in an error message: printable and short.
std::string ShownId(std::string_view id) {
  std::string out;
  for (char c : id.substr(0, 100)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (id.size() > 100) out += "...";
  return out;
}

std::string Serialize(const Collection& c) {
  return json{{"id", c.id},
              {"account", c.account},
              {"name", c.name},
              {"description", c.description},
              {"badges", c.badge_ids},
              {"public", c.is_public},
              {"slug", c.slug},
              {"created_at", c.created_at},
              {"updated_at", c.updated_at}}
      .dump();
}

Result<Collection> Parse(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return DataLoss("collection record is not valid JSON");
  try {
    Collection c;
    c.id = j.at("id").get<std::string>();
    c.account = j.at("account").get<std::string>();
    c.name = j.at("name").get<std::string>();
    c.description = j.value("description", "");
    c.badge_ids = j.at("badges").get<std::vector<std::string>>();
    c.is_public = j.value("public", false);
    c.slug = j.value("slug", "");
    c.created_at = j.value("created_at", int64_t{0});
    c.updated_at = j.value("updated_at", int64_t{0});
    return c;
  } catch (const json::exception& e) {
    return DataLoss(fmt::format("collection record is malformed: {}", e.what()));
  }
}

}  // namespace

struct CollectionService::Impl {
  storage::Store& store;
  storage::KeyLocks& locks;
  AccountService& accounts;
  BadgeService& badges;
  const config::BadgesConfig& config;
  UnixClock clock;
  RandomSource random;
  ChangeListeners listeners;

  // `before` and `after`: the badges the collection listed (either may be empty).
  void Notify(const std::string& account, const std::string& id, const std::vector<std::string>& before,
              const std::vector<std::string>& after) {
    Change change{Change::Subject::kCollection, account, id, before};
    for (const auto& badge : after) {
      if (std::find(before.begin(), before.end(), badge) == before.end()) change.badges.push_back(badge);
    }
    listeners.Notify(change);
  }

  std::string NewId() { return protocol::Base64UrlEncode(random(kIdBytes)); }

  Result<std::optional<Collection>> Load(std::string_view account, std::string_view id) {
    if (!IsEncodedId(id)) return std::optional<Collection>{};
    auto bytes = store.Get(Family::kCollections, RecordKey(account, id));
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<Collection>{};
    auto c = Parse(**bytes);
    if (!c.ok()) return c.status();
    // A record under another account's key would be a storage bug; never show it.
    if (c->account != account || c->id != id) return DataLoss("collection record does not match its key");
    return std::optional<Collection>(std::move(*c));
  }

  Result<Collection> MustLoad(std::string_view account, std::string_view id) {
    auto c = Load(account, id);
    if (!c.ok()) return c.status();
    if (!c->has_value()) return NotFound("collection not found");
    return std::move(**c);
  }

  Result<std::vector<Collection>> LoadAll(std::string_view account) {
    std::vector<Collection> out;
    Status parse_error;
    BP_RETURN_IF_ERROR(store.Scan(Family::kCollections, fmt::format("{}/", account),
                                  [&](std::string_view, std::string_view value) {
                                    auto c = Parse(value);
                                    if (!c.ok()) {
                                      parse_error = c.status();
                                      return false;
                                    }
                                    out.push_back(std::move(*c));
                                    return true;
                                  }));
    BP_RETURN_IF_ERROR(parse_error);
    // Oldest first: the order the earner made them in.
    std::stable_sort(out.begin(), out.end(), [](const Collection& a, const Collection& b) {
      return a.created_at < b.created_at;
    });
    return out;
  }

  Status CheckAccount(const std::string& account) {
    auto view = accounts.GetAccount(account);
    return view.ok() ? Status::Ok() : view.status();
  }

  // The records of those of `ids` the account still holds (deleted ones are
  // absent from the map). Looks each up, or lists the account's badges once
  // when there are many.
  Result<std::unordered_map<std::string, BadgeRecord>> Existing(const std::string& account,
                                                                const std::vector<std::string>& ids) {
    std::unordered_map<std::string, BadgeRecord> out;
    std::unordered_set<std::string> wanted(ids.begin(), ids.end());
    if (wanted.size() <= kPointLookupLimit) {
      for (const auto& id : wanted) {
        auto rec = badges.Get(account, id);
        if (rec.ok()) {
          out.emplace(id, std::move(*rec));
        } else if (rec.status().code() != StatusCode::kNotFound) {
          return rec.status();
        }
      }
      return out;
    }
    std::string cursor;
    do {
      auto page = badges.List(account, std::nullopt, kBadgePageSize, cursor);
      if (!page.ok()) return page.status();
      for (auto& rec : page->badges) {
        if (wanted.count(rec.id)) out.emplace(rec.id, std::move(rec));
      }
      cursor = std::move(page->next_cursor);
    } while (!cursor.empty());
    return out;
  }

  // Checks and de-duplicates a new badge list: every id must be a badge of
  // the account.
  Result<std::vector<std::string>> CheckBadgeIds(const std::string& account, const std::vector<std::string>& ids) {
    if (ids.size() > kMaxBadgesPerCollection) {
      return InvalidArgument(fmt::format("a collection holds at most {} badges", kMaxBadgesPerCollection));
    }
    std::vector<std::string> unique;
    std::unordered_set<std::string> seen;
    for (const auto& id : ids) {
      if (seen.insert(id).second) unique.push_back(id);
    }
    auto existing = Existing(account, unique);
    if (!existing.ok()) return existing.status();
    for (const auto& id : unique) {
      if (!existing->count(id)) return InvalidArgument(fmt::format("unknown badge {}", ShownId(id)));
    }
    return unique;
  }

  // A public collection with its owner's name and its accepted badges.
  Result<PublicCollection> Publish(Collection c) {
    PublicCollection out;
    auto owner = accounts.GetAccount(c.account);
    if (!owner.ok()) {
      if (owner.status().code() == StatusCode::kNotFound) return NotFound("no such public collection");
      return owner.status();
    }
    out.owner_display_name = owner->display_name;
    auto existing = Existing(c.account, c.badge_ids);
    if (!existing.ok()) return existing.status();
    out.collection = Visible(std::move(c), *existing);
    for (const auto& id : out.collection.badge_ids) {
      auto it = existing->find(id);
      if (it->second.state == BadgeState::kAccepted) out.badges.push_back(std::move(it->second));
    }
    return out;
  }

  // The collection as its owner sees it: without badges deleted since.
  Collection Visible(Collection c, const std::unordered_map<std::string, BadgeRecord>& existing) {
    std::erase_if(c.badge_ids, [&](const std::string& id) { return !existing.count(id); });
    return c;
  }
};

CollectionService::CollectionService(storage::Store& store, storage::KeyLocks& locks, AccountService& accounts,
                                     BadgeService& badges, const config::BadgesConfig& config, UnixClock clock,
                                     RandomSource random)
    : impl_(new Impl{store, locks, accounts, badges, config, std::move(clock), std::move(random), {}}) {}

CollectionService::~CollectionService() = default;

Result<Collection> CollectionService::Create(const std::string& account_id, const CollectionChange& change) {
  Impl& d = *impl_;
  if (!change.name) return InvalidArgument("name is required");
  auto name = CleanName(*change.name);
  if (!name.ok()) return name.status();
  std::string description;
  if (change.description) {
    auto text = CleanDescription(*change.description);
    if (!text.ok()) return text.status();
    description = std::move(*text);
  }
  BP_RETURN_IF_ERROR(d.CheckAccount(account_id));
  std::vector<std::string> badge_ids;
  if (change.badge_ids) {
    // Badge lookups happen before taking this service's locks: the badge
    // service takes its own stripes of the same KeyLocks.
    auto ids = d.CheckBadgeIds(account_id, *change.badge_ids);
    if (!ids.ok()) return ids.status();
    badge_ids = std::move(*ids);
  }

  Collection c;
  c.id = d.NewId();
  c.account = account_id;
  c.name = std::move(*name);
  c.description = std::move(description);
  c.badge_ids = std::move(badge_ids);
  c.is_public = change.is_public.value_or(false);
  if (c.is_public) c.slug = d.NewId();
  c.created_at = c.updated_at = d.clock();
  const std::string key = RecordKey(account_id, c.id);

  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({AccountLock(account_id), CollectionLock(key)}));
  size_t count = 0;
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kCollections, fmt::format("{}/", account_id),
                                  [&](std::string_view, std::string_view) {
                                    ++count;
                                    return true;
                                  }));
  if (count >= static_cast<size_t>(d.config.max_collections_per_account)) {
    return FailedPrecondition(fmt::format("an account can hold at most {} collections",
                                         d.config.max_collections_per_account));
  }
  storage::WriteBatch batch;
  batch.Put(Family::kCollections, key, Serialize(c));
  if (c.is_public) batch.Put(Family::kShareSlugs, c.slug, key);
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  guard.reset();
  log::Info("collections", "collection created", {{"account", account_id}, {"collection", c.id}});
  d.Notify(account_id, c.id, {}, c.badge_ids);
  return c;
}

Result<std::vector<Collection>> CollectionService::List(const std::string& account_id) {
  Impl& d = *impl_;
  auto all = d.LoadAll(account_id);
  if (!all.ok()) return all.status();
  std::vector<std::string> ids;
  for (const auto& c : *all) ids.insert(ids.end(), c.badge_ids.begin(), c.badge_ids.end());
  auto existing = d.Existing(account_id, ids);
  if (!existing.ok()) return existing.status();
  std::vector<Collection> out;
  out.reserve(all->size());
  for (auto& c : *all) out.push_back(d.Visible(std::move(c), *existing));
  return out;
}

Result<Collection> CollectionService::Get(const std::string& account_id, std::string_view collection_id) {
  Impl& d = *impl_;
  auto c = d.MustLoad(account_id, collection_id);
  if (!c.ok()) return c.status();
  auto existing = d.Existing(account_id, c->badge_ids);
  if (!existing.ok()) return existing.status();
  return d.Visible(std::move(*c), *existing);
}

Result<Collection> CollectionService::Update(const std::string& account_id, std::string_view collection_id,
                                             const CollectionChange& change) {
  Impl& d = *impl_;
  std::optional<std::string> name;
  if (change.name) {
    auto n = CleanName(*change.name);
    if (!n.ok()) return n.status();
    name = std::move(*n);
  }
  std::optional<std::string> description;
  if (change.description) {
    auto text = CleanDescription(*change.description);
    if (!text.ok()) return text.status();
    description = std::move(*text);
  }
  // Badge lookups come before the lock (see Create). Without a new list, the
  // current one is pruned of deleted badges: those found gone now are
  // dropped from whatever list the record holds under the lock.
  std::optional<std::vector<std::string>> badge_ids;
  std::unordered_set<std::string> gone;
  if (change.badge_ids) {
    auto ids = d.CheckBadgeIds(account_id, *change.badge_ids);
    if (!ids.ok()) return ids.status();
    badge_ids = std::move(*ids);
  } else {
    auto before = d.MustLoad(account_id, collection_id);
    if (!before.ok()) return before.status();
    auto existing = d.Existing(account_id, before->badge_ids);
    if (!existing.ok()) return existing.status();
    for (const auto& id : before->badge_ids) {
      if (!existing->count(id)) gone.insert(id);
    }
  }

  const std::string key = RecordKey(account_id, collection_id);
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({AccountLock(account_id), CollectionLock(key)}));
  auto loaded = d.MustLoad(account_id, collection_id);
  if (!loaded.ok()) return loaded.status();
  Collection c = std::move(*loaded);
  const std::vector<std::string> listed_before = c.badge_ids;
  const std::string old_slug = c.slug;
  if (name) c.name = std::move(*name);
  if (description) c.description = std::move(*description);
  if (badge_ids) {
    c.badge_ids = std::move(*badge_ids);
  } else {
    std::erase_if(c.badge_ids, [&](const std::string& id) { return gone.count(id) > 0; });
  }
  if (change.is_public) c.is_public = *change.is_public;
  storage::WriteBatch batch;
  if (c.is_public && c.slug.empty()) {
    c.slug = d.NewId();
    batch.Put(Family::kShareSlugs, c.slug, key);
  } else if (!c.is_public && !c.slug.empty()) {
    // Going private retires the link for good; going public again makes a new one.
    batch.Delete(Family::kShareSlugs, c.slug);
    c.slug.clear();
  }
  c.updated_at = d.clock();
  batch.Put(Family::kCollections, key, Serialize(c));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  guard.reset();
  d.Notify(account_id, c.id, listed_before, c.badge_ids);
  return c;
}

Status CollectionService::Delete(const std::string& account_id, std::string_view collection_id) {
  Impl& d = *impl_;
  const std::string key = RecordKey(account_id, collection_id);
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({AccountLock(account_id), CollectionLock(key)}));
  auto c = d.MustLoad(account_id, collection_id);
  if (!c.ok()) return c.status();
  storage::WriteBatch batch;
  batch.Delete(Family::kCollections, key);
  if (!c->slug.empty()) batch.Delete(Family::kShareSlugs, c->slug);
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  guard.reset();
  log::Info("collections", "collection deleted", {{"account", account_id}, {"collection", c->id}});
  d.Notify(account_id, c->id, c->badge_ids, {});
  return Status::Ok();
}

Result<PublicCollection> CollectionService::GetPublic(std::string_view slug) {
  Impl& d = *impl_;
  const Status missing = NotFound("no public collection has this link");
  if (!IsEncodedId(slug)) return missing;
  auto target = d.store.Get(Family::kShareSlugs, slug);
  if (!target.ok()) return target.status();
  if (!target->has_value()) return missing;
  const std::string& key = **target;
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos) return DataLoss("share slug record is malformed");
  auto c = d.Load(key.substr(0, slash), std::string_view(key).substr(slash + 1));
  if (!c.ok()) return c.status();
  // The slug must still be the collection's own: a stale entry never shows
  // a collection that went private.
  if (!c->has_value() || !(*c)->is_public || (*c)->slug != slug) return missing;
  return d.Publish(std::move(**c));
}

Result<PublicCollection> CollectionService::GetPublicById(const std::string& account_id,
                                                          std::string_view collection_id) {
  Impl& d = *impl_;
  auto c = d.Load(account_id, collection_id);
  if (!c.ok()) return c.status();
  if (!c->has_value() || !(*c)->is_public) return NotFound("no such public collection");
  return d.Publish(std::move(**c));
}

Result<std::vector<Collection>> CollectionService::ListPublic(const std::string& account_id) {
  Impl& d = *impl_;
  BP_RETURN_IF_ERROR(d.CheckAccount(account_id));
  auto all = d.LoadAll(account_id);
  if (!all.ok()) return all.status();
  std::erase_if(*all, [](const Collection& c) { return !c.is_public; });
  std::vector<std::string> ids;
  for (const auto& c : *all) ids.insert(ids.end(), c.badge_ids.begin(), c.badge_ids.end());
  auto existing = d.Existing(account_id, ids);
  if (!existing.ok()) return existing.status();
  std::vector<Collection> out;
  for (auto& c : *all) {
    // What the public sees: accepted badges only.
    std::erase_if(c.badge_ids, [&](const std::string& id) {
      auto it = existing->find(id);
      return it == existing->end() || it->second.state != BadgeState::kAccepted;
    });
    out.push_back(std::move(c));
  }
  return out;
}

Status CollectionService::DeleteAll(const std::string& account_id) {
  Impl& d = *impl_;
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({AccountLock(account_id)}));
  storage::WriteBatch batch;
  std::vector<std::string> listed;
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kCollections, fmt::format("{}/", account_id),
                                  [&](std::string_view key, std::string_view value) {
                                    batch.Delete(Family::kCollections, key);
                                    auto c = Parse(value);
                                    // A record that cannot be read still goes; its
                                    // slug, if any, then points nowhere and reads as 404.
                                    if (c.ok() && !c->slug.empty()) batch.Delete(Family::kShareSlugs, c->slug);
                                    if (c.ok()) listed.insert(listed.end(), c->badge_ids.begin(), c->badge_ids.end());
                                    return true;
                                  }));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  guard.reset();
  std::sort(listed.begin(), listed.end());
  listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
  d.Notify(account_id, "", listed, {});
  return Status::Ok();
}

void CollectionService::AddChangeListener(ChangeListener listener) { impl_->listeners.Add(std::move(listener)); }

}  // namespace backpack
