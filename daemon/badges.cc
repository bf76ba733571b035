#include "daemon/badges.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cinttypes>
#include <mutex>
#include <random>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/time.h"
#include "daemon/log.h"
#include "protocol/encoding.h"

namespace backpack {

using nlohmann::json;
using storage::Family;

std::string_view BadgeStateName(BadgeState state) {
  switch (state) {
    case BadgeState::kPending:
      return "pending";
    case BadgeState::kAccepted:
      return "accepted";
    case BadgeState::kRejected:
      return "rejected";
  }
  return "accepted";
}

std::string_view BadgeStatusName(BadgeStatus status) {
  switch (status) {
    case BadgeStatus::kValid:
      return "valid";
    case BadgeStatus::kRevoked:
      return "revoked";
    case BadgeStatus::kExpired:
      return "expired";
    case BadgeStatus::kInvalid:
      return "invalid";
    case BadgeStatus::kUnverifiable:
      return "unverifiable";
  }
  return "invalid";
}

std::optional<BadgeState> ParseBadgeState(std::string_view name) {
  for (BadgeState s : {BadgeState::kPending, BadgeState::kAccepted, BadgeState::kRejected}) {
    if (BadgeStateName(s) == name) return s;
  }
  return std::nullopt;
}

namespace {

std::optional<BadgeStatus> ParseBadgeStatus(std::string_view name) {
  for (BadgeStatus s : {BadgeStatus::kValid, BadgeStatus::kRevoked, BadgeStatus::kExpired, BadgeStatus::kInvalid,
                        BadgeStatus::kUnverifiable}) {
    if (BadgeStatusName(s) == name) return s;
  }
  return std::nullopt;
}

// ---- Keys (docs/storage.md) --------------------------------------------------

std::string RecordKey(std::string_view account, std::string_view badge) {
  return fmt::format("{}/{}", account, badge);
}
std::string BlobPrefix(std::string_view account, std::string_view badge) {
  return fmt::format("{}/{}/", account, badge);
}
std::string AssertionBlobKey(std::string_view account, std::string_view badge) {
  return BlobPrefix(account, badge) + "a";
}
std::string ImageBlobKey(std::string_view account, std::string_view badge) {
  return BlobPrefix(account, badge) + "i";
}
std::string DocumentBlobKey(std::string_view account, std::string_view badge, std::string_view url) {
  return BlobPrefix(account, badge) + "d/" + std::string(url);
}
std::string IdentityKey(std::string_view account, std::string_view identity) {
  return fmt::format("{}/{}", account, protocol::Sha256Hex(identity));
}
// The badge count lives beside the identity keys; '#' sorts before '/', so
// it never shows in a scan of "account/".
std::string CountKey(std::string_view account) { return fmt::format("{}#count", account); }
std::string QueueKey(int64_t due, std::string_view account, std::string_view badge) {
  return fmt::format("{:016d}/{}/{}", std::max<int64_t>(due, 0), account, badge);
}

// A stored document: "<status>\n<final url>\n<body>".
std::string EncodeDocument(const protocol::FetchedDocument& doc) {
  return fmt::format("{}\n{}\n", doc.status, doc.final_url) + doc.body;
}
std::optional<protocol::FetchedDocument> DecodeDocument(std::string_view value) {
  const size_t a = value.find('\n');
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = value.find('\n', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  protocol::FetchedDocument doc;
  const std::string_view status = value.substr(0, a);
  if (std::from_chars(status.data(), status.data() + status.size(), doc.status).ec != std::errc()) return std::nullopt;
  doc.final_url = std::string(value.substr(a + 1, b - a - 1));
  doc.body = std::string(value.substr(b + 1));
  return doc;
}

// ---- The normalised badge (docs/api.md) --------------------------------------

json NonEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
json Time(const std::optional<int64_t>& t) { return t ? json(FormatRfc3339(*t)) : json(nullptr); }

// What an OB 3.0 credential says beyond the common model.
json RenderCredential(const protocol::CredentialDetails& d) {
  json results = json::array();
  for (const std::string& result : d.results) {
    json parsed = json::parse(result, nullptr, false);
    if (!parsed.is_discarded()) results.push_back(std::move(parsed));
  }
  json statuses = json::array();
  for (const auto& s : d.statuses) {
    statuses.push_back({{"type", s.type},
                        {"purpose", NonEmpty(s.purpose)},
                        {"list", NonEmpty(s.list_url)},
                        {"index", s.index ? json(*s.index) : json(nullptr)}});
  }
  json proofs = json::array();
  for (const auto& p : d.proofs) {
    proofs.push_back({{"type", p.type},
                      {"cryptosuite", NonEmpty(p.cryptosuite)},
                      {"verification_method", NonEmpty(p.verification_method)}});
  }
  return {
      {"types", d.types},
      {"form", d.form == protocol::CredentialForm::kJson ? "json" : "jwt"},
      {"data_model", d.data_model == protocol::DataModel::kV2_0   ? json("2.0")
                     : d.data_model == protocol::DataModel::kV1_1 ? json("1.1")
                                                                  : json(nullptr)},
      {"name", NonEmpty(d.name)},
      {"description", NonEmpty(d.description)},
      {"awarded_date", Time(d.awarded_date)},
      {"subject_id", NonEmpty(d.subject_id)},
      {"achievement_type", NonEmpty(d.achievement_type)},
      {"achievement_creator", NonEmpty(d.achievement_creator)},
      {"results", std::move(results)},
      {"statuses", std::move(statuses)},
      {"proofs", std::move(proofs)},
  };
}

std::string RenderBadge(const protocol::Badge& b, const protocol::CredentialDetails* credential) {
  const protocol::BadgeClass& c = b.badge_class;
  const protocol::Issuer& i = b.issuer;
  json evidence = json::array();
  for (const auto& e : b.evidence) {
    evidence.push_back({{"id", NonEmpty(e.id)}, {"name", NonEmpty(e.name)}, {"description", NonEmpty(e.description)},
                        {"narrative", NonEmpty(e.narrative)}});
  }
  json alignment = json::array();
  for (const auto& a : c.alignment) {
    alignment.push_back({{"target_name", NonEmpty(a.target_name)}, {"target_url", NonEmpty(a.target_url)},
                         {"target_description", NonEmpty(a.target_description)},
                         {"target_framework", NonEmpty(a.target_framework)}, {"target_code", NonEmpty(a.target_code)}});
  }
  json extensions = json::array();
  for (const auto* kept : {&b.kept, &c.kept, &i.kept}) {
    for (const auto& name : kept->extensions) extensions.push_back(name);
  }
  json out = {
      {"spec_version", std::string(protocol::SpecVersionName(b.spec_version))},
      {"id", NonEmpty(b.id)},
      {"name", c.name},
      {"description", c.description},
      {"image", NonEmpty(b.image.empty() ? c.image : b.image)},
      {"criteria", {{"url", NonEmpty(c.criteria.url)}, {"narrative", NonEmpty(c.criteria.narrative)}}},
      {"badge_class", {{"id", NonEmpty(c.id)}, {"image", NonEmpty(c.image)}, {"version", NonEmpty(c.version)}}},
      {"issuer",
       {{"id", NonEmpty(i.id.empty() ? c.issuer_id : i.id)},
        {"name", i.name.empty() ? json(i.org.empty() ? nullptr : json(i.org)) : json(i.name)},
        {"url", NonEmpty(i.url)},
        {"email", NonEmpty(i.email)},
        {"image", NonEmpty(i.image)},
        {"description", NonEmpty(i.description)}}},
      {"recipient",
       {{"type", std::string(protocol::IdentityTypeName(b.recipient.type))},
        {"hashed", b.recipient.hashed},
        {"identity", b.recipient.identity}}},
      {"issued_on", Time(b.issued_on)},
      {"expires", Time(b.expires)},
      {"narrative", NonEmpty(b.narrative)},
      {"evidence", evidence},
      {"alignment", alignment},
      {"tags", c.tags},
      {"endorsements", b.endorsements.size()},
      {"related", b.related},
      {"language", NonEmpty(b.language.empty() ? c.language : b.language)},
      {"verification",
       {{"type", b.verification.type == protocol::VerificationType::kSigned   ? "signed"
                 : b.verification.type == protocol::VerificationType::kHosted ? "hosted"
                                                                              : "unknown"},
        {"url", NonEmpty(b.verification.url)}}},
      {"extensions", extensions},
  };
  if (credential != nullptr) out["credential"] = RenderCredential(*credential);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What makes two imports the same badge. The issuer is part of it so that
// one issuer cannot shadow another's badge by reusing its id.
std::string BadgeIdentity(const VerifyOutcome& v) {
  const protocol::Badge& b = v.result.badge;
  if (v.credential) {
    // OB 3.0 "credential equality": the same issuer id and credential id.
    if (!b.id.empty() && !b.issuer.id.empty()) return "credential\n" + b.issuer.id + "\n" + b.id;
    return "sha256\n" + protocol::Sha256Hex(v.assertion);
  }
  const std::string issuer = b.issuer.id.empty() ? b.badge_class.issuer_id : b.issuer.id;
  if (!b.id.empty()) return "id\n" + issuer + "\n" + b.id;
  if (!b.verification.url.empty() && b.verification.type == protocol::VerificationType::kHosted) {
    return "hosted\n" + b.verification.url;
  }
  if (!v.source_url.empty()) return "hosted\n" + v.source_url;
  if (!b.uid.empty()) return "uid\n" + issuer + "\n" + b.issuer.origin + "\n" + b.uid;
  return "sha256\n" + protocol::Sha256Hex(v.assertion);
}

// ---- Records -------------------------------------------------------------------

// The record's scalar members, then the badge and report JSON spliced in
// verbatim (they are JSON already; parsing them again costs more than
// everything else here).
std::string EncodeRecord(const BadgeRecord& r) {
  json j = {
      {"id", r.id},
      {"account", r.account},
      {"state", std::string(BadgeStateName(r.state))},
      {"status", std::string(BadgeStatusName(r.status))},
      {"status_since", r.status_since},
      {"imported_at", r.imported_at},
      {"checked_at", r.checked_at},
      {"next_check_at", r.next_check_at},
      {"failures", r.failures},
      {"spec_version", r.spec_version},
      {"input_kind", r.input_kind},
      {"assertion_form", r.assertion_form},
      {"source_url", r.source_url},
      {"image_format", r.image_format},
      {"recipient", r.recipient},
      {"identity", r.identity},
      {"documents", r.document_urls},
  };
  if (r.valid_from) j["valid_from"] = *r.valid_from;
  if (r.replaced_at != 0) j["replaced_at"] = r.replaced_at;
  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  out.pop_back();  // '}'
  out += ",\"badge\":";
  out += r.badge_json.empty() ? "{}" : r.badge_json;
  out += ",\"report\":";
  out += r.report_json.empty() ? "{}" : r.report_json;
  out += '}';
  return out;
}

Result<BadgeRecord> DecodeRecord(std::string_view value) {
  const json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return DataLoss("badge record is not JSON");
  try {
    BadgeRecord r;
    r.id = j.at("id").get<std::string>();
    r.account = j.at("account").get<std::string>();
    r.state = ParseBadgeState(j.at("state").get<std::string>()).value_or(BadgeState::kAccepted);
    r.status = ParseBadgeStatus(j.at("status").get<std::string>()).value_or(BadgeStatus::kInvalid);
    r.status_since = j.value("status_since", int64_t{0});
    r.imported_at = j.value("imported_at", int64_t{0});
    r.checked_at = j.value("checked_at", int64_t{0});
    r.next_check_at = j.value("next_check_at", int64_t{0});
    r.failures = j.value("failures", 0);
    r.spec_version = j.value("spec_version", "");
    r.input_kind = j.value("input_kind", "");
    r.assertion_form = j.value("assertion_form", "json");
    r.source_url = j.value("source_url", "");
    r.image_format = j.value("image_format", "");
    r.recipient = j.value("recipient", "");
    r.identity = j.value("identity", "");
    r.badge_json = j.contains("badge") ? j["badge"].dump() : "{}";
    r.report_json = j.contains("report") ? j["report"].dump() : "{}";
    if (j.contains("documents")) r.document_urls = j["documents"].get<std::vector<std::string>>();
    if (j.contains("valid_from")) r.valid_from = j["valid_from"].get<int64_t>();
    r.replaced_at = j.value("replaced_at", int64_t{0});
    return r;
  } catch (const json::exception& e) {
    return DataLoss(fmt::format("badge record is malformed: {}", e.what()));
  }
}

// The verdict of one verification.
BadgeStatus StatusOf(const VerifyOutcome& v) {
  const protocol::VerificationReport& report = v.result.report;
  if (report.valid()) return BadgeStatus::kValid;
  if (report.HasError(protocol::check::kRevoked)) return BadgeStatus::kRevoked;
  if (report.HasError(protocol::check::kExpired)) return BadgeStatus::kExpired;
  if (v.transient_failure) return BadgeStatus::kUnverifiable;
  return BadgeStatus::kInvalid;
}

// Whether a verified credential replaces stored record `r` of the same
// identity: OB 3.0 says the one with the later validFrom wins; an assertion
// never replaces.
bool Replaces(const VerifyOutcome& v, const BadgeRecord& r) {
  if (!v.credential || r.spec_version != "3.0") return false;
  const int64_t incoming = v.result.badge.issued_on.value_or(INT64_MIN);
  return incoming > r.valid_from.value_or(INT64_MIN);
}

InputKind KindOfStored(const BadgeRecord& r) {
  return r.assertion_form == "jws" ? InputKind::kJws : InputKind::kAssertion;
}

}  // namespace

struct BadgeService::Impl {
  Impl(storage::Store& s, storage::KeyLocks& l, AccountService& a, const BadgeVerifier& v,
       const config::BadgesConfig& c, UnixClock clk, RandomSource rnd)
      : store(s), locks(l), accounts(a), verifier(v), config(c), clock(std::move(clk)), random(std::move(rnd)) {}

  storage::Store& store;
  storage::KeyLocks& locks;
  AccountService& accounts;
  const BadgeVerifier& verifier;
  config::BadgesConfig config;
  UnixClock clock;
  RandomSource random;
  std::mutex jitter_mu;
  // Badge counts of the accounts seen lately, kept in step with the
  // counters in storage (which the writes update with WriteBatch::Add).
  // Reading the stored counter merges every addition not yet compacted, so
  // it is read once per account rather than once per import.
  static constexpr size_t kMaxCachedCounts = 100000;
  std::mutex count_mu;
  std::unordered_map<std::string, int64_t> counts;
  std::minstd_rand jitter{std::random_device{}()};
  ChangeListeners listeners;

  void Notify(const std::string& account, const std::string& badge) {
    listeners.Notify(Change{Change::Subject::kBadge, account, badge, {badge}});
  }

  Result<std::vector<std::string>> VerifiedEmails(const std::string& account) {
    auto view = accounts.GetAccount(account);
    if (!view.ok()) return view.status();
    std::vector<std::string> out;
    for (const auto& e : view->emails) {
      if (e.verified) out.push_back(e.address);
    }
    return out;
  }

  // Badge ids sort newest first: the inverted import time in microseconds,
  // then random bits so two imports in one microsecond differ.
  std::string NewBadgeId(int64_t now_seconds) {
    static std::atomic<uint64_t> last{0};
    uint64_t micros = static_cast<uint64_t>(now_seconds) * 1000000u;
    uint64_t prev = last.load();
    // Strictly increasing within the process, so ids keep import order.
    while (true) {
      const uint64_t next = std::max(micros, prev + 1);
      if (last.compare_exchange_weak(prev, next)) {
        micros = next;
        break;
      }
    }
    return fmt::format("{:016x}{}", ~micros, protocol::HexEncode(random(4)));
  }

  int64_t Jitter(int64_t seconds) {
    if (seconds <= 10) return seconds;
    std::lock_guard<std::mutex> lock(jitter_mu);
    std::uniform_int_distribution<int64_t> d(0, seconds / 10);
    return seconds + d(jitter);
  }

  // When to check again after a verification with status `status`.
  int64_t NextCheck(BadgeStatus status, int failures, const protocol::Badge& badge, int64_t now) {
    const int64_t interval = int64_t{config.reverify_interval_hours} * 3600;
    switch (status) {
      case BadgeStatus::kRevoked:
      case BadgeStatus::kExpired:
        return 0;
      case BadgeStatus::kUnverifiable: {
        int64_t wait = config.retry_min_seconds;
        for (int i = 1; i < failures && wait < config.retry_max_seconds; ++i) wait *= 2;
        return now + std::min<int64_t>(Jitter(wait), config.retry_max_seconds);
      }
      case BadgeStatus::kValid:
      case BadgeStatus::kInvalid: {
        int64_t next = now + Jitter(interval);
        // Notice expiry when it happens, not up to an interval later.
        if (badge.expires && *badge.expires >= now && *badge.expires + 1 < next) next = *badge.expires + 1;
        return next;
      }
    }
    return now + interval;
  }

  // Applies a verification to a record (status, report, schedule).
  void Apply(BadgeRecord& r, const VerifyOutcome& v, int64_t now) {
    const BadgeStatus status = StatusOf(v);
    if (status != r.status || r.status_since == 0) r.status_since = now;
    r.status = status;
    r.failures = status == BadgeStatus::kUnverifiable ? r.failures + 1 : 0;
    r.checked_at = now;
    r.report_json = v.result.report.ToJson();
    // The normalised badge follows the issuer's current documents, unless
    // they could not be read this time.
    if (status == BadgeStatus::kValid) r.badge_json = RenderBadge(v.result.badge, v.credential ? &*v.credential : nullptr);
    r.next_check_at = NextCheck(status, r.failures, v.result.badge, now);
  }

  // Puts the fetched documents that answered; removes the ones no longer used.
  void PutDocuments(storage::WriteBatch& batch, BadgeRecord& r, const VerifyOutcome& v, bool replace) {
    std::vector<std::string> urls;
    for (const auto& [url, doc] : v.documents) {
      const bool fallback = std::find(v.fallback_urls.begin(), v.fallback_urls.end(), url) != v.fallback_urls.end();
      if (doc.status < 200 || doc.status >= 300) {
        if (doc.status != 410) continue;
      }
      if (fallback && replace) continue;  // keep what we had rather than a copy of it
      batch.Put(Family::kBadgeBlobs, DocumentBlobKey(r.account, r.id, url), EncodeDocument(doc));
      urls.push_back(url);
    }
    if (replace) {
      for (const std::string& old : r.document_urls) {
        if (std::find(urls.begin(), urls.end(), old) == urls.end() && !v.documents.contains(old)) {
          batch.Delete(Family::kBadgeBlobs, DocumentBlobKey(r.account, r.id, old));
        } else if (std::find(urls.begin(), urls.end(), old) == urls.end()) {
          urls.push_back(old);  // fetched but failed this time: keep the last good copy
        }
      }
    }
    std::sort(urls.begin(), urls.end());
    urls.erase(std::unique(urls.begin(), urls.end()), urls.end());
    r.document_urls = std::move(urls);
  }

  Result<std::optional<BadgeRecord>> Load(const std::string& account, std::string_view badge) {
    auto value = store.Get(Family::kBadges, RecordKey(account, badge));
    if (!value.ok()) return value.status();
    if (!value->has_value()) return std::optional<BadgeRecord>();
    auto record = DecodeRecord(**value);
    if (!record.ok()) return record.status();
    return std::optional<BadgeRecord>(std::move(*record));
  }

  Result<BadgeRecord> LoadExisting(const std::string& account, std::string_view badge) {
    auto r = Load(account, badge);
    if (!r.ok()) return r.status();
    if (!r->has_value()) return NotFound("no such badge");
    return std::move(**r);
  }

  Result<int64_t> CachedCount(const std::string& account) {
    {
      std::lock_guard<std::mutex> lock(count_mu);
      if (auto it = counts.find(account); it != counts.end()) return it->second;
    }
    auto stored = Count(account);
    if (!stored.ok()) return stored;
    std::lock_guard<std::mutex> lock(count_mu);
    if (counts.size() >= kMaxCachedCounts) counts.clear();  // all reload from storage
    return counts.emplace(account, *stored).first->second;
  }

  void AdjustCachedCount(const std::string& account, int64_t delta) {
    std::lock_guard<std::mutex> lock(count_mu);
    if (auto it = counts.find(account); it != counts.end()) it->second += delta;
  }

  void ForgetCount(const std::string& account) {
    std::lock_guard<std::mutex> lock(count_mu);
    counts.erase(account);
  }

  Result<int64_t> Count(const std::string& account) {
    auto value = store.Get(Family::kBadgeKeys, CountKey(account));
    if (!value.ok()) return value.status();
    if (!value->has_value()) return int64_t{0};
    int64_t n = 0;
    const std::string& s = **value;
    if (std::from_chars(s.data(), s.data() + s.size(), n).ec != std::errc()) return DataLoss("badge count is corrupt");
    return n;
  }

  // Re-verifies a stored record and writes the outcome. `force`: revalidate
  // every document with its server.
  Result<BadgeRecord> RecheckRecord(const BadgeRecord& stored, bool force) {
    auto original = store.Get(Family::kBadgeBlobs, AssertionBlobKey(stored.account, stored.id));
    if (!original.ok()) return original.status();
    if (!original->has_value()) return DataLoss("badge bytes are missing");
    VerifyRequest request;
    request.kind = KindOfStored(stored);
    request.data = std::move(**original);
    request.source_url = stored.source_url;
    request.now = clock();
    request.freshness = force ? FetchFreshness::kRevalidate : FetchFreshness::kReuseFresh;
    auto emails = VerifiedEmails(stored.account);
    if (!emails.ok()) return emails.status();
    request.verified_emails = std::move(*emails);
    // The address it was awarded to stays good for it even if the earner
    // later removed that address from the account.
    if (!stored.recipient.empty()) request.verified_emails.push_back(stored.recipient);
    const VerifyOutcome outcome = verifier.Verify(request);

    const std::string key = RecordKey(stored.account, stored.id);
    auto guard = locks.Lock({key});
    auto current = Load(stored.account, stored.id);
    if (!current.ok()) return current.status();
    if (!current->has_value()) return NotFound("the badge was deleted");
    BadgeRecord r = std::move(**current);
    const int64_t old_due = r.next_check_at;
    Apply(r, outcome, request.now);
    storage::WriteBatch batch;
    PutDocuments(batch, r, outcome, /*replace=*/true);
    if (old_due != 0) batch.Delete(Family::kRecheckQueue, QueueKey(old_due, r.account, r.id));
    if (r.next_check_at != 0) batch.Put(Family::kRecheckQueue, QueueKey(r.next_check_at, r.account, r.id), "");
    batch.Put(Family::kBadges, key, EncodeRecord(r));
    BP_RETURN_IF_ERROR(store.Write(batch));
    return r;
  }

  // Moves a badge's next check to `when`, leaving its verdict alone.
  Status Postpone(const BadgeRecord& stored, int64_t when) {
    const std::string key = RecordKey(stored.account, stored.id);
    auto guard = locks.Lock({key});
    auto current = Load(stored.account, stored.id);
    if (!current.ok()) return current.status();
    if (!current->has_value()) return Status::Ok();
    BadgeRecord r = std::move(**current);
    storage::WriteBatch batch;
    if (r.next_check_at != 0) batch.Delete(Family::kRecheckQueue, QueueKey(r.next_check_at, r.account, r.id));
    r.next_check_at = when;
    batch.Put(Family::kRecheckQueue, QueueKey(when, r.account, r.id), "");
    batch.Put(Family::kBadges, key, EncodeRecord(r));
    return store.Write(batch);
  }

  // The record's description of an import: how it came and what it is.
  void Describe(BadgeRecord& r, const VerifyRequest& input, const VerifyOutcome& outcome, int64_t now) {
    r.spec_version = std::string(protocol::SpecVersionName(outcome.result.badge.spec_version));
    r.input_kind = std::string(InputKindName(input.kind));
    r.assertion_form = outcome.assertion_form == protocol::PayloadForm::kJws ? "jws" : "json";
    r.source_url = outcome.source_url;
    r.image_format.clear();
    if (outcome.image_format) r.image_format = std::string(protocol::ImageFormatName(*outcome.image_format));
    r.recipient = outcome.result.matched_email;
    r.valid_from.reset();
    if (outcome.credential) r.valid_from = outcome.result.badge.issued_on;
    Apply(r, outcome, now);  // renders badge_json: the outcome is valid
    if (!outcome.fallback_urls.empty()) {
      // Verified against kept copies only: say so, and try live again soon.
      r.status = BadgeStatus::kUnverifiable;
      r.failures = 1;
      r.next_check_at = NextCheck(r.status, r.failures, outcome.result.badge, now);
    }
  }

  // A new badge. Caller holds the identity lock.
  Result<ImportResult> Create(const std::string& account_id, const std::string& identity, const VerifyRequest& input,
                              const ImportOptions& options, const VerifyOutcome& outcome, int64_t now,
                              ImportResult& result) {
    auto count = CachedCount(account_id);
    if (!count.ok()) return count.status();
    if (*count >= config.max_per_account) {
      return FailedPrecondition(fmt::format("the account holds the most badges allowed ({})", config.max_per_account));
    }
    BadgeRecord r;
    r.account = account_id;
    r.identity = identity;
    r.id = NewBadgeId(now);
    r.state = options.state;
    r.imported_at = now;
    Describe(r, input, outcome, now);

    storage::WriteBatch batch;
    batch.Put(Family::kBadgeBlobs, AssertionBlobKey(account_id, r.id), outcome.assertion);
    if (input.kind == InputKind::kImage) batch.Put(Family::kBadgeBlobs, ImageBlobKey(account_id, r.id), input.data);
    PutDocuments(batch, r, outcome, /*replace=*/false);
    batch.Put(Family::kBadges, RecordKey(account_id, r.id), EncodeRecord(r));
    batch.Put(Family::kBadgeKeys, IdentityKey(account_id, identity), r.id);
    batch.Add(Family::kBadgeKeys, CountKey(account_id), 1);
    if (r.next_check_at != 0) batch.Put(Family::kRecheckQueue, QueueKey(r.next_check_at, account_id, r.id), "");
    BP_RETURN_IF_ERROR(store.Write(batch));
    AdjustCachedCount(account_id, 1);
    result.outcome = ImportResult::Outcome::kCreated;
    result.record = std::move(r);
    return result;
  }

  // Replaces stored badge `stored_id` with a newer credential: the same
  // record id and state, the new bytes, documents and verdict, in one batch.
  // False when the identity no longer leads to that badge (deleted or
  // replaced meanwhile): the caller looks again.
  Result<bool> Replace(const std::string& account_id, const std::string& identity_key, const std::string& stored_id,
                       const VerifyRequest& input, const VerifyOutcome& outcome, int64_t now,
                       ImportResult& result) {
    const std::string key = RecordKey(account_id, stored_id);
    auto guard = locks.Lock({identity_key, key});
    auto mapped = store.Get(Family::kBadgeKeys, identity_key);
    if (!mapped.ok()) return mapped.status();
    if (!mapped->has_value() || **mapped != stored_id) return false;
    auto current = LoadExisting(account_id, stored_id);
    if (!current.ok()) return current.status();
    if (!Replaces(outcome, *current)) {
      result.outcome = ImportResult::Outcome::kExisting;
      result.record = std::move(*current);
      return true;
    }
    BadgeRecord r = std::move(*current);
    storage::WriteBatch batch;
    // The old bytes go; the new ones are written after them in the batch.
    std::vector<std::string> blobs;
    BP_RETURN_IF_ERROR(store.Scan(Family::kBadgeBlobs, BlobPrefix(account_id, r.id),
                                  [&](std::string_view k, std::string_view) {
                                    blobs.emplace_back(k);
                                    return true;
                                  }));
    for (const auto& k : blobs) batch.Delete(Family::kBadgeBlobs, k);
    if (r.next_check_at != 0) batch.Delete(Family::kRecheckQueue, QueueKey(r.next_check_at, account_id, r.id));
    r.document_urls.clear();
    r.failures = 0;
    r.replaced_at = now;
    Describe(r, input, outcome, now);
    batch.Put(Family::kBadgeBlobs, AssertionBlobKey(account_id, r.id), outcome.assertion);
    if (input.kind == InputKind::kImage) batch.Put(Family::kBadgeBlobs, ImageBlobKey(account_id, r.id), input.data);
    PutDocuments(batch, r, outcome, /*replace=*/false);
    batch.Put(Family::kBadges, key, EncodeRecord(r));
    if (r.next_check_at != 0) batch.Put(Family::kRecheckQueue, QueueKey(r.next_check_at, account_id, r.id), "");
    BP_RETURN_IF_ERROR(store.Write(batch));
    result.outcome = ImportResult::Outcome::kReplaced;
    result.record = std::move(r);
    return true;
  }

  Status DeleteLocked(const BadgeRecord& r, storage::WriteBatch& batch) {
    batch.Delete(Family::kBadges, RecordKey(r.account, r.id));
    batch.Delete(Family::kBadgeKeys, IdentityKey(r.account, r.identity));
    if (r.next_check_at != 0) batch.Delete(Family::kRecheckQueue, QueueKey(r.next_check_at, r.account, r.id));
    std::vector<std::string> blobs;
    BP_RETURN_IF_ERROR(store.Scan(Family::kBadgeBlobs, BlobPrefix(r.account, r.id),
                                  [&](std::string_view k, std::string_view) {
                                    blobs.emplace_back(k);
                                    return true;
                                  }));
    for (const auto& k : blobs) batch.Delete(Family::kBadgeBlobs, k);
    return Status::Ok();
  }
};

BadgeService::BadgeService(storage::Store& store, storage::KeyLocks& locks, AccountService& accounts,
                           const BadgeVerifier& verifier, const config::BadgesConfig& config, UnixClock clock,
                           RandomSource random)
    : impl_(std::make_unique<Impl>(store, locks, accounts, verifier, config, std::move(clock), std::move(random))) {}

BadgeService::~BadgeService() = default;

Result<ImportResult> BadgeService::Import(const std::string& account_id, const VerifyRequest& input,
                                          const ImportOptions& options) {
  auto result = ImportUnnotified(account_id, input, options);
  if (result.ok() && (result->outcome == ImportResult::Outcome::kCreated ||
                      result->outcome == ImportResult::Outcome::kReplaced)) {
    impl_->Notify(account_id, result->record.id);
  }
  return result;
}

// Import without telling the listeners: it returns from under its locks.
Result<ImportResult> BadgeService::ImportUnnotified(const std::string& account_id, const VerifyRequest& input,
                                                    const ImportOptions& options) {
  Impl& d = *impl_;
  auto emails = d.VerifiedEmails(account_id);
  if (!emails.ok()) return emails.status();
  VerifyRequest request = input;
  request.now = d.clock();
  request.verified_emails = std::move(*emails);
  request.check_recipient = true;
  request.fallback_documents = options.fallback_documents;
  const VerifyOutcome outcome = d.verifier.Verify(request);

  ImportResult result;
  result.report_json = outcome.result.report.ToJson();
  // A badge is stored only once verified now, live: a fallback copy of a
  // document is not proof.
  const bool from_fallback = !outcome.fallback_urls.empty();
  if (!outcome.valid() || (from_fallback && !options.accept_fallback)) {
    result.outcome = ImportResult::Outcome::kRefused;
    return result;
  }

  const std::string identity = BadgeIdentity(outcome);
  const std::string identity_key = IdentityKey(account_id, identity);
  const int64_t now = request.now;
  // A newer credential replaces the stored one under the locks of both the
  // identity and the record; the identity lock alone is taken first, so a
  // replacement that finds the badge changed under it looks again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string stored_id;
    {
      // The identity key is locked (one writer per badge); the count is not:
      // the check below may let the imports in flight at that moment pass the
      // limit together, and their additions to the count are never lost.
      auto guard = d.locks.Lock({identity_key});
      auto existing = d.store.Get(Family::kBadgeKeys, identity_key);
      if (!existing.ok()) return existing.status();
      if (!existing->has_value()) return d.Create(account_id, identity, input, options, outcome, now, result);
      auto record = d.LoadExisting(account_id, **existing);
      if (!record.ok()) return record.status();
      if (!Replaces(outcome, *record)) {
        result.outcome = ImportResult::Outcome::kExisting;
        result.record = std::move(*record);
        return result;
      }
      stored_id = record->id;
    }
    auto replaced = d.Replace(account_id, identity_key, stored_id, input, outcome, now, result);
    if (!replaced.ok()) return replaced.status();
    if (*replaced) return result;
  }
  return Aborted("the badge kept changing while it was being replaced; try again");
}

Result<BadgePage> BadgeService::List(const std::string& account_id, std::optional<BadgeState> state, size_t limit,
                                     std::string_view cursor) {
  Impl& d = *impl_;
  limit = std::clamp<size_t>(limit, 1, 1000);
  const std::string prefix = account_id + "/";
  std::string start = prefix;
  if (!cursor.empty()) {
    if (cursor.find('/') != std::string_view::npos) return InvalidArgument("cursor is malformed");
    start = prefix + std::string(cursor) + std::string(1, '\0');
  }
  BadgePage page;
  Status decode_error;
  bool more = false;
  BP_RETURN_IF_ERROR(d.store.ScanFrom(Family::kBadges, prefix, start, [&](std::string_view, std::string_view value) {
    auto r = DecodeRecord(value);
    if (!r.ok()) {
      decode_error = r.status();
      return false;
    }
    if (state && r->state != *state) return true;
    if (page.badges.size() == limit) {
      more = true;
      return false;
    }
    page.badges.push_back(std::move(*r));
    return true;
  }));
  BP_RETURN_IF_ERROR(decode_error);
  if (more) page.next_cursor = page.badges.back().id;
  return page;
}

Result<BadgeRecord> BadgeService::Get(const std::string& account_id, std::string_view badge_id) {
  if (badge_id.empty() || badge_id.find('/') != std::string_view::npos) return NotFound("no such badge");
  return impl_->LoadExisting(account_id, badge_id);
}

Result<BadgeOriginal> BadgeService::GetOriginal(const std::string& account_id, std::string_view badge_id) {
  Impl& d = *impl_;
  auto record = Get(account_id, badge_id);
  if (!record.ok()) return record.status();
  BadgeOriginal out;
  Status error;
  const std::string prefix = BlobPrefix(account_id, badge_id);
  BP_RETURN_IF_ERROR(d.store.Scan(Family::kBadgeBlobs, prefix, [&](std::string_view key, std::string_view value) {
    const std::string_view part = key.substr(prefix.size());
    if (part == "a") {
      out.assertion = std::string(value);
    } else if (part == "i") {
      out.image = std::string(value);
    } else if (part.starts_with("d/")) {
      auto doc = DecodeDocument(value);
      if (!doc) {
        error = DataLoss("a stored document is corrupt");
        return false;
      }
      out.documents.emplace(std::string(part.substr(2)), std::move(*doc));
    }
    return true;
  }));
  BP_RETURN_IF_ERROR(error);
  if (out.assertion.empty()) return DataLoss("badge bytes are missing");
  return out;
}

Result<BadgeRecord> BadgeService::SetState(const std::string& account_id, std::string_view badge_id, BadgeState state) {
  Impl& d = *impl_;
  const std::string key = RecordKey(account_id, badge_id);
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({key}));
  auto record = Get(account_id, badge_id);
  if (!record.ok()) return record.status();
  if (record->state == state) return record;
  record->state = state;
  storage::WriteBatch batch;
  batch.Put(Family::kBadges, key, EncodeRecord(*record));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  guard.reset();
  d.Notify(account_id, record->id);
  return record;
}

Status BadgeService::Delete(const std::string& account_id, std::string_view badge_id) {
  Impl& d = *impl_;
  auto record = Get(account_id, badge_id);
  if (!record.ok()) return record.status();
  const std::string key = RecordKey(account_id, badge_id);
  std::optional<storage::KeyLocks::Guard> guard(d.locks.Lock({key, IdentityKey(account_id, record->identity)}));
  auto current = d.LoadExisting(account_id, badge_id);  // again, under the lock
  if (!current.ok()) return current.status();
  storage::WriteBatch batch;
  BP_RETURN_IF_ERROR(d.DeleteLocked(*current, batch));
  batch.Add(Family::kBadgeKeys, CountKey(account_id), -1);
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.AdjustCachedCount(account_id, -1);
  guard.reset();
  d.Notify(account_id, current->id);
  return Status::Ok();
}

namespace {

// The bytes of a data: URI with base64 content, or nullopt.
std::optional<std::string> DataUriBytes(std::string_view uri) {
  if (!uri.starts_with("data:")) return std::nullopt;
  const size_t comma = uri.find(',');
  if (comma == std::string_view::npos || !uri.substr(0, comma).ends_with(";base64")) return std::nullopt;
  return protocol::Base64Decode(uri.substr(comma + 1));
}

}  // namespace

Result<BadgeService::BakedImage> BadgeService::Baked(const std::string& account_id, std::string_view badge_id) {
  Impl& d = *impl_;
  auto record = Get(account_id, badge_id);
  if (!record.ok()) return record.status();
  auto original = GetOriginal(account_id, badge_id);
  if (!original.ok()) return original.status();
  std::string image = original->image;
  if (image.empty()) {
    const json badge = json::parse(record->badge_json, nullptr, false);
    std::string url;
    if (badge.is_object() && badge.contains("image") && badge["image"].is_string()) url = badge["image"];
    if (url.empty()) return FailedPrecondition("the badge has no image to bake into");
    if (auto bytes = DataUriBytes(url)) {
      image = std::move(*bytes);
    } else if (url.starts_with("https://") || url.starts_with("http://")) {
      auto fetched = d.verifier.fetch()(url, FetchFreshness::kReuseFresh);
      if (!fetched.ok()) {
        return FailedPrecondition(fmt::format("the badge image could not be fetched: {}", fetched.status().message()));
      }
      image = std::move(fetched->body);
    } else {
      return FailedPrecondition("the badge image is neither a URL nor a base64 data: URI");
    }
  }
  auto format = protocol::DetectImageFormat(image);
  if (!format.ok()) return FailedPrecondition("the badge image is neither PNG nor SVG");
  protocol::BakedPayload payload;
  const bool credential = record->spec_version == "3.0";
  payload.kind = credential ? protocol::BadgeKind::kCredential : protocol::BadgeKind::kAssertion;
  payload.form = record->assertion_form == "jws" ? protocol::PayloadForm::kJws : protocol::PayloadForm::kJson;
  payload.data = original->assertion;
  // A hosted assertion keeps its address in an SVG's verify attribute.
  if (!credential && payload.form == protocol::PayloadForm::kJson && !record->source_url.empty()) {
    payload.verify_url = record->source_url;
  }
  auto baked = protocol::BakeBadge(image, payload);
  if (!baked.ok()) return FailedPrecondition(fmt::format("cannot bake the badge: {}", baked.status().message()));
  return BakedImage{std::move(*baked), *format == protocol::ImageFormat::kPng ? "image/png" : "image/svg+xml"};
}

Result<BadgeRecord> BadgeService::Recheck(const std::string& account_id, std::string_view badge_id) {
  auto record = Get(account_id, badge_id);
  if (!record.ok()) return record.status();
  return impl_->RecheckRecord(*record, /*force=*/true);
}

Result<size_t> BadgeService::RecheckDue(size_t limit) {
  Impl& d = *impl_;
  const int64_t now = d.clock();
  const std::string now_key = QueueKey(now + 1, "", "");
  struct Entry {
    std::string key;
    int64_t due = 0;
    std::string account;
    std::string badge;
  };
  std::vector<Entry> due;
  std::vector<std::string> malformed;
  BP_RETURN_IF_ERROR(d.store.Scan(
      Family::kRecheckQueue, "",
      [&](std::string_view key, std::string_view) {
        if (key >= now_key) return false;
        Entry e{std::string(key), 0, {}, {}};
        const std::string_view rest = key.size() > 17 ? key.substr(17) : std::string_view();
        const size_t slash = rest.find('/');
        if (key.size() <= 17 || key[16] != '/' || slash == std::string_view::npos ||
            std::from_chars(key.data(), key.data() + 16, e.due).ec != std::errc()) {
          malformed.emplace_back(key);
          return true;
        }
        e.account = std::string(rest.substr(0, slash));
        e.badge = std::string(rest.substr(slash + 1));
        due.push_back(std::move(e));
        return true;
      },
      limit));
  // Entries that lead nowhere (a malformed key, a badge deleted or already
  // rescheduled) are dropped, so they cannot hold up the queue.
  storage::WriteBatch stale;
  for (const std::string& key : malformed) stale.Delete(Family::kRecheckQueue, key);
  size_t handled = malformed.size();
  for (const Entry& e : due) {
    ++handled;
    auto record = d.Load(e.account, e.badge);
    if (!record.ok()) return record.status();
    if (!record->has_value() || (*record)->next_check_at != e.due) {
      stale.Delete(Family::kRecheckQueue, e.key);
      continue;
    }
    auto checked = d.RecheckRecord(**record, /*force=*/false);
    if (checked.ok()) continue;
    // The node could not re-check it (storage, or its account is gone):
    // try again later rather than at the head of every pass.
    log::Warn("badges", "re-check failed; postponed", {{"error", checked.status().ToString()}});
    BP_RETURN_IF_ERROR(d.Postpone(**record, now + d.config.retry_max_seconds));
  }
  BP_RETURN_IF_ERROR(d.store.Write(stale));
  return handled;
}

Result<std::optional<int64_t>> BadgeService::NextDue() {
  std::optional<int64_t> due;
  BP_RETURN_IF_ERROR(impl_->store.Scan(
      Family::kRecheckQueue, "",
      [&](std::string_view key, std::string_view) {
        int64_t t = 0;
        if (key.size() >= 16 && std::from_chars(key.data(), key.data() + 16, t).ec == std::errc()) due = t;
        return false;
      },
      1));
  return due;
}

void BadgeService::AddChangeListener(ChangeListener listener) { impl_->listeners.Add(std::move(listener)); }

Status BadgeService::DeleteAll(const std::string& account_id) {
  Impl& d = *impl_;
  for (;;) {
    auto page = List(account_id, std::nullopt, 200, "");
    if (!page.ok()) return page.status();
    if (page->badges.empty()) break;
    for (const BadgeRecord& r : page->badges) {
      Status s = Delete(account_id, r.id);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
  }
  storage::WriteBatch batch;
  batch.Delete(Family::kBadgeKeys, CountKey(account_id));
  BP_RETURN_IF_ERROR(d.store.Write(batch));
  d.ForgetCount(account_id);
  return Status::Ok();
}

}  // namespace backpack
