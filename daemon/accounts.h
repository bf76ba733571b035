// Accounts, their email addresses, sessions and emailed tokens.
//
// Rules (the account API's contract):
//  * An account holds up to accounts.max_emails_per_account addresses. Each
//    is kept as typed and compared by protocol::NormalizeEmail.
//  * One verified owner per address on a node: verifying an address that
//    another account has verified is kAlreadyExists.
//  * The sign-up address can be used to sign in before it is verified; it is
//    held against other sign-ups for accounts.signup_claim_ttl_hours, after
//    which another sign-up may take it (its first holder never proved it).
//  * Only a verified address can be primary; the last verified address
//    cannot be removed; the primary moves to another verified address when
//    the primary is removed.
//  * Session and emailed tokens are 256-bit random values given to the user
//    once; the store keeps only their SHA-256.
//
// Every method blocks on storage (and sign-in on scrypt): call them from the
// worker pool. Mutations take storage::KeyLocks over the account and the
// addresses they read, so concurrent requests cannot both claim an address.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "daemon/changes.h"
#include "storage/store.h"

namespace backpack {
namespace mail {
class Mailer;
}

struct EmailView {
  std::string address;
  bool verified = false;
  bool primary = false;
};

struct AccountView {
  std::string id;
  std::string display_name;
  std::vector<EmailView> emails;
  int64_t created_at = 0;  // Unix seconds
};

struct SessionGrant {
  std::string token;
  int64_t expires_at = 0;
};

// Unix seconds; injectable for tests.
using UnixClock = std::function<int64_t()>;
// n cryptographically random bytes; injectable for tests.
using RandomSource = std::function<std::string(size_t n)>;

class AccountService {
 public:
  AccountService(storage::Store& store, storage::KeyLocks& locks, mail::Mailer& mailer,
                 const config::AccountsConfig& config, std::string public_url, UnixClock clock,
                 RandomSource random);

  Result<AccountView> CreateAccount(std::string_view email, std::string_view password,
                                    std::string_view display_name);
  // Wrong address and wrong password are the same kUnauthenticated.
  Result<SessionGrant> SignIn(std::string_view email, std::string_view password);
  // The account id a session token belongs to; kUnauthenticated when unknown or expired.
  Result<std::string> Authenticate(std::string_view token);
  Status SignOut(std::string_view token);

  // Memory-only lookups that never block: nullopt means "not cached, ask the
  // blocking method on a worker". Safe on I/O threads.
  std::optional<std::string> CachedAuthenticate(std::string_view token);
  std::optional<AccountView> CachedAccount(const std::string& account_id);

  Result<AccountView> GetAccount(const std::string& account_id);
  // The id of the account that has verified `email` (compared by
  // protocol::NormalizeEmail), or nullopt when no account has: an unknown
  // address, an unverified sign-up claim, or a malformed address.
  Result<std::optional<std::string>> FindVerifiedAccount(std::string_view email);
  // true when the address was added, false when it was already there
  // unverified (the verification message is sent again).
  Result<bool> AddEmail(const std::string& account_id, std::string_view address);
  // Verifies the address an emailed token was issued for. When
  // `account_id` is non-empty the token must belong to that account.
  Result<AccountView> VerifyEmail(std::string_view token, const std::string& account_id);
  Result<AccountView> SetPrimaryEmail(const std::string& account_id, std::string_view address);
  Result<AccountView> RemoveEmail(const std::string& account_id, std::string_view address);

  // Sends a reset message when the address signs in to an account; answers
  // the same either way.
  Status RequestPasswordReset(std::string_view email);
  // Sets the password and ends every session of the account.
  Status ResetPassword(std::string_view token, std::string_view new_password);
  // Needs the current password; removes the account, its address claims,
  // sessions and tokens in one atomic batch.
  Status DeleteAccount(const std::string& account_id, std::string_view password);

  // Deletes expired sessions and emailed tokens (with their index entries),
  // at most `limit` of them per call; returns how many went. Expired
  // secrets are already refused; this only reclaims their space.
  Result<size_t> PurgeExpired(size_t limit);

  // Told (daemon/changes.h, Subject::kAccount) after an address is removed
  // and after the account is deleted.
  void AddChangeListener(ChangeListener listener);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace backpack
