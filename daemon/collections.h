// Collections: named, ordered sets of an account's badges, private or public.
// A public collection has an unguessable share slug; /share/{slug} shows it
// to anyone (HTML with Open Graph tags, or JSON), and the Mozilla Displayer
// API lists an account's public collections. Wire format in docs/api.md.
//
// A collection lists badge ids. A badge deleted after it was added is left
// out when the collection is read, and dropped from the record on its next
// write. Only accepted badges are shown publicly.
//
// Storage: kCollections holds "<account>/<collection id>" -> {id, account,
// name, description, badges: [ids], public, slug, created_at, updated_at}
// (Unix seconds); kShareSlugs holds "<slug>" -> "<account>/<collection id>"
// while the collection is public. Ids and slugs are 16 random bytes in
// base64url. Every change is one WriteBatch, made under KeyLocks over the
// account's collections and the collection's key (so the per-account limit
// holds under concurrent creates). Badges are looked up before those locks
// are taken, never while holding them: the badge service locks stripes of
// the same KeyLocks.
//
// Every method blocks on storage: call them from the worker pool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "daemon/accounts.h"
#include "daemon/badges.h"
#include "daemon/changes.h"
#include "storage/store.h"

namespace backpack {

struct Collection {
  std::string id;
  std::string account;
  std::string name;
  std::string description;
  std::vector<std::string> badge_ids;  // in the earner's order, no repeats
  bool is_public = false;
  std::string slug;  // non-empty exactly when public
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// Members to set; absent ones stay as they are (Create: defaults).
struct CollectionChange {
  std::optional<std::string> name;  // 1..200 bytes, required on Create
  std::optional<std::string> description;  // up to 4000 bytes
  std::optional<std::vector<std::string>> badge_ids;  // each must be a badge of the account
  std::optional<bool> is_public;
};

// A public collection with the badges it shows (accepted ones only).
struct PublicCollection {
  Collection collection;
  std::vector<BadgeRecord> badges;
  std::string owner_display_name;
};

class CollectionService {
 public:
  CollectionService(storage::Store& store, storage::KeyLocks& locks, AccountService& accounts,
                    BadgeService& badges, const config::BadgesConfig& config, UnixClock clock,
                    RandomSource random);
  ~CollectionService();

  // kInvalidArgument: a bad name/description, an unknown badge id.
  // kFailedPrecondition (409): badges.max_collections_per_account reached.
  Result<Collection> Create(const std::string& account_id, const CollectionChange& change);
  Result<std::vector<Collection>> List(const std::string& account_id);
  Result<Collection> Get(const std::string& account_id, std::string_view collection_id);
  Result<Collection> Update(const std::string& account_id, std::string_view collection_id,
                            const CollectionChange& change);
  Status Delete(const std::string& account_id, std::string_view collection_id);

  // kNotFound unless the slug names a public collection.
  Result<PublicCollection> GetPublic(std::string_view slug);
  // The same by owner and collection id (Displayer API); kNotFound unless
  // the account holds that collection and it is public.
  Result<PublicCollection> GetPublicById(const std::string& account_id, std::string_view collection_id);
  // The account's public collections (Displayer API); kNotFound for no account.
  Result<std::vector<Collection>> ListPublic(const std::string& account_id);

  // Removes every collection of the account and its slugs (account deletion).
  Status DeleteAll(const std::string& account_id);

  // Told (daemon/changes.h) after a collection is created, changed or
  // deleted, with the badges it listed before and after.
  void AddChangeListener(ChangeListener listener);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack
