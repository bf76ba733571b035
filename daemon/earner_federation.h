// The earner's side of federation (docs/federation.md, "Earner's choices",
// "Discovery and delivery"): what the earner chose -- which verified
// addresses are discoverable, which nodes mirror their badges, whether
// every accepted badge is mirrored or only the public ones -- and the
// signed records that carry those choices and the badges to peers.
//
// Records follow the services' data through their change listeners
// (daemon/changes.h), not by polling:
//  * directory/<hash>: published when the earner makes an address
//    discoverable or hides it again; tombstoned when the address leaves the
//    account (removed, account deleted). An address that was never
//    discoverable is never published, not even as hidden.
//  * mirrors: {"nodes": [...], "mirror_all": bool}, published when it changes.
//  * badge/<id>: present while the badge is accepted, its account names at
//    least one mirror, and the badge is public (in a public collection) or
//    the earner chose mirror_all; tombstoned when that stops (deleted,
//    rejected, no longer public, no mirrors left). Adding a mirror publishes
//    the badge records again, so that the new mirror receives them (a peer
//    is served badge records by the mirrors record as it stands when it
//    pulls, so it skipped the ones published before it was named). A node
//    dropped from the mirrors learns it from the new mirrors record, which
//    every peer receives.
// A listener never fails its caller: what it could not publish is logged
// and the account is queued for the reconciliation pass, which also sweeps
// every federated account now and then and fixes whatever differs.
//
// Accounts without a federated identity (the earner never opened the
// federation settings) have no records and are left alone.
//
// Every method blocks on storage: call them from the worker pool.
// Thread-safe; changes of one account are serialised.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "daemon/changes.h"

namespace backpack {
class AccountService;
class BadgeService;
class CollectionService;
namespace federation {
class RecordStore;
}

inline constexpr size_t kMaxMirrors = 16;
// A badge record carries the baked image it was imported as only up to this
// size (the issuer's assertion alone proves the badge).
inline constexpr size_t kMaxMirroredImageBytes = 256 * 1024;
// A badge whose assertion is larger than this is not mirrored at all.
inline constexpr size_t kMaxMirroredAssertionBytes = 1024 * 1024;

struct EarnerFederationOptions {
  std::string node_name;  // this node (an earner cannot name it as a mirror)
  // Whether `node` is an active peer now; nullptr: none is.
  std::function<bool(std::string_view node)> is_active_peer;
};

// What the account federation API shows and takes (docs/api.md).
struct FederationChoices {
  std::string account;                    // the federated account id
  std::string home;                       // the home node's name
  std::vector<std::string> discoverable;  // addresses as the account holds them
  std::vector<std::string> mirrors;       // node names, in the earner's order
  bool mirror_all = false;
  size_t mirrored_badges = 0;         // badge records published now
  std::vector<std::string> warnings;  // e.g. a mirror that is not an active peer
};

// Members to set; absent ones stay as they are.
struct FederationChoicesChange {
  std::optional<std::vector<std::string>> discoverable = std::nullopt;  // each a verified address of the account
  std::optional<std::vector<std::string>> mirrors = std::nullopt;       // node names, at most kMaxMirrors
  std::optional<bool> mirror_all = std::nullopt;
};

// Where a delivery to POST /_federation/v1/inbox/{account} goes.
struct InboxRoute {
  enum class Kind { kLocal, kRedirect, kUnknown };
  Kind kind = Kind::kUnknown;
  std::string local_id;  // kLocal: the local account
  std::string location;  // kRedirect: the home node's inbox URL for the account
};

class EarnerFederation {
 public:
  EarnerFederation(federation::RecordStore& records, AccountService& accounts, BadgeService& badges,
                   CollectionService& collections, EarnerFederationOptions options);
  ~EarnerFederation();
  EarnerFederation(const EarnerFederation&) = delete;
  EarnerFederation& operator=(const EarnerFederation&) = delete;

  // Adds this object's listener to the three services (once, at start-up).
  void Listen();

  // The earner's choices; creates the account's federated identity on first
  // use. kNotFound for an unknown account.
  Result<FederationChoices> Get(const std::string& local_id);
  // Changes them and publishes what changed (nothing when nothing did).
  // kInvalidArgument naming the member and the value that is refused.
  Result<FederationChoices> Set(const std::string& local_id, const FederationChoicesChange& change);

  // What a listener does with a change (public for tests).
  void OnChange(const Change& change);

  // Makes every record of the account match its data now: directory records
  // of addresses it no longer holds, badge records. Does nothing for an
  // account without a federated identity.
  Status Reconcile(const std::string& local_id);
  // One bounded reconciliation step: the accounts queued after a failure,
  // then the next accounts of the sweep over every federated account (a
  // sweep starts at once after construction, and again an hour after the
  // last one ended), `budget` accounts in all. Returns how long to wait
  // before the next step.
  std::chrono::seconds ReconcileStep(size_t budget);
  // Accounts waiting for a retry (tests, metrics).
  size_t queued() const;

  // The WebFinger answer (RFC 7033 JRD) for a discoverable address hash, or
  // nullopt when none is discoverable here. `subject` is the resource asked
  // for; `rels`, when not empty, keeps only the links with those relations.
  Result<std::optional<nlohmann::json>> Discover(std::string_view email_sha256, std::string_view subject,
                                                 const std::vector<std::string>& rels = {});
  // Where a delivery for federated account `account` goes: a local account,
  // the inbox of its home (known from replicated records), or nowhere.
  Result<InboxRoute> RouteInbox(std::string_view account);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The link relations of the WebFinger answer.
inline constexpr char kRelObDiscovery[] = "https://purl.imsglobal.org/spec/ob/v3p0/discovery";
inline constexpr char kRelInbox[] = "https://backpackd.org/rel/inbox";
// The URN form of a WebFinger resource that names an address by its hash.
inline constexpr char kEmailHashUrnPrefix[] = "urn:backpackd:email-sha256:";
// The inbox of `account` at the node whose base URL is `home_url`.
std::string InboxUrl(std::string_view home_url, std::string_view account);

}  // namespace backpack
