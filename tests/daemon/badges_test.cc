// BadgeService against a real RocksDB store, with our own test issuer
// answering fetches in memory and an injected clock.
#include "daemon/badges.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/baking.h"
#include "tests/support/badge_services.h"

namespace backpack {
namespace {

using nlohmann::json;

class BadgesTest : public testing::BadgeServicesTest {
 protected:
  void SetUp() override {
    BadgeServicesTest::SetUp();
    account_ = VerifiedAccount("ann@example.org");
  }

  ImportResult MustImport(InputKind kind, const std::string& data, const ImportOptions& options = {}) {
    VerifyRequest request;
    request.kind = kind;
    request.data = data;
    auto result = badges_->Import(account_, request, options);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : ImportResult{};
  }

  std::string account_;
};

TEST_F(BadgesTest, ImportKeepsTheIssuersBytesAndTheDocuments) {
  const std::string url = issuer_.AwardHosted({.email = "ann@example.org"});
  const ImportResult result = MustImport(InputKind::kUrl, url);
  ASSERT_EQ(result.outcome, ImportResult::Outcome::kCreated) << result.report_json;
  EXPECT_EQ(result.record.state, BadgeState::kAccepted);
  EXPECT_EQ(result.record.status, BadgeStatus::kValid);
  EXPECT_EQ(result.record.recipient, "ann@example.org");
  EXPECT_EQ(result.record.source_url, url);
  EXPECT_EQ(result.record.spec_version, "2.0");
  const json badge = json::parse(result.record.badge_json);
  EXPECT_FALSE(badge["name"].get<std::string>().empty());
  EXPECT_EQ(badge["issuer"]["id"], issuer_.IssuerUrl());

  auto original = badges_->GetOriginal(account_, result.record.id);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  EXPECT_EQ(original->assertion, issuer_.HostedJson(url));
  ASSERT_TRUE(original->documents.contains(issuer_.IssuerUrl()));
  ASSERT_TRUE(original->documents.contains(issuer_.BadgeClassUrl()));
  EXPECT_EQ(original->documents.at(issuer_.BadgeClassUrl()).status, 200);
  auto fetched = issuer_.Fetch(issuer_.BadgeClassUrl());
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(original->documents.at(issuer_.BadgeClassUrl()).body, fetched->body);

  auto again = badges_->Get(account_, result.record.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->report_json, result.record.report_json);
}

TEST_F(BadgesTest, TheSameBadgeTwiceIsOneRecord) {
  const std::string url = issuer_.AwardHosted({.email = "ann@example.org"});
  const ImportResult first = MustImport(InputKind::kUrl, url);
  ASSERT_EQ(first.outcome, ImportResult::Outcome::kCreated);
  // The same assertion pasted as JSON, and baked into an image.
  const ImportResult second = MustImport(InputKind::kAssertion, issuer_.HostedJson(url));
  EXPECT_EQ(second.outcome, ImportResult::Outcome::kExisting);
  EXPECT_EQ(second.record.id, first.record.id);
  const ImportResult third = MustImport(InputKind::kImage, issuer_.BakePng(url));
  EXPECT_EQ(third.outcome, ImportResult::Outcome::kExisting);
  EXPECT_EQ(CountKeys(storage::Family::kBadges), 1u);
}

TEST_F(BadgesTest, ARefusedBadgeLeavesNothingBehind) {
  const std::string url = issuer_.AwardHosted({.email = "someone-else@example.org"});
  const ImportResult result = MustImport(InputKind::kUrl, url);
  EXPECT_EQ(result.outcome, ImportResult::Outcome::kRefused);
  EXPECT_NE(result.report_json.find("VALIDATE_RECIPIENT"), std::string::npos) << result.report_json;
  for (storage::Family f : {storage::Family::kBadges, storage::Family::kBadgeBlobs, storage::Family::kBadgeKeys,
                            storage::Family::kRecheckQueue}) {
    EXPECT_EQ(CountKeys(f), 0u) << storage::FamilyName(f);
  }
}

TEST_F(BadgesTest, ListsNewestFirstInPagesAndByState) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ImportOptions options;
    options.state = i % 2 == 0 ? BadgeState::kAccepted : BadgeState::kPending;
    ids.push_back(MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}), options).record.id);
    now_ += 1;
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = badges_->List(account_, std::nullopt, 2, cursor);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& r : page->badges) seen.push_back(r.id);
    cursor = page->next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));

  auto pending = badges_->List(account_, BadgeState::kPending, 10, "");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->badges.size(), 2u);
  EXPECT_EQ(pending->badges[0].id, ids[3]);
  EXPECT_EQ(pending->badges[1].id, ids[1]);

  auto accepted = badges_->SetState(account_, ids[1], BadgeState::kAccepted);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(badges_->List(account_, BadgeState::kPending, 10, "")->badges.size(), 1u);
}

TEST_F(BadgesTest, DeleteRemovesTheBadgeAndItsBytes) {
  const std::string url = issuer_.AwardHosted({.email = "ann@example.org"});
  const ImportResult result = MustImport(InputKind::kImage, issuer_.BakeSvg(url));
  ASSERT_EQ(result.outcome, ImportResult::Outcome::kCreated) << result.report_json;
  EXPECT_EQ(result.record.image_format, "svg");
  ASSERT_TRUE(badges_->Delete(account_, result.record.id).ok());
  EXPECT_EQ(badges_->Get(account_, result.record.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(badges_->Delete(account_, result.record.id).code(), StatusCode::kNotFound);
  EXPECT_EQ(CountKeys(storage::Family::kBadges), 0u);
  EXPECT_EQ(CountKeys(storage::Family::kBadgeBlobs), 0u);
  EXPECT_EQ(CountKeys(storage::Family::kRecheckQueue), 0u);
  // Importing it again makes a new record.
  EXPECT_EQ(MustImport(InputKind::kUrl, url).outcome, ImportResult::Outcome::kCreated);
}

TEST_F(BadgesTest, ReverificationNoticesRevocation) {
  const std::string url = issuer_.AwardHosted({.email = "ann@example.org"});
  const std::string jws = issuer_.AwardSigned({.email = "ann@example.org"});
  const ImportResult hosted = MustImport(InputKind::kUrl, url);
  const ImportResult signed_badge = MustImport(InputKind::kJws, jws);
  ASSERT_EQ(hosted.outcome, ImportResult::Outcome::kCreated);
  ASSERT_EQ(signed_badge.outcome, ImportResult::Outcome::kCreated) << signed_badge.report_json;
  issuer_.Revoke(url);
  // The signed assertion's id is in its payload; revoke it by that id.
  auto jws_record = badges_->Get(account_, signed_badge.record.id);
  ASSERT_TRUE(jws_record.ok());
  issuer_.Revoke(json::parse(jws_record->badge_json)["id"].get<std::string>());

  // Nothing is due yet.
  auto none = badges_->RecheckDue(100);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  now_ += int64_t{badges_config_.reverify_interval_hours} * 3600 * 2;
  auto done = badges_->RecheckDue(100);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(*done, 2u);
  for (const std::string& id : {hosted.record.id, signed_badge.record.id}) {
    auto r = badges_->Get(account_, id);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, BadgeStatus::kRevoked) << r->report_json;
    EXPECT_EQ(r->status_since, now_.load());
    EXPECT_EQ(r->next_check_at, 0);  // final until asked
    EXPECT_NE(r->report_json.find("REVOKED"), std::string::npos);
  }
  // Still there, bytes and all.
  EXPECT_TRUE(badges_->GetOriginal(account_, hosted.record.id).ok());
  EXPECT_EQ(CountKeys(storage::Family::kRecheckQueue), 0u);
}

TEST_F(BadgesTest, AnUnreachableIssuerBacksOffAndRecovers) {
  badges_config_.retry_min_seconds = 60;
  MakeBadgeService();
  const ImportResult result = MustImport(InputKind::kUrl, issuer_.AwardHosted({.email = "ann@example.org"}));
  ASSERT_EQ(result.outcome, ImportResult::Outcome::kCreated);
  issuer_.SetDown(true);
  const int64_t down_since = now_.load();
  auto first = badges_->Recheck(account_, result.record.id);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->status, BadgeStatus::kUnverifiable) << first->report_json;
  EXPECT_EQ(first->status_since, down_since);
  EXPECT_EQ(first->failures, 1);
  const int64_t wait1 = first->next_check_at - now_.load();
  EXPECT_GE(wait1, 60);
  EXPECT_LE(wait1, 66);

  now_ = first->next_check_at;
  ASSERT_EQ(*badges_->RecheckDue(10), 1u);
  auto second = badges_->Get(account_, result.record.id);
  EXPECT_EQ(second->status, BadgeStatus::kUnverifiable);
  EXPECT_EQ(second->status_since, down_since);  // unverifiable since the first failure
  EXPECT_EQ(second->failures, 2);
  const int64_t wait2 = second->next_check_at - now_.load();
  EXPECT_GE(wait2, 120);
  EXPECT_LE(wait2, 132);

  issuer_.SetDown(false);
  now_ = second->next_check_at;
  ASSERT_EQ(*badges_->RecheckDue(10), 1u);
  auto third = badges_->Get(account_, result.record.id);
  EXPECT_EQ(third->status, BadgeStatus::kValid);
  EXPECT_EQ(third->failures, 0);
  EXPECT_GE(third->next_check_at - now_.load(), int64_t{badges_config_.reverify_interval_hours} * 3600);
}

TEST_F(BadgesTest, ExpiryIsNoticedWhenItComes) {
  const int64_t expires = now_.load() + 3600;
  const ImportResult result =
      MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org", .expires = expires}));
  ASSERT_EQ(result.outcome, ImportResult::Outcome::kCreated) << result.report_json;
  EXPECT_EQ(result.record.next_check_at, expires + 1);
  auto due = badges_->NextDue();
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(due->value_or(0), expires + 1);
  now_ = expires + 1;
  ASSERT_EQ(*badges_->RecheckDue(10), 1u);
  EXPECT_EQ(badges_->Get(account_, result.record.id)->status, BadgeStatus::kExpired);
}

TEST_F(BadgesTest, TheAccountLimitHolds) {
  badges_config_.max_per_account = 2;
  MakeBadgeService();
  MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}));
  const ImportResult second = MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}));
  VerifyRequest third;
  third.kind = InputKind::kJws;
  third.data = issuer_.AwardSigned({.email = "ann@example.org"});
  EXPECT_EQ(badges_->Import(account_, third).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(badges_->Delete(account_, second.record.id).ok());
  EXPECT_TRUE(badges_->Import(account_, third).ok());
}

TEST_F(BadgesTest, BakedCarriesTheOriginalAssertion) {
  const std::string jws = issuer_.AwardSigned({.email = "ann@example.org"});
  const ImportResult from_png = MustImport(InputKind::kImage, issuer_.BakePng(jws));
  ASSERT_EQ(from_png.outcome, ImportResult::Outcome::kCreated) << from_png.report_json;
  auto baked = badges_->Baked(account_, from_png.record.id);
  ASSERT_TRUE(baked.ok()) << baked.status().ToString();
  EXPECT_EQ(baked->content_type, "image/png");
  auto payload = protocol::ExtractBadge(baked->bytes);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload->data, jws);
  EXPECT_EQ(payload->form, protocol::PayloadForm::kJws);

  // Imported without an image: baked into the badge's own image.
  const std::string url = issuer_.AwardHosted({.email = "ann@example.org"});
  const ImportResult from_url = MustImport(InputKind::kUrl, url);
  auto baked2 = badges_->Baked(account_, from_url.record.id);
  ASSERT_TRUE(baked2.ok()) << baked2.status().ToString();
  auto payload2 = protocol::ExtractBadge(baked2->bytes);
  ASSERT_TRUE(payload2.ok());
  EXPECT_EQ(payload2->data, issuer_.HostedJson(url));
}

// ---- OB 3.0 credentials ----------------------------------------------------------

constexpr char kCredentialId[] = "urn:uuid:6f1c2b8e-0a4d-4e55-9a51-3a2f1d7c9e10";

TEST_F(BadgesTest, ACredentialIsReplacedOnlyByANewerOne) {
  const std::string first = issuer_.AwardCredential({.email = "ann@example.org", .id = kCredentialId});
  const ImportResult created = MustImport(InputKind::kAssertion, first);
  ASSERT_EQ(created.outcome, ImportResult::Outcome::kCreated) << created.report_json;
  EXPECT_EQ(created.record.spec_version, "3.0");
  EXPECT_EQ(created.record.valid_from, 1700000000);
  const json badge = json::parse(created.record.badge_json);
  EXPECT_EQ(badge["name"], "Test Achievement");
  EXPECT_EQ(badge["issuer"]["id"], issuer_.IssuerDid());
  EXPECT_EQ(badge["credential"]["proofs"][0]["cryptosuite"], "eddsa-rdfc-2022");
  EXPECT_EQ(badge["credential"]["statuses"][0]["type"], "BitstringStatusListEntry");
  ASSERT_TRUE(badges_->SetState(account_, created.record.id, BadgeState::kAccepted).ok());

  // The same credential again, and one as recent in another proof format: unchanged.
  EXPECT_EQ(MustImport(InputKind::kAssertion, first).outcome, ImportResult::Outcome::kExisting);
  const std::string same_age =
      issuer_.AwardCredential({.email = "ann@example.org", .id = kCredentialId}, testing::CredentialProofKind::kJwt);
  EXPECT_EQ(MustImport(InputKind::kJws, same_age).outcome, ImportResult::Outcome::kExisting);

  // A newer one (later validFrom) replaces it: same record and state, new bytes.
  const std::string newer = issuer_.AwardCredential(
      {.email = "ann@example.org", .id = kCredentialId, .valid_from = 1700000500, .achievement_name = "Renamed"},
      testing::CredentialProofKind::kJwt);
  now_ += 60;
  const ImportResult replaced = MustImport(InputKind::kJws, newer);
  ASSERT_EQ(replaced.outcome, ImportResult::Outcome::kReplaced) << replaced.report_json;
  EXPECT_EQ(replaced.record.id, created.record.id);
  EXPECT_EQ(replaced.record.state, BadgeState::kAccepted);
  EXPECT_EQ(replaced.record.valid_from, 1700000500);
  EXPECT_EQ(replaced.record.replaced_at, now_.load());
  EXPECT_EQ(replaced.record.assertion_form, "jws");
  EXPECT_EQ(json::parse(replaced.record.badge_json)["name"], "Renamed");
  auto original = badges_->GetOriginal(account_, created.record.id);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->assertion, newer);

  // An older one changes nothing.
  const std::string older =
      issuer_.AwardCredential({.email = "ann@example.org", .id = kCredentialId, .valid_from = 1690000000});
  const ImportResult kept = MustImport(InputKind::kAssertion, older);
  EXPECT_EQ(kept.outcome, ImportResult::Outcome::kExisting);
  original = badges_->GetOriginal(account_, created.record.id);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->assertion, newer);

  auto page = badges_->List(account_, std::nullopt, 10, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->badges.size(), 1u);
  EXPECT_EQ(CountKeys(storage::Family::kRecheckQueue), 1u);
  // The identity is the issuer and the credential id: another issuer's
  // credential with the same id is another badge (no status list: nothing
  // of the other issuer is fetched).
  testing::TestIssuer other;
  const std::string foreign = other.AwardCredential({.email = "ann@example.org", .id = kCredentialId, .with_status = false});
  EXPECT_EQ(MustImport(InputKind::kAssertion, foreign).outcome, ImportResult::Outcome::kCreated);
}

TEST_F(BadgesTest, ACredentialIsRecheckedAndBakedAsACredential) {
  const std::string vc = issuer_.AwardCredential({.email = "ann@example.org", .id = kCredentialId});
  const ImportResult created = MustImport(InputKind::kAssertion, vc);
  ASSERT_EQ(created.outcome, ImportResult::Outcome::kCreated) << created.report_json;

  auto baked = badges_->Baked(account_, created.record.id);
  ASSERT_TRUE(baked.ok()) << baked.status().ToString();
  EXPECT_EQ(baked->content_type, "image/png");
  auto payload = protocol::ExtractBadge(baked->bytes);
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(payload->kind, protocol::BadgeKind::kCredential);
  EXPECT_EQ(payload->data, vc);

  issuer_.Revoke(kCredentialId);
  auto rechecked = badges_->Recheck(account_, created.record.id);
  ASSERT_TRUE(rechecked.ok()) << rechecked.status().ToString();
  EXPECT_EQ(rechecked->status, BadgeStatus::kRevoked) << rechecked->report_json;
  EXPECT_EQ(rechecked->next_check_at, 0);
}

TEST_F(BadgesTest, ADifferentAccountSeesNothing) {
  const ImportResult result = MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}));
  const std::string other = VerifiedAccount("bob@example.org");
  EXPECT_EQ(badges_->Get(other, result.record.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(badges_->Delete(other, result.record.id).code(), StatusCode::kNotFound);
  EXPECT_TRUE(badges_->List(other, std::nullopt, 10, "")->badges.empty());
  EXPECT_TRUE(badges_->Get(account_, result.record.id).ok());
}

TEST_F(BadgesTest, DeleteAllEmptiesTheAccount) {
  for (int i = 0; i < 3; ++i) MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}));
  ASSERT_TRUE(badges_->DeleteAll(account_).ok());
  EXPECT_EQ(CountKeys(storage::Family::kBadges), 0u);
  EXPECT_EQ(CountKeys(storage::Family::kBadgeBlobs), 0u);
  EXPECT_EQ(CountKeys(storage::Family::kBadgeKeys), 0u);
}

TEST_F(BadgesTest, TheQueueDropsWhatLeadsNowhereAndPostponesWhatFails) {
  const ImportResult kept = MustImport(InputKind::kJws, issuer_.AwardSigned({.email = "ann@example.org"}));
  ASSERT_EQ(kept.outcome, ImportResult::Outcome::kCreated);
  // A malformed key, an entry for a badge that does not exist, and a stale
  // duplicate of the kept badge's entry.
  storage::WriteBatch junk;
  junk.Put(storage::Family::kRecheckQueue, "0000000000000001", "");
  junk.Put(storage::Family::kRecheckQueue, fmt::format("{:016d}/{}/nosuchbadge", 5, account_), "");
  junk.Put(storage::Family::kRecheckQueue, fmt::format("{:016d}/{}/{}", 6, account_, kept.record.id), "");
  ASSERT_TRUE(store_->Write(junk).ok());
  auto handled = badges_->RecheckDue(100);
  ASSERT_TRUE(handled.ok()) << handled.status().ToString();
  EXPECT_EQ(*handled, 3u);
  EXPECT_EQ(CountKeys(storage::Family::kRecheckQueue), 1u);  // the kept badge's real entry
  EXPECT_EQ(badges_->Get(account_, kept.record.id)->checked_at, kept.record.checked_at);  // not re-checked early

  // A badge whose account is gone cannot be re-checked: it is postponed,
  // not retried at the head of every pass.
  ASSERT_TRUE(accounts_->DeleteAccount(account_, "a good password").ok());
  now_ = kept.record.next_check_at;
  ASSERT_EQ(*badges_->RecheckDue(100), 1u);
  auto postponed = badges_->Get(account_, kept.record.id);
  ASSERT_TRUE(postponed.ok());
  EXPECT_EQ(postponed->next_check_at, now_.load() + badges_config_.retry_max_seconds);
  EXPECT_EQ(postponed->status, BadgeStatus::kValid);
  EXPECT_EQ(*badges_->RecheckDue(100), 0u);
}

}  // namespace
}  // namespace backpack
