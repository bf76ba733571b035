#include "daemon/accounts.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/log.h"
#include "daemon/lru_cache.h"
#include "daemon/mail.h"
#include "protocol/email_address.h"
#include "protocol/encoding.h"
#include "protocol/password_hash.h"

namespace backpack {

using nlohmann::json;
using storage::Family;

namespace {

constexpr size_t kMaxPasswordBytes = 1024;
constexpr size_t kMaxDisplayNameBytes = 200;
constexpr size_t kMaxTokenBytes = 128;
constexpr std::string_view kPurposeVerify = "verify";
constexpr std::string_view kPurposeReset = "reset";

struct EmailRecord {
  std::string address;
  bool verified = false;
  bool primary = false;
  int64_t added_at = 0;
};

struct AccountRecord {
  std::string id;
  std::string display_name;
  std::string password_hash;
  int64_t created_at = 0;
  std::vector<EmailRecord> emails;

  EmailRecord* Find(std::string_view normalized) {
    for (auto& e : emails) {
      if (protocol::NormalizeEmail(e.address) == normalized) return &e;
    }
    return nullptr;
  }
  size_t VerifiedCount() const {
    return static_cast<size_t>(std::count_if(emails.begin(), emails.end(), [](const auto& e) { return e.verified; }));
  }
};

std::string Serialize(const AccountRecord& a) {
  json emails = json::array();
  for (const auto& e : a.emails) {
    emails.push_back({{"address", e.address}, {"verified", e.verified}, {"primary", e.primary},
                      {"added_at", e.added_at}});
  }
  return json{{"id", a.id},
              {"display_name", a.display_name},
              {"password", a.password_hash},
              {"created_at", a.created_at},
              {"emails", std::move(emails)}}
      .dump();
}

Result<AccountRecord> ParseAccount(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return DataLoss("account record is not valid JSON");
  try {
    AccountRecord a;
    a.id = j.at("id").get<std::string>();
    a.display_name = j.value("display_name", "");
    a.password_hash = j.at("password").get<std::string>();
    a.created_at = j.at("created_at").get<int64_t>();
    for (const auto& e : j.at("emails")) {
      a.emails.push_back({e.at("address").get<std::string>(), e.at("verified").get<bool>(),
                          e.at("primary").get<bool>(), e.value("added_at", int64_t{0})});
    }
    return a;
  } catch (const json::exception& e) {
    return DataLoss(fmt::format("account record is malformed: {}", e.what()));
  }
}

AccountView ToView(const AccountRecord& a) {
  AccountView v{a.id, a.display_name, {}, a.created_at};
  for (const auto& e : a.emails) v.emails.push_back({e.address, e.verified, e.primary});
  return v;
}

struct EmailClaim {
  std::string account;
  bool verified = false;
  int64_t claimed_at = 0;
};

std::string Serialize(const EmailClaim& c) {
  return json{{"account", c.account}, {"verified", c.verified}, {"claimed_at", c.claimed_at}}.dump();
}

std::optional<EmailClaim> ParseClaim(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object() || !j.contains("account")) return std::nullopt;
  return EmailClaim{j.value("account", ""), j.value("verified", false), j.value("claimed_at", int64_t{0})};
}

struct MailToken {
  std::string account;
  std::string purpose;
  std::string address;
  int64_t expires_at = 0;
};

std::optional<MailToken> ParseMailToken(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return MailToken{j.value("account", ""), j.value("purpose", ""), j.value("address", ""),
                   j.value("expires_at", int64_t{0})};
}

// Index of an account's secrets, so they can all be revoked: "<id>/s/<hash>"
// for sessions and "<id>/m/<hash>" for emailed tokens.
std::string TokenIndexKey(std::string_view account, char kind, std::string_view hash) {
  return fmt::format("{}/{}/{}", account, kind, hash);
}

std::string EmailLock(std::string_view normalized) { return fmt::format("e:{}", normalized); }
std::string AccountLock(std::string_view id) { return fmt::format("a:{}", id); }


}  // namespace

struct AccountService::Impl {
  Impl(storage::Store& s, storage::KeyLocks& l, mail::Mailer& m, const config::AccountsConfig& c,
       std::string url, UnixClock clk, RandomSource rnd)
      : store(s), locks(l), mailer(m), config(c), public_url(std::move(url)), clock(std::move(clk)),
        random(std::move(rnd)), sessions(static_cast<size_t>(c.cache_entries)),
        accounts(static_cast<size_t>(c.cache_entries)) {}

  storage::Store& store;
  storage::KeyLocks& locks;
  mail::Mailer& mailer;
  const config::AccountsConfig& config;
  std::string public_url;
  UnixClock clock;
  RandomSource random;
  std::once_flag dummy_once;
  std::string dummy_hash;
  ChangeListeners listeners;

  // Read-through caches. Coherence rule: an entry is only inserted or
  // changed while holding the account's KeyLock, after the store write it
  // mirrors has succeeded, so a reader can never re-insert a stale record
  // over a newer one (or a session that was just revoked).
  struct CachedSession {
    std::string account;
    int64_t expires_at = 0;
  };
  LruCache<CachedSession> sessions;  // sha256 hex of the token -> session
  LruCache<std::shared_ptr<const AccountRecord>> accounts;  // account id -> record

  protocol::ScryptParams Scrypt() const { return {config.scrypt_log2_n, 8, 1}; }

  Status CheckPassword(std::string_view password) const {
    if (password.size() < static_cast<size_t>(config.min_password_length)) {
      return InvalidArgument(fmt::format("password must have at least {} characters",
                                         config.min_password_length));
    }
    if (password.size() > kMaxPasswordBytes) return InvalidArgument("password is longer than 1024 bytes");
    return Status::Ok();
  }

  Result<std::string> Hash(std::string_view password) {
    return protocol::HashPassword(password, random(16), Scrypt());
  }

  // Spends the time of one password check, so an unknown address answers as
  // slowly as a wrong password.
  void SpendPasswordCheck(std::string_view password) {
    std::call_once(dummy_once, [&] {
      auto h = Hash("backpackd-timing-equaliser");
      if (h.ok()) dummy_hash = *h;
    });
    (void)protocol::VerifyPassword(password, dummy_hash);
  }

  // Callers hold the account's KeyLock.
  Result<std::optional<AccountRecord>> LoadAccount(std::string_view id) {
    const std::string key(id);
    if (auto hit = accounts.Get(key)) return std::optional<AccountRecord>(**hit);
    auto bytes = store.Get(Family::kAccounts, id);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<AccountRecord>{};
    auto rec = ParseAccount(**bytes);
    if (!rec.ok()) return rec.status();
    accounts.Put(key, std::make_shared<const AccountRecord>(*rec));
    return std::optional<AccountRecord>(std::move(*rec));
  }

  // For callers without the lock: a cache hit, or a locked load.
  Result<std::optional<AccountRecord>> ReadAccount(std::string_view id) {
    if (auto hit = accounts.Get(std::string(id))) return std::optional<AccountRecord>(**hit);
    auto guard = locks.Lock({AccountLock(id)});
    return LoadAccount(id);
  }

  // Writes `batch`, then mirrors `account` into the cache. Under the lock.
  Status WriteAccount(const storage::WriteBatch& batch, const AccountRecord& account) {
    BP_RETURN_IF_ERROR(store.Write(batch));
    accounts.Put(account.id, std::make_shared<const AccountRecord>(account));
    return Status::Ok();
  }

  Result<AccountRecord> MustLoadAccount(std::string_view id) {
    auto rec = LoadAccount(id);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) return NotFound("account not found");
    return std::move(**rec);
  }

  Result<AccountRecord> MustReadAccount(std::string_view id) {
    auto rec = ReadAccount(id);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) return NotFound("account not found");
    return std::move(**rec);
  }

  void ForgetSessions(const std::vector<std::string>& hashes) {
    for (const auto& h : hashes) sessions.Erase(h);
  }

  Result<std::optional<EmailClaim>> LoadClaim(std::string_view normalized) {
    auto bytes = store.Get(Family::kEmailIndex, normalized);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<EmailClaim>{};
    return ParseClaim(**bytes);
  }

  Result<std::optional<MailToken>> LoadMailToken(std::string_view token, std::string* hash_out) {
    if (token.empty() || token.size() > kMaxTokenBytes) return std::optional<MailToken>{};
    *hash_out = protocol::Sha256Hex(token);
    auto bytes = store.Get(Family::kMailTokens, *hash_out);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<MailToken>{};
    auto t = ParseMailToken(**bytes);
    if (t && t->expires_at <= clock()) return std::optional<MailToken>{};
    return t;
  }

  // Adds a new emailed token to `batch` and returns the token itself.
  std::string IssueMailToken(storage::WriteBatch& batch, std::string_view account,
                             std::string_view purpose, std::string_view address, int64_t ttl_seconds,
                             int64_t* expires_at) {
    std::string token = protocol::Base64UrlEncode(random(32));
    std::string hash = protocol::Sha256Hex(token);
    *expires_at = clock() + ttl_seconds;
    batch.Put(Family::kMailTokens, hash,
              json{{"account", account}, {"purpose", purpose}, {"address", address},
                   {"expires_at", *expires_at}}
                  .dump());
    batch.Put(Family::kAccountTokens, TokenIndexKey(account, 'm', hash), "");
    return token;
  }

  void SendVerification(std::string_view address, std::string_view token, int64_t expires_at) {
    mail::Message m;
    m.to = std::string(address);
    m.subject = "Verify your email address for your backpack";
    m.text_body = fmt::format(
        "Someone, hopefully you, added {} to a backpack account at {}.\n\n"
        "Verification token: {}\n\n"
        "To verify the address, send the token to the node:\n\n"
        "  POST {}/api/v1/account/emails/verify\n"
        "  {{\"token\": \"<the token above>\"}}\n\n"
        "The token expires at {}. If you did not ask for this, ignore this message.\n",
        address, public_url, token, public_url, FormatRfc3339(expires_at));
    Deliver(m);
  }

  void Deliver(const mail::Message& m) {
    Status s = mailer.Send(m);
    if (!s.ok()) log::Error("accounts", "could not queue mail", {{"error", s.ToString()}});
  }

  Result<SessionGrant> NewSession(std::string_view account) {
    SessionGrant grant;
    grant.token = protocol::Base64UrlEncode(random(32));
    const std::string hash = protocol::Sha256Hex(grant.token);
    const int64_t now = clock();
    grant.expires_at = now + int64_t{config.session_ttl_hours} * 3600;
    storage::WriteBatch batch;
    batch.Put(Family::kSessions, hash,
              json{{"account", account}, {"created_at", now}, {"expires_at", grant.expires_at}}.dump());
    batch.Put(Family::kAccountTokens, TokenIndexKey(account, 's', hash), "");
    BP_RETURN_IF_ERROR(store.Write(batch));
    // A token nobody has seen yet cannot race with a revocation.
    sessions.Put(hash, CachedSession{std::string(account), grant.expires_at});
    return grant;
  }

  // Adds deletes of the account's sessions (kind 's'), emailed tokens ('m')
  // or both (0) to `batch`.
  // `sessions_out` receives the session hashes, to drop from the cache once
  // the batch is written.
  Status RevokeSecrets(storage::WriteBatch& batch, std::string_view account, char kind,
                       std::vector<std::string>* sessions_out) {
    const std::string prefix = kind ? fmt::format("{}/{}/", account, kind) : fmt::format("{}/", account);
    return store.Scan(Family::kAccountTokens, prefix, [&](std::string_view key, std::string_view) {
      const char k = key[account.size() + 1];
      const std::string_view hash = key.substr(account.size() + 3);
      batch.Delete(k == 's' ? Family::kSessions : Family::kMailTokens, hash);
      if (k == 's') sessions_out->emplace_back(hash);
      batch.Delete(Family::kAccountTokens, key);
      return true;
    });
  }
};

AccountService::AccountService(storage::Store& store, storage::KeyLocks& locks, mail::Mailer& mailer,
                               const config::AccountsConfig& config, std::string public_url,
                               UnixClock clock, RandomSource random)
    : impl_(std::make_shared<Impl>(store, locks, mailer, config, std::move(public_url),
                                   std::move(clock), std::move(random))) {}

Result<AccountView> AccountService::CreateAccount(std::string_view email, std::string_view password,
                                                  std::string_view display_name) {
  Impl& d = *impl_;
  auto address = protocol::CleanEmail(email);
  if (!address.ok()) return address.status();
  BP_RETURN_IF_ERROR(d.CheckPassword(password));
  if (display_name.size() > kMaxDisplayNameBytes) return InvalidArgument("display_name is longer than 200 bytes");
  for (unsigned char c : display_name) {
    if (c < 0x20 || c == 0x7f) return InvalidArgument("display_name contains control characters");
  }
  auto hash = d.Hash(password);
  if (!hash.ok()) return hash.status();

  const std::string normalized = protocol::NormalizeEmail(*address);
  const int64_t now = d.clock();
  AccountRecord account{protocol::HexEncode(d.random(16)), std::string(display_name), *hash, now,
                        {{*address, false, false, now}}};
  storage::WriteBatch batch;
  int64_t expires_at = 0;
  std::string token;
  {
    auto guard = d.locks.Lock({EmailLock(normalized)});
    auto claim = d.LoadClaim(normalized);
    if (!claim.ok()) return claim.status();
    if (claim->has_value()) {
      const EmailClaim& c = **claim;
      const bool held = c.verified || c.claimed_at + int64_t{d.config.signup_claim_ttl_hours} * 3600 > now;
      if (held) return AlreadyExists("an account with this email address already exists");
    }
    batch.Put(Family::kAccounts, account.id, Serialize(account));
    batch.Put(Family::kEmailIndex, normalized, Serialize(EmailClaim{account.id, false, now}));
    token = d.IssueMailToken(batch, account.id, kPurposeVerify, *address,
                             int64_t{d.config.verify_token_ttl_hours} * 3600, &expires_at);
    BP_RETURN_IF_ERROR(d.WriteAccount(batch, account));  // a new id: nobody else holds it yet
  }
  log::Info("accounts", "account created", {{"account", account.id}});
  d.SendVerification(*address, token, expires_at);
  return ToView(account);
}

Result<SessionGrant> AccountService::SignIn(std::string_view email, std::string_view password) {
  Impl& d = *impl_;
  const Status denied = Unauthenticated("email address or password is incorrect");
  auto address = protocol::CleanEmail(email);
  if (!address.ok() || password.size() > kMaxPasswordBytes) {
    d.SpendPasswordCheck(password);
    return denied;
  }
  auto claim = d.LoadClaim(protocol::NormalizeEmail(*address));
  if (!claim.ok()) return claim.status();
  if (!claim->has_value()) {
    d.SpendPasswordCheck(password);
    return denied;
  }
  auto account = d.ReadAccount((*claim)->account);
  if (!account.ok()) return account.status();
  if (!account->has_value()) {
    d.SpendPasswordCheck(password);
    return denied;
  }
  if (!protocol::VerifyPassword(password, (*account)->password_hash)) return denied;
  return d.NewSession((*account)->id);
}

Result<std::string> AccountService::Authenticate(std::string_view token) {
  Impl& d = *impl_;
  const Status denied = Unauthenticated("missing, invalid or expired session token");
  if (token.empty() || token.size() > kMaxTokenBytes) return denied;
  const std::string hash = protocol::Sha256Hex(token);
  if (auto hit = d.sessions.Get(hash)) {
    if (hit->expires_at <= d.clock()) return denied;
    return std::move(hit->account);
  }
  auto read = [&]() -> Result<std::optional<Impl::CachedSession>> {
    auto bytes = d.store.Get(Family::kSessions, hash);
    if (!bytes.ok()) return bytes.status();
    if (!bytes->has_value()) return std::optional<Impl::CachedSession>{};
    json j = json::parse(**bytes, nullptr, false);
    if (!j.is_object()) return std::optional<Impl::CachedSession>{};
    return std::optional<Impl::CachedSession>(
        Impl::CachedSession{j.value("account", ""), j.value("expires_at", int64_t{0})});
  };
  auto first = read();
  if (!first.ok()) return first.status();
  if (!first->has_value()) return denied;
  // Re-read under the account's lock before caching: a revocation holds
  // that lock from its write to its cache update.
  auto guard = d.locks.Lock({AccountLock((*first)->account)});
  auto session = read();
  if (!session.ok()) return session.status();
  if (!session->has_value()) return denied;
  d.sessions.Put(hash, **session);
  if ((*session)->expires_at <= d.clock()) return denied;
  return (*session)->account;
}

std::optional<std::string> AccountService::CachedAuthenticate(std::string_view token) {
  Impl& d = *impl_;
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  auto hit = d.sessions.Get(protocol::Sha256Hex(token));
  if (!hit || hit->expires_at <= d.clock()) return std::nullopt;
  return std::move(hit->account);
}

std::optional<AccountView> AccountService::CachedAccount(const std::string& account_id) {
  auto hit = impl_->accounts.Get(account_id);
  if (!hit) return std::nullopt;
  return ToView(**hit);
}

Status AccountService::SignOut(std::string_view token) {
  Impl& d = *impl_;
  auto account = Authenticate(token);
  if (!account.ok()) return account.status();
  const std::string hash = protocol::Sha256Hex(token);
  auto guard = d.locks.Lock({AccountLock(*account)});
  storage::WriteBatch batch;
  batch.Delete(Family::kSessions, hash);
  batch.Delete(Family::kAccountTokens, TokenIndexKey(*account, 's', hash));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.sessions.Erase(hash);
  return Status::Ok();
}

Result<AccountView> AccountService::GetAccount(const std::string& account_id) {
  auto rec = impl_->MustReadAccount(account_id);
  if (!rec.ok()) return rec.status();
  return ToView(*rec);
}

Result<std::optional<std::string>> AccountService::FindVerifiedAccount(std::string_view email) {
  Impl& d = *impl_;
  auto address = protocol::CleanEmail(email);
  if (!address.ok()) return std::optional<std::string>{};
  const std::string normalized = protocol::NormalizeEmail(*address);
  auto claim = d.LoadClaim(normalized);
  if (!claim.ok()) return claim.status();
  if (!claim->has_value() || !(*claim)->verified) return std::optional<std::string>{};
  // The claim names the owner; the account record is the authority on
  // whether the address is still there and verified.
  auto account = d.ReadAccount((*claim)->account);
  if (!account.ok()) return account.status();
  if (!account->has_value()) return std::optional<std::string>{};
  const EmailRecord* e = (*account)->Find(normalized);
  if (e == nullptr || !e->verified) return std::optional<std::string>{};
  return std::optional<std::string>((*account)->id);
}

Result<bool> AccountService::AddEmail(const std::string& account_id, std::string_view address_in) {
  Impl& d = *impl_;
  auto address = protocol::CleanEmail(address_in);
  if (!address.ok()) return address.status();
  const std::string normalized = protocol::NormalizeEmail(*address);
  std::string token;
  std::string send_to;
  int64_t expires_at = 0;
  bool added = false;
  {
    auto guard = d.locks.Lock({AccountLock(account_id)});
    auto account = d.MustLoadAccount(account_id);
    if (!account.ok()) return account.status();
    storage::WriteBatch batch;
    if (EmailRecord* existing = account->Find(normalized)) {
      if (existing->verified) return AlreadyExists("this address is already verified on your account");
      send_to = existing->address;
    } else {
      if (account->emails.size() >= static_cast<size_t>(d.config.max_emails_per_account)) {
        return FailedPrecondition(fmt::format("an account can hold at most {} email addresses",
                                              d.config.max_emails_per_account));
      }
      account->emails.push_back({*address, false, false, d.clock()});
      batch.Put(Family::kAccounts, account_id, Serialize(*account));
      send_to = *address;
      added = true;
    }
    token = d.IssueMailToken(batch, account_id, kPurposeVerify, send_to,
                             int64_t{d.config.verify_token_ttl_hours} * 3600, &expires_at);
    BP_RETURN_IF_ERROR(d.WriteAccount(batch, *account));
  }
  d.SendVerification(send_to, token, expires_at);
  return added;
}

Result<AccountView> AccountService::VerifyEmail(std::string_view token, const std::string& account_id) {
  Impl& d = *impl_;
  const Status invalid = NotFound("verification token is invalid or has expired");
  std::string hash;
  auto first = d.LoadMailToken(token, &hash);
  if (!first.ok()) return first.status();
  if (!first->has_value() || (*first)->purpose != kPurposeVerify) return invalid;
  if (!account_id.empty() && (*first)->account != account_id) return invalid;
  const std::string owner = (*first)->account;
  const std::string normalized = protocol::NormalizeEmail((*first)->address);

  auto guard = d.locks.Lock({AccountLock(owner), EmailLock(normalized)});
  auto again = d.LoadMailToken(token, &hash);  // may have been used meanwhile
  if (!again.ok()) return again.status();
  if (!again->has_value()) return invalid;
  auto account = d.MustLoadAccount(owner);
  if (!account.ok()) return account.status();
  EmailRecord* email = account->Find(normalized);
  if (email == nullptr) return NotFound("this address is no longer on the account");
  auto claim = d.LoadClaim(normalized);
  if (!claim.ok()) return claim.status();
  if (claim->has_value() && (*claim)->verified && (*claim)->account != owner) {
    return AlreadyExists("this address is verified by another account on this node");
  }
  email->verified = true;
  if (account->VerifiedCount() == 1 || std::none_of(account->emails.begin(), account->emails.end(),
                                                    [](const auto& e) { return e.primary; })) {
    for (auto& e : account->emails) e.primary = (&e == email);
  }
  storage::WriteBatch batch;
  batch.Put(Family::kAccounts, owner, Serialize(*account));
  batch.Put(Family::kEmailIndex, normalized, Serialize(EmailClaim{owner, true, d.clock()}));
  batch.Delete(Family::kMailTokens, hash);
  batch.Delete(Family::kAccountTokens, TokenIndexKey(owner, 'm', hash));
  BP_RETURN_IF_ERROR(d.WriteAccount(batch, *account));
  log::Info("accounts", "email verified", {{"account", owner}});
  return ToView(*account);
}

Result<AccountView> AccountService::SetPrimaryEmail(const std::string& account_id,
                                                    std::string_view address) {
  Impl& d = *impl_;
  const std::string normalized = protocol::NormalizeEmail(address);
  auto guard = d.locks.Lock({AccountLock(account_id)});
  auto account = d.MustLoadAccount(account_id);
  if (!account.ok()) return account.status();
  EmailRecord* email = account->Find(normalized);
  if (email == nullptr) return NotFound("this address is not on your account");
  if (!email->verified) return FailedPrecondition("only a verified address can be primary");
  for (auto& e : account->emails) e.primary = (&e == email);
  storage::WriteBatch batch;
  batch.Put(Family::kAccounts, account_id, Serialize(*account));
  BP_RETURN_IF_ERROR(d.WriteAccount(batch, *account));
  return ToView(*account);
}

Result<AccountView> AccountService::RemoveEmail(const std::string& account_id, std::string_view address) {
  Impl& d = *impl_;
  const std::string normalized = protocol::NormalizeEmail(address);
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({AccountLock(account_id), EmailLock(normalized)}));
  auto account = d.MustLoadAccount(account_id);
  if (!account.ok()) return account.status();
  EmailRecord* email = account->Find(normalized);
  if (email == nullptr) return NotFound("this address is not on your account");
  if (account->emails.size() == 1) return FailedPrecondition("the only address of an account cannot be removed");
  if (email->verified && account->VerifiedCount() == 1) {
    return FailedPrecondition("the last verified address cannot be removed");
  }
  const bool was_primary = email->primary;
  account->emails.erase(account->emails.begin() + (email - account->emails.data()));
  if (was_primary) {
    for (auto& e : account->emails) {
      if (e.verified) {
        e.primary = true;
        break;
      }
    }
  }
  storage::WriteBatch batch;
  batch.Put(Family::kAccounts, account_id, Serialize(*account));
  auto claim = d.LoadClaim(normalized);
  if (!claim.ok()) return claim.status();
  if (claim->has_value() && (*claim)->account == account_id) batch.Delete(Family::kEmailIndex, normalized);
  BP_RETURN_IF_ERROR(d.WriteAccount(batch, *account));
  guard.reset();
  d.listeners.Notify(Change{Change::Subject::kAccount, account_id, "", {}});
  return ToView(*account);
}

Status AccountService::RequestPasswordReset(std::string_view email) {
  Impl& d = *impl_;
  auto address = protocol::CleanEmail(email);
  if (!address.ok()) return Status::Ok();
  const std::string normalized = protocol::NormalizeEmail(*address);
  auto claim = d.LoadClaim(normalized);
  if (!claim.ok()) return claim.status();
  if (!claim->has_value()) return Status::Ok();
  const std::string owner = (*claim)->account;
  auto account = d.ReadAccount(owner);
  if (!account.ok()) return account.status();
  if (!account->has_value()) return Status::Ok();
  const EmailRecord* on_account = (*account)->Find(normalized);
  if (on_account == nullptr) return Status::Ok();
  storage::WriteBatch batch;
  int64_t expires_at = 0;
  const std::string token = d.IssueMailToken(batch, owner, kPurposeReset, on_account->address,
                                             int64_t{d.config.reset_token_ttl_minutes} * 60, &expires_at);
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  mail::Message m;
  m.to = on_account->address;
  m.subject = "Reset the password of your backpack";
  m.text_body = fmt::format(
      "Someone, hopefully you, asked to reset the password of the backpack account for {} at {}.\n\n"
      "Reset token: {}\n\n"
      "To choose a new password, send the token to the node:\n\n"
      "  POST {}/api/v1/password-reset/confirm\n"
      "  {{\"token\": \"<the token above>\", \"password\": \"<new password>\"}}\n\n"
      "The token expires at {}. If you did not ask for this, ignore this message: your password "
      "stays as it is.\n",
      on_account->address, d.public_url, token, d.public_url, FormatRfc3339(expires_at));
  d.Deliver(m);
  return Status::Ok();
}

Status AccountService::ResetPassword(std::string_view token, std::string_view new_password) {
  Impl& d = *impl_;
  BP_RETURN_IF_ERROR(d.CheckPassword(new_password));
  const Status invalid = NotFound("reset token is invalid or has expired");
  std::string hash;
  auto first = d.LoadMailToken(token, &hash);
  if (!first.ok()) return first.status();
  if (!first->has_value() || (*first)->purpose != kPurposeReset) return invalid;
  const std::string owner = (*first)->account;
  auto new_hash = d.Hash(new_password);
  if (!new_hash.ok()) return new_hash.status();

  auto guard = d.locks.Lock({AccountLock(owner)});
  auto again = d.LoadMailToken(token, &hash);
  if (!again.ok()) return again.status();
  if (!again->has_value()) return invalid;
  auto account = d.MustLoadAccount(owner);
  if (!account.ok()) return account.status();
  account->password_hash = *new_hash;
  storage::WriteBatch batch;
  batch.Put(Family::kAccounts, owner, Serialize(*account));
  std::vector<std::string> revoked;
  BP_RETURN_IF_ERROR(d.RevokeSecrets(batch, owner, 's', &revoked));
  batch.Delete(Family::kMailTokens, hash);
  batch.Delete(Family::kAccountTokens, TokenIndexKey(owner, 'm', hash));
  BP_RETURN_IF_ERROR(d.WriteAccount(batch, *account));
  d.ForgetSessions(revoked);
  log::Info("accounts", "password reset", {{"account", owner}});
  return Status::Ok();
}

Status AccountService::DeleteAccount(const std::string& account_id, std::string_view password) {
  Impl& d = *impl_;
  auto account = d.MustReadAccount(account_id);
  if (!account.ok()) return account.status();
  if (!protocol::VerifyPassword(password, account->password_hash)) {
    return PermissionDenied("password is incorrect");
  }
  std::vector<std::string> lock_keys{AccountLock(account_id)};
  for (const auto& e : account->emails) lock_keys.push_back(EmailLock(protocol::NormalizeEmail(e.address)));
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock(lock_keys));
  auto current = d.MustLoadAccount(account_id);  // emails may have changed before the lock
  if (!current.ok()) return current.status();
  storage::WriteBatch batch;
  batch.Delete(Family::kAccounts, account_id);
  for (const auto& e : current->emails) {
    const std::string normalized = protocol::NormalizeEmail(e.address);
    auto claim = d.LoadClaim(normalized);
    if (!claim.ok()) return claim.status();
    if (claim->has_value() && (*claim)->account == account_id) batch.Delete(Family::kEmailIndex, normalized);
  }
  std::vector<std::string> revoked;
  BP_RETURN_IF_ERROR(d.RevokeSecrets(batch, account_id, 0, &revoked));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.accounts.Erase(account_id);
  d.ForgetSessions(revoked);
  guard.reset();
  log::Info("accounts", "account deleted", {{"account", account_id}});
  d.listeners.Notify(Change{Change::Subject::kAccount, account_id, "", {}});
  return Status::Ok();
}

void AccountService::AddChangeListener(ChangeListener listener) { impl_->listeners.Add(std::move(listener)); }

Result<size_t> AccountService::PurgeExpired(size_t limit) {
  Impl& d = *impl_;
  const int64_t now = d.clock();
  storage::WriteBatch batch;
  std::vector<std::string> sessions;
  size_t purged = 0;
  for (const auto& [family, kind] : {std::pair{Family::kSessions, 's'}, std::pair{Family::kMailTokens, 'm'}}) {
    BP_RETURN_IF_ERROR(d.store.Scan(family, "", [&](std::string_view key, std::string_view value) {
      json j = json::parse(value, nullptr, false);
      if (!j.is_object() || j.value("expires_at", int64_t{0}) > now) return true;
      batch.Delete(family, key);
      batch.Delete(Family::kAccountTokens, TokenIndexKey(j.value("account", ""), kind, key));
      if (kind == 's') sessions.emplace_back(key);
      return ++purged < limit;
    }));
    if (purged >= limit) break;
  }
  if (batch.empty()) return size_t{0};
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.ForgetSessions(sessions);
  return purged;
}

}  // namespace backpack
