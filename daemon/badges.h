// The badges an account holds: import, listing, re-verification, deletion,
// and the whole-account export bundle. Storage layout in docs/architecture.md ("Storage layout");
// wire format in docs/api.md.
//
// Rules (the badge API's contract):
//  * An import is verified first (daemon/badge_verifier.h) against the
//    account's verified addresses; a badge that fails is not stored and the
//    caller gets the report. One that passes is stored in one atomic batch:
//    the record, the issuer's bytes verbatim (assertion, baked image, every
//    fetched document), the duplicate-check key and its re-check entry.
//  * A badge is identified by its issuer-given identity (the assertion IRI,
//    else the hosted URL, else issuer + uid, else the SHA-256 of the
//    assertion bytes; for an OB 3.0 credential, issuer id + credential id).
//    Importing the same badge again returns the stored record unchanged
//    (kExisting) -- except that a credential with a later validFrom
//    replaces the stored one (kReplaced): same record id, same state, the
//    new bytes, documents and verdict.
//  * Two independent facts describe a stored badge. Its `state` is the
//    earner's decision: pending (an issuer pushed it), accepted, rejected.
//    Its `status` is the last verification's verdict: valid, revoked,
//    expired, invalid (a check that used to pass fails: the issuer changed
//    its key, its profile, ...), or unverifiable (the issuer could not be
//    reached; `status_since` says since when). Nothing is deleted because of
//    a status.
//  * Re-checks: every stored badge has one entry in the re-check queue,
//    keyed by its due time. A valid badge is due again after
//    badges.reverify_interval_hours; a badge whose issuer could not be
//    reached backs off exponentially from badges.retry_min_seconds to
//    badges.retry_max_seconds (with jitter); revoked and expired are final
//    until the earner asks for a re-check.
//
// Every method blocks on storage and, for imports and re-checks, on the
// network: call them from the worker pool. Writes take storage::KeyLocks over
// the account's badge keys.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "daemon/accounts.h"
#include "daemon/badge_verifier.h"
#include "daemon/changes.h"
#include "storage/store.h"

namespace backpack {

enum class BadgeState { kPending, kAccepted, kRejected };
enum class BadgeStatus { kValid, kRevoked, kExpired, kInvalid, kUnverifiable };
std::string_view BadgeStateName(BadgeState state);    // "pending", "accepted", "rejected"
std::string_view BadgeStatusName(BadgeStatus status);  // "valid", "revoked", "expired", "invalid", "unverifiable"
std::optional<BadgeState> ParseBadgeState(std::string_view name);

// A stored badge as the API shows it. The JSON members are rendered once,
// when the badge is verified, and kept in the record.
struct BadgeRecord {
  std::string id;
  std::string account;
  BadgeState state = BadgeState::kAccepted;
  BadgeStatus status = BadgeStatus::kValid;
  int64_t status_since = 0;   // when the status last changed
  int64_t imported_at = 0;
  int64_t checked_at = 0;     // last verification attempt
  int64_t next_check_at = 0;  // 0: not scheduled (revoked, expired)
  int failures = 0;           // consecutive unreachable re-checks
  std::string spec_version;   // "0.5" ... "2.0", "3.0"
  std::string input_kind;     // how it was imported: url, assertion, jws, image
  std::string assertion_form; // "json" or "jws" (a SignedBadge or VC-JWT)
  std::string source_url;     // hosted URL it was fetched from, if any
  std::string image_format;   // "png" or "svg" when imported baked; else ""
  std::string recipient;      // the verified address it was awarded to
  std::string identity;       // what makes two imports the same badge
  std::string badge_json;     // the normalised badge (docs/api.md)
  std::string report_json;    // the last verification report
  std::vector<std::string> document_urls;  // fetched documents kept with it
  // OB 3.0: validFrom (or issuanceDate) of the stored credential, which
  // decides whether a credential with the same identity replaces it.
  std::optional<int64_t> valid_from;
  int64_t replaced_at = 0;  // OB 3.0: when a newer credential last replaced it
};

// The issuer's bytes kept with a badge.
struct BadgeOriginal {
  std::string assertion;  // JSON text or compact JWS
  std::string image;      // the baked image as imported, or empty
  protocol::FetchedDocuments documents;
};

struct ImportOptions {
  BadgeState state = BadgeState::kAccepted;
  // Used when a fetch fails transiently (an export bundle's documents).
  protocol::FetchedDocuments fallback_documents;
  // Store a badge that verified only with fallback documents, with status
  // unverifiable (restoring an export whose issuer is offline). Otherwise
  // such a badge is refused: a kept copy is not live proof.
  bool accept_fallback = false;
};

struct ImportResult {
  // kExisting: the same badge was stored already and is unchanged (for a
  // credential: the stored one is as recent or newer). kReplaced: a newer
  // OB 3.0 credential replaced the stored one.
  enum class Outcome { kCreated, kExisting, kReplaced, kRefused };
  Outcome outcome = Outcome::kRefused;
  BadgeRecord record;       // kCreated, kExisting, kReplaced
  std::string report_json;  // always: the verification report of this attempt
};

struct BadgePage {
  std::vector<BadgeRecord> badges;
  std::string next_cursor;  // empty on the last page
};

class BadgeService {
 public:
  BadgeService(storage::Store& store, storage::KeyLocks& locks, AccountService& accounts,
               const BadgeVerifier& verifier, const config::BadgesConfig& config, UnixClock clock,
               RandomSource random);
  ~BadgeService();

  // kNotFound: no such account. Verification failures are a kRefused
  // result, not an error. kFailedPrecondition (409): badges.max_per_account reached.
  Result<ImportResult> Import(const std::string& account_id, const VerifyRequest& input,
                              const ImportOptions& options = {});

  // Badges in import order (newest first), `limit` per page, optionally only
  // one state; `cursor` is a previous page's next_cursor.
  Result<BadgePage> List(const std::string& account_id, std::optional<BadgeState> state, size_t limit,
                         std::string_view cursor);
  // kNotFound when the account holds no such badge.
  Result<BadgeRecord> Get(const std::string& account_id, std::string_view badge_id);
  Result<BadgeOriginal> GetOriginal(const std::string& account_id, std::string_view badge_id);
  Result<BadgeRecord> SetState(const std::string& account_id, std::string_view badge_id, BadgeState state);
  // Removes the badge, its bytes, its duplicate key and its re-check entry.
  // Collections that list it drop it when next read or written.
  Status Delete(const std::string& account_id, std::string_view badge_id);
  // The badge as an image with the issuer's assertion (JSON or JWS) baked
  // in: the image it was imported as, else its image (a data: URI, or a URL
  // fetched through the guarded fetch). kFailedPrecondition when there is
  // no usable image. `content_type` is image/png or image/svg+xml.
  struct BakedImage {
    std::string bytes;
    std::string content_type;
  };
  Result<BakedImage> Baked(const std::string& account_id, std::string_view badge_id);

  // Re-verifies now, revalidating every document with its server.
  Result<BadgeRecord> Recheck(const std::string& account_id, std::string_view badge_id);

  // Takes up to `limit` entries whose due time has come off the queue and
  // re-checks their badges; returns how many entries it took. An entry
  // whose badge is gone is dropped; a badge that cannot be re-checked (its
  // account is gone, storage failed) is postponed by retry_max_seconds.
  Result<size_t> RecheckDue(size_t limit);
  // The earliest due time in the queue, if any (the scheduler sleeps until then).
  Result<std::optional<int64_t>> NextDue();

  // Removes every badge of the account (account deletion).
  Status DeleteAll(const std::string& account_id);

  // Told (daemon/changes.h) after a badge is created, replaced, accepted or
  // rejected, or deleted; not after a re-check, which changes only its status.
  void AddChangeListener(ChangeListener listener);

 private:
  Result<ImportResult> ImportUnnotified(const std::string& account_id, const VerifyRequest& input,
                                        const ImportOptions& options);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack
