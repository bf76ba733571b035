// EarnerFederation (daemon/earner_federation.h) over the in-process account,
// badge and collection services and a real RecordStore: the earner's
// choices, the records that follow the services' changes, reconciliation,
// and the WebFinger and inbox answers -- with a second RecordStore standing
// for a peer that pulled the records.
#include "daemon/earner_federation.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/collections.h"
#include "federation/records.h"
#include "protocol/account_record.h"
#include "protocol/encoding.h"
#include "tests/support/badge_services.h"

namespace backpack {
namespace {

using nlohmann::json;
using protocol::EmailHash;
using protocol::RecordType;
using testing::AwardOptions;

constexpr char kNode[] = "node.test";
constexpr char kAnn[] = "ann@x.example";

class EarnerFederationTest : public testing::BadgeServicesTest {
 protected:
  void SetUp() override {
    BadgeServicesTest::SetUp();
    collections_ =
        std::make_unique<CollectionService>(*store_, locks_, *accounts_, *badges_, badges_config_, Clock(), Random);
    records_ = OpenRecords(*store_, locks_, kNode);
    earners_ = std::make_unique<EarnerFederation>(
        *records_, *accounts_, *badges_, *collections_,
        EarnerFederationOptions{kNode, [](std::string_view node) { return node == "b.test"; }});
    earners_->Listen();
  }

  std::unique_ptr<federation::RecordStore> OpenRecords(storage::Store& store, storage::KeyLocks& locks,
                                                       const std::string& name) {
    auto opened = federation::RecordStore::Open(
        store, locks, {.node_name = name, .node_url = "http://" + name}, [this] { return now_.load() * 1000; }, Random);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  std::string Import(const std::string& account, const std::string& email, BadgeState state = BadgeState::kAccepted) {
    VerifyRequest request;
    request.kind = InputKind::kUrl;
    request.data = issuer_.AwardHosted(AwardOptions{.email = email});
    ImportOptions options;
    options.state = state;
    auto imported = badges_->Import(account, request, options);
    EXPECT_TRUE(imported.ok()) << imported.status().ToString();
    if (!imported.ok()) return {};
    EXPECT_EQ(imported->outcome, ImportResult::Outcome::kCreated) << imported->report_json;
    return imported->record.id;
  }

  // The record held under `key` for the account, parsed; nullopt if none.
  std::optional<protocol::RecordEnvelope> Held(const std::string& account, const std::string& key) {
    auto text = records_->Get(account, key);
    EXPECT_TRUE(text.ok());
    if (!text.ok() || !text->has_value()) return std::nullopt;
    auto e = protocol::ParseEnvelope(**text);
    EXPECT_TRUE(e.ok());
    return e.ok() ? std::optional(std::move(*e)) : std::nullopt;
  }

  std::optional<RecordType> TypeOf(const std::string& account, const std::string& key) {
    auto e = Held(account, key);
    return e ? std::optional(e->type) : std::nullopt;
  }

  FederationChoices Set(const std::string& local, FederationChoicesChange change) {
    auto set = earners_->Set(local, change);
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    return set.ok() ? *set : FederationChoices{};
  }

  std::string AddVerifiedEmail(const std::string& local, const std::string& email) {
    EXPECT_TRUE(accounts_->AddEmail(local, email).ok());
    const std::string token = testing::MailToken(dir_.path() + "/outbox", email);
    EXPECT_TRUE(accounts_->VerifyEmail(token, local).ok());
    return email;
  }

  std::unique_ptr<CollectionService> collections_;
  std::unique_ptr<federation::RecordStore> records_;
  std::unique_ptr<EarnerFederation> earners_;
};

TEST_F(EarnerFederationTest, GetGivesTheIdentityAndTheDefaults) {
  const std::string ann = VerifiedAccount(kAnn);
  auto choices = earners_->Get(ann);
  ASSERT_TRUE(choices.ok()) << choices.status().ToString();
  EXPECT_EQ(choices->account.size(), 33u);
  EXPECT_EQ(choices->home, kNode);
  EXPECT_TRUE(choices->discoverable.empty());
  EXPECT_TRUE(choices->mirrors.empty());
  EXPECT_FALSE(choices->mirror_all);
  EXPECT_EQ(choices->mirrored_badges, 0u);
  auto again = earners_->Get(ann);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->account, choices->account);
  EXPECT_EQ(earners_->Get("no-such-account").status().code(), StatusCode::kNotFound);
}

TEST_F(EarnerFederationTest, DiscoverableAddressesArePublishedOnlyWhenTheyChange) {
  const std::string ann = VerifiedAccount(kAnn);
  ASSERT_TRUE(accounts_->AddEmail(ann, "unverified@x.example").ok());
  const std::string second = AddVerifiedEmail(ann, "Ann.Second@X.example");

  auto refused = earners_->Set(ann, {.discoverable = std::vector<std::string>{"unverified@x.example"}});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("not a verified address"), std::string::npos);
  refused = earners_->Set(ann, {.discoverable = std::vector<std::string>{"stranger@x.example"}});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);

  // Compared like the account compares addresses; shown as the account holds them.
  FederationChoices set = Set(ann, {.discoverable = std::vector<std::string>{"ANN@x.example"}});
  EXPECT_EQ(set.discoverable, std::vector<std::string>{kAnn});
  auto found = records_->Lookup(EmailHash(kAnn));
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->account, set.account);
  // The other address was never discoverable: nothing is published for it.
  EXPECT_FALSE(Held(set.account, "directory/" + EmailHash(second)));

  // Nothing changed: nothing published.
  const uint64_t mark = records_->Watermark();
  Set(ann, {.discoverable = std::vector<std::string>{kAnn}});
  EXPECT_EQ(records_->Watermark(), mark);

  // Hidden again: a directory record saying so, and no look-up finds it.
  set = Set(ann, {.discoverable = std::vector<std::string>{}});
  EXPECT_TRUE(set.discoverable.empty());
  auto hidden = Held(set.account, "directory/" + EmailHash(kAnn));
  ASSERT_TRUE(hidden);
  EXPECT_EQ(hidden->type, RecordType::kDirectory);
  EXPECT_FALSE(hidden->record["discoverable"].get<bool>());
  found = records_->Lookup(EmailHash(kAnn));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(EarnerFederationTest, AnAddressThatLeavesTheAccountIsTombstoned) {
  const std::string ann = VerifiedAccount(kAnn);
  const std::string second = AddVerifiedEmail(ann, "second@x.example");
  FederationChoices set = Set(ann, {.discoverable = std::vector<std::string>{kAnn, second}});
  ASSERT_EQ(set.discoverable.size(), 2u);

  ASSERT_TRUE(accounts_->RemoveEmail(ann, second).ok());  // the listener follows
  EXPECT_EQ(TypeOf(set.account, "directory/" + EmailHash(second)), RecordType::kTombstone);
  auto found = records_->Lookup(EmailHash(second));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(TypeOf(set.account, "directory/" + EmailHash(kAnn)), RecordType::kDirectory);
  auto choices = earners_->Get(ann);
  ASSERT_TRUE(choices.ok());
  EXPECT_EQ(choices->discoverable, std::vector<std::string>{kAnn});
}

TEST_F(EarnerFederationTest, MirrorsAreNodeNamesOtherThanThisNode) {
  const std::string ann = VerifiedAccount(kAnn);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"B.test"}, std::vector<std::string>{"https://b.test"},
        std::vector<std::string>{"b.test:443"}, std::vector<std::string>{kNode}, std::vector<std::string>{""}}) {
    auto refused = earners_->Set(ann, {.mirrors = bad});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad[0];
  }
  std::vector<std::string> many;
  for (int i = 0; i < 17; ++i) many.push_back("n" + std::to_string(i) + ".test");
  EXPECT_EQ(earners_->Set(ann, {.mirrors = many}).status().code(), StatusCode::kInvalidArgument);

  FederationChoices set = Set(ann, {.mirrors = std::vector<std::string>{"b.test", "c.test:8443", "b.test"}});
  EXPECT_EQ(set.mirrors, (std::vector<std::string>{"b.test", "c.test:8443"}));  // repeats dropped
  ASSERT_EQ(set.warnings.size(), 1u);                                           // c.test is not an active peer
  EXPECT_NE(set.warnings[0].find("c.test:8443"), std::string::npos);
  auto mirrors = Held(set.account, "mirrors");
  ASSERT_TRUE(mirrors);
  EXPECT_EQ(mirrors->record["nodes"], json::array({"b.test", "c.test:8443"}));
  EXPECT_EQ(mirrors->record["mirror_all"], false);

  const uint64_t mark = records_->Watermark();
  Set(ann, {.mirrors = std::vector<std::string>{"b.test", "c.test:8443"}, .mirror_all = false});
  EXPECT_EQ(records_->Watermark(), mark);  // idempotent
}

TEST_F(EarnerFederationTest, BadgeRecordsFollowStateCollectionsAndMirrors) {
  const std::string ann = VerifiedAccount(kAnn);
  const std::string badge = Import(ann, kAnn);
  const std::string pending = Import(ann, kAnn, BadgeState::kPending);
  ASSERT_FALSE(badge.empty());
  const std::string key = "badge/" + badge;

  // No mirrors yet: nothing to publish, even for a public badge.
  CollectionChange shown;
  shown.name = "Shown";
  shown.badge_ids = std::vector<std::string>{badge, pending};
  shown.is_public = true;
  auto collection = collections_->Create(ann, shown);
  ASSERT_TRUE(collection.ok());
  FederationChoices set = Set(ann, {});
  EXPECT_FALSE(Held(set.account, key));

  // A mirror: the public, accepted badge is published; the pending one is not.
  set = Set(ann, {.mirrors = std::vector<std::string>{"b.test"}});
  EXPECT_EQ(set.mirrored_badges, 1u);
  auto record = Held(set.account, key);
  ASSERT_TRUE(record);
  ASSERT_EQ(record->type, RecordType::kBadge);
  EXPECT_EQ(record->record["state"], "accepted");
  EXPECT_EQ(record->record["public"], true);
  EXPECT_EQ(record->record["spec_version"], "2.0");
  auto original = badges_->GetOriginal(ann, badge);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(protocol::Base64UrlDecode(record->record["original"].get<std::string>()), original->assertion);
  EXPECT_FALSE(Held(set.account, "badge/" + pending));

  // Rejected: tombstoned. Accepted again: back.
  ASSERT_TRUE(badges_->SetState(ann, badge, BadgeState::kRejected).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kTombstone);
  ASSERT_TRUE(badges_->SetState(ann, badge, BadgeState::kAccepted).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kBadge);

  // The collection goes private: no longer public, tombstoned.
  CollectionChange hide;
  hide.is_public = false;
  ASSERT_TRUE(collections_->Update(ann, collection->id, hide).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kTombstone);

  // mirror_all: every accepted badge, public or not.
  set = Set(ann, {.mirror_all = true});
  EXPECT_EQ(set.mirrored_badges, 1u);
  record = Held(set.account, key);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->type, RecordType::kBadge);
  EXPECT_EQ(record->record["public"], false);
  const std::string later = Import(ann, kAnn);  // a new accepted badge follows at once
  EXPECT_EQ(TypeOf(set.account, "badge/" + later), RecordType::kBadge);

  // Deleted: tombstoned.
  ASSERT_TRUE(badges_->Delete(ann, badge).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kTombstone);

  // No mirrors left: every badge record goes.
  set = Set(ann, {.mirrors = std::vector<std::string>{}});
  EXPECT_EQ(set.mirrored_badges, 0u);
  EXPECT_EQ(TypeOf(set.account, "badge/" + later), RecordType::kTombstone);
}

TEST_F(EarnerFederationTest, ChangingMirrorsPublishesTheBadgesAgain) {
  const std::string ann = VerifiedAccount(kAnn);
  const std::string badge = Import(ann, kAnn);
  FederationChoices set = Set(ann, {.mirrors = std::vector<std::string>{"b.test"}, .mirror_all = true});
  auto first = Held(set.account, "badge/" + badge);
  ASSERT_TRUE(first);

  // A new mirror gets a newer copy (it has not seen the first).
  Set(ann, {.mirrors = std::vector<std::string>{"b.test", "c.test"}});
  auto second = Held(set.account, "badge/" + badge);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->type, RecordType::kBadge);
  EXPECT_GT(second->version, first->version);

  // Dropping a mirror changes no badge record: the mirrors record says it.
  const uint64_t mark = records_->Watermark();
  Set(ann, {.mirrors = std::vector<std::string>{"c.test"}});
  EXPECT_EQ(records_->Watermark(), mark + 1);
  auto mirrors = Held(set.account, "mirrors");
  ASSERT_TRUE(mirrors);
  EXPECT_EQ(mirrors->record["nodes"], json::array({"c.test"}));
  auto third = Held(set.account, "badge/" + badge);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->version, second->version);
}

TEST_F(EarnerFederationTest, AccountsThatNeverChoseAnythingHaveNoRecords) {
  const std::string ann = VerifiedAccount(kAnn);
  const uint64_t mark = records_->Watermark();
  Import(ann, kAnn);
  auto id = records_->FindIdentity(ann);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(id->has_value());
  EXPECT_EQ(records_->Watermark(), mark);
}

TEST_F(EarnerFederationTest, ReconciliationCatchesUpWithMissedChanges) {
  const std::string ann = VerifiedAccount(kAnn);
  FederationChoices set = Set(ann, {.mirrors = std::vector<std::string>{"b.test"}, .mirror_all = true});
  // A second service over the same data that nobody listens to: its changes
  // are missed, as when a listener fails.
  BadgeService deaf(*store_, locks_, *accounts_, *verifier_, badges_config_, Clock(), Random);
  VerifyRequest request;
  request.kind = InputKind::kUrl;
  request.data = issuer_.AwardHosted(AwardOptions{.email = kAnn});
  auto imported = deaf.Import(ann, request);
  ASSERT_TRUE(imported.ok());
  const std::string key = "badge/" + imported->record.id;
  EXPECT_FALSE(Held(set.account, key));

  // The sweep reaches every federated account.
  const std::string bob = VerifiedAccount("bob@x.example");
  Set(bob, {});
  earners_->ReconcileStep(10);
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kBadge);

  ASSERT_TRUE(deaf.Delete(ann, imported->record.id).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kBadge);
  ASSERT_TRUE(earners_->Reconcile(ann).ok());
  EXPECT_EQ(TypeOf(set.account, key), RecordType::kTombstone);
  EXPECT_EQ(earners_->queued(), 0u);
}

TEST_F(EarnerFederationTest, TheSweepListsLocalAccountsAndNeverTheFederatedIds) {
  // Local ids before and after '@' (which starts the federated ids' keys).
  for (const char* local : {"0aaa", "9zzz", "B", "fabc", "zz"}) ASSERT_TRUE(records_->Identity(local).ok());
  auto all = records_->LocalAccounts("", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"0aaa", "9zzz", "B", "fabc", "zz"}));
  std::vector<std::string> paged;
  std::string after;
  for (int i = 0; i < 10; ++i) {
    auto page = records_->LocalAccounts(after, 2);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    paged.insert(paged.end(), page->begin(), page->end());
    after = page->back();
  }
  EXPECT_EQ(paged, *all);
  auto none = records_->FindIdentity("never");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto found = records_->FindIdentity("fabc");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->local_id, "fabc");
}

TEST_F(EarnerFederationTest, DeletingTheAccountTombstonesItsRecords) {
  const std::string ann = VerifiedAccount(kAnn);
  const std::string badge = Import(ann, kAnn);
  FederationChoices set = Set(ann, {.discoverable = std::vector<std::string>{kAnn},
                                    .mirrors = std::vector<std::string>{"b.test"},
                                    .mirror_all = true});
  ASSERT_EQ(TypeOf(set.account, "badge/" + badge), RecordType::kBadge);
  ASSERT_TRUE(accounts_->DeleteAccount(ann, "a good password").ok());
  EXPECT_EQ(TypeOf(set.account, "badge/" + badge), RecordType::kTombstone);
  EXPECT_EQ(TypeOf(set.account, "directory/" + EmailHash(kAnn)), RecordType::kTombstone);
  auto found = records_->Lookup(EmailHash(kAnn));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(EarnerFederationTest, DiscoverAndRouteHereAndAtAPeer) {
  const std::string ann = VerifiedAccount(kAnn);
  FederationChoices set = Set(ann, {.discoverable = std::vector<std::string>{kAnn}});
  const std::string hash = EmailHash(kAnn);

  auto jrd = earners_->Discover(hash, "mailto:ann@x.example");
  ASSERT_TRUE(jrd.ok());
  ASSERT_TRUE(jrd->has_value());
  const json& answer = **jrd;
  EXPECT_EQ(answer["subject"], "mailto:ann@x.example");
  ASSERT_EQ(answer["links"].size(), 2u);
  EXPECT_EQ(answer["links"][0]["href"], "http://node.test/ims/ob/v3p0/discovery");
  EXPECT_EQ(answer["links"][1]["href"], "http://node.test/_federation/v1/inbox/" + set.account);
  // The records verify with the key of the genesis record.
  auto directory = protocol::ParseEnvelopeObject(answer["records"]["directory"]);
  auto home = protocol::ParseEnvelopeObject(answer["records"]["home"]);
  ASSERT_TRUE(directory.ok() && home.ok());
  auto key = protocol::GenesisKey(answer["records"]["genesis"], set.account);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(protocol::VerifyEnvelope(*directory, *key, now_ * 1000).ok());
  EXPECT_TRUE(protocol::VerifyEnvelope(*home, *key, now_ * 1000).ok());
  EXPECT_EQ(directory->record["email_sha256"], hash);

  auto only_inbox = earners_->Discover(hash, "x", {kRelInbox});
  ASSERT_TRUE(only_inbox.ok() && only_inbox->has_value());
  EXPECT_EQ((**only_inbox)["links"].size(), 1u);
  auto none = earners_->Discover(EmailHash("stranger@x.example"), "x");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto here = earners_->RouteInbox(set.account);
  ASSERT_TRUE(here.ok());
  EXPECT_EQ(here->kind, InboxRoute::Kind::kLocal);
  EXPECT_EQ(here->local_id, ann);
  for (const std::string& unknown :
       {std::string("a") + std::string(32, 'b'), std::string("nonsense"), std::string("../../etc")}) {
    auto route = earners_->RouteInbox(unknown);
    ASSERT_TRUE(route.ok());
    EXPECT_EQ(route->kind, InboxRoute::Kind::kUnknown) << unknown;
  }

  // A peer that pulled the records answers the same look-up, and sends
  // deliveries to the home.
  testing::TempDir peer_dir;
  storage::StoreOptions options;
  options.path = peer_dir.path() + "/db";
  auto peer_store = storage::OpenRocksStore(options);
  ASSERT_TRUE(peer_store.ok());
  storage::KeyLocks peer_locks;
  auto peer_records = OpenRecords(**peer_store, peer_locks, "b.test");
  auto page = records_->Changes(1, "", 100, 1 << 22);
  ASSERT_TRUE(page.ok());
  ASSERT_TRUE(peer_records->Apply(kNode, page->records, {page->log_id, page->next, page->digest}).ok());
  EarnerFederation peer(*peer_records, *accounts_, *badges_, *collections_, EarnerFederationOptions{"b.test", nullptr});
  auto there = peer.Discover(hash, "mailto:ann@x.example");
  ASSERT_TRUE(there.ok());
  ASSERT_TRUE(there->has_value());
  EXPECT_EQ((**there)["links"][1]["href"], "http://node.test/_federation/v1/inbox/" + set.account);
  auto routed = peer.RouteInbox(set.account);
  ASSERT_TRUE(routed.ok());
  EXPECT_EQ(routed->kind, InboxRoute::Kind::kRedirect);
  EXPECT_EQ(routed->location, "http://node.test/_federation/v1/inbox/" + set.account);
}

}  // namespace
}  // namespace backpack
