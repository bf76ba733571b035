// CollectionService against a real RocksDB store, with real badges imported
// from an in-memory test issuer; and the share page renderer.
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/collections.h"
#include "daemon/share_page.h"
#include "protocol/encoding.h"
#include "tests/support/badge_services.h"

namespace backpack {
namespace {

using nlohmann::json;
using testing::AwardOptions;

class CollectionsTest : public testing::BadgeServicesTest {
 protected:
  void SetUp() override {
    BadgeServicesTest::SetUp();
    service_ = std::make_unique<CollectionService>(*store_, locks_, *accounts_, *badges_, badges_config_, Clock(),
                                                   Random);
  }

  // Imports a fresh hosted badge awarded to `email`; returns its id.
  std::string Import(const std::string& account, const std::string& email,
                     BadgeState state = BadgeState::kAccepted) {
    VerifyRequest request;
    request.kind = InputKind::kUrl;
    request.data = issuer_.AwardHosted(AwardOptions{.email = email});
    request.now = now_;
    request.verified_emails = {email};
    ImportOptions options;
    options.state = state;
    auto imported = badges_->Import(account, request, options);
    EXPECT_TRUE(imported.ok()) << imported.status().ToString();
    if (!imported.ok()) return {};
    EXPECT_EQ(imported->outcome, ImportResult::Outcome::kCreated) << imported->report_json;
    return imported->record.id;
  }

  CollectionChange Named(const std::string& name) {
    CollectionChange change;
    change.name = name;
    return change;
  }

  std::unique_ptr<CollectionService> service_;
};

TEST_F(CollectionsTest, CreateListGetUpdateDelete) {
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string b1 = Import(ann, "ann@x.example");
  const std::string b2 = Import(ann, "ann@x.example");
  ASSERT_FALSE(b1.empty());
  ASSERT_FALSE(b2.empty());

  CollectionChange change = Named("  Work  ");
  change.description = "Things I did at work";
  change.badge_ids = std::vector<std::string>{b2, b1};
  auto created = service_->Create(ann, change);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->name, "Work");  // trimmed
  EXPECT_EQ(created->description, "Things I did at work");
  EXPECT_EQ(created->badge_ids, (std::vector<std::string>{b2, b1}));  // the earner's order
  EXPECT_FALSE(created->is_public);
  EXPECT_TRUE(created->slug.empty());
  EXPECT_EQ(created->created_at, now_.load());
  EXPECT_EQ(created->id.size(), 22u);  // 16 random bytes, base64url

  now_ += 10;
  auto second = service_->Create(ann, Named("Play"));
  ASSERT_TRUE(second.ok());
  auto all = service_->List(ann);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, created->id);  // oldest first
  EXPECT_EQ((*all)[1].id, second->id);

  auto got = service_->Get(ann, created->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "Work");
  EXPECT_EQ(got->badge_ids.size(), 2u);

  now_ += 10;
  CollectionChange rename = Named("Work, mostly");
  auto updated = service_->Update(ann, created->id, rename);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->name, "Work, mostly");
  EXPECT_EQ(updated->description, "Things I did at work");  // untouched
  EXPECT_EQ(updated->badge_ids, (std::vector<std::string>{b2, b1}));
  EXPECT_EQ(updated->updated_at, now_.load());
  EXPECT_EQ(updated->created_at, created->created_at);

  CollectionChange reorder;
  reorder.badge_ids = std::vector<std::string>{b1};
  EXPECT_EQ(service_->Update(ann, created->id, reorder)->badge_ids, std::vector<std::string>{b1});

  // Someone else's collection is not found, never shown.
  const std::string bob = VerifiedAccount("bob@x.example");
  EXPECT_EQ(service_->Get(bob, created->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Update(bob, created->id, rename).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Delete(bob, created->id).code(), StatusCode::kNotFound);

  EXPECT_TRUE(service_->Delete(ann, created->id).ok());
  EXPECT_EQ(service_->Get(ann, created->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Delete(ann, created->id).code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->List(ann)->size(), 1u);
}

TEST_F(CollectionsTest, RefusesInvalidNamesAndDescriptions) {
  const std::string ann = VerifiedAccount("ann@x.example");
  auto code = [&](const CollectionChange& change) { return service_->Create(ann, change).status().code(); };
  EXPECT_EQ(code(CollectionChange{}), StatusCode::kInvalidArgument);  // no name
  EXPECT_EQ(code(Named("")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named(" \t\n ")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named(std::string(201, 'a'))), StatusCode::kInvalidArgument);
  EXPECT_TRUE(service_->Create(ann, Named(std::string(200, 'a'))).ok());
  EXPECT_TRUE(service_->Create(ann, Named("  " + std::string(200, 'b') + "  ")).ok());  // trimmed first
  EXPECT_EQ(code(Named("bad \xff utf-8")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named("overlong \xc0\xaf")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named("surrogate \xed\xa0\x80")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named("cut \xe2\x82")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Named("bell\x07")), StatusCode::kInvalidArgument);
  EXPECT_TRUE(service_->Create(ann, Named("Łódź \xe2\x9c\x93 \xf0\x9f\x8e\x93")).ok());

  CollectionChange long_description = Named("ok");
  long_description.description = std::string(4001, 'd');
  EXPECT_EQ(code(long_description), StatusCode::kInvalidArgument);
  long_description.description = std::string(4000, 'd');
  EXPECT_TRUE(service_->Create(ann, long_description).ok());
  CollectionChange lines = Named("lines");
  lines.description = "first line\nsecond line\twith a tab";
  EXPECT_EQ(service_->Create(ann, lines)->description, "first line\nsecond line\twith a tab");

  CollectionChange too_many = Named("many");
  too_many.badge_ids = std::vector<std::string>(1001, "x");
  EXPECT_EQ(code(too_many), StatusCode::kInvalidArgument);

  // Updates check the same way and change nothing when refused.
  auto c = service_->Create(ann, Named("keep"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(service_->Update(ann, c->id, Named(" ")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Get(ann, c->id)->name, "keep");

  // No such account.
  EXPECT_EQ(service_->Create("0123456789abcdef0123456789abcdef", Named("x")).status().code(),
            StatusCode::kNotFound);
}

TEST_F(CollectionsTest, RefusesBadgesTheAccountDoesNotHold) {
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string bob = VerifiedAccount("bob@x.example");
  const std::string anns = Import(ann, "ann@x.example");
  const std::string bobs = Import(bob, "bob@x.example");
  ASSERT_FALSE(anns.empty());
  ASSERT_FALSE(bobs.empty());

  CollectionChange change = Named("mine");
  change.badge_ids = std::vector<std::string>{anns, "no-such-badge"};
  auto refused = service_->Create(ann, change);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "unknown badge no-such-badge");

  change.badge_ids = std::vector<std::string>{anns, bobs};
  refused = service_->Create(ann, change);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "unknown badge " + bobs);
  EXPECT_EQ(CountKeys(storage::Family::kCollections), 0u);

  // Repeats are dropped, the first place kept.
  const std::string anns2 = Import(ann, "ann@x.example");
  change.badge_ids = std::vector<std::string>{anns2, anns, anns2, anns};
  auto created = service_->Create(ann, change);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->badge_ids, (std::vector<std::string>{anns2, anns}));

  CollectionChange steal;
  steal.badge_ids = std::vector<std::string>{bobs};
  EXPECT_EQ(service_->Update(ann, created->id, steal).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Get(ann, created->id)->badge_ids, (std::vector<std::string>{anns2, anns}));
}

TEST_F(CollectionsTest, PublicLinkLifecycle) {
  const std::string ann = VerifiedAccount("ann@x.example", "Ann Example");
  const std::string badge = Import(ann, "ann@x.example");
  CollectionChange change = Named("Shown");
  change.badge_ids = std::vector<std::string>{badge};
  change.is_public = true;
  auto c = service_->Create(ann, change);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->is_public);
  const std::string first_slug = c->slug;
  ASSERT_EQ(first_slug.size(), 22u);
  EXPECT_NE(first_slug, c->id);

  auto shown = service_->GetPublic(first_slug);
  ASSERT_TRUE(shown.ok()) << shown.status().ToString();
  EXPECT_EQ(shown->collection.id, c->id);
  EXPECT_EQ(shown->owner_display_name, "Ann Example");
  ASSERT_EQ(shown->badges.size(), 1u);
  EXPECT_EQ(shown->badges[0].id, badge);
  EXPECT_TRUE(service_->GetPublicById(ann, c->id).ok());

  // Renaming keeps the link.
  EXPECT_EQ(service_->Update(ann, c->id, Named("Renamed"))->slug, first_slug);
  EXPECT_EQ(service_->GetPublic(first_slug)->collection.name, "Renamed");

  // Private: the link dies.
  CollectionChange hide;
  hide.is_public = false;
  auto hidden = service_->Update(ann, c->id, hide);
  ASSERT_TRUE(hidden.ok());
  EXPECT_FALSE(hidden->is_public);
  EXPECT_TRUE(hidden->slug.empty());
  EXPECT_EQ(service_->GetPublic(first_slug).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->GetPublicById(ann, c->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CountKeys(storage::Family::kShareSlugs), 0u);
  EXPECT_TRUE(service_->ListPublic(ann)->empty());

  // Public again: a new link; the old one stays dead.
  CollectionChange show;
  show.is_public = true;
  auto again = service_->Update(ann, c->id, show);
  ASSERT_TRUE(again.ok());
  ASSERT_FALSE(again->slug.empty());
  EXPECT_NE(again->slug, first_slug);
  EXPECT_TRUE(service_->GetPublic(again->slug).ok());
  EXPECT_EQ(service_->GetPublic(first_slug).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CountKeys(storage::Family::kShareSlugs), 1u);
  EXPECT_EQ(service_->ListPublic(ann)->size(), 1u);

  // Deleting the collection removes its link.
  ASSERT_TRUE(service_->Delete(ann, c->id).ok());
  EXPECT_EQ(service_->GetPublic(again->slug).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CountKeys(storage::Family::kShareSlugs), 0u);

  // Malformed slugs are simply not found.
  for (const char* slug : {"", "short", "../../etc/passwd", "aaaaaaaaaaaaaaaaaaaaa/", "AAAAAAAAAAAAAAAAAAAAAA"}) {
    EXPECT_EQ(service_->GetPublic(slug).status().code(), StatusCode::kNotFound) << slug;
  }
}

TEST_F(CollectionsTest, CollectionCountIsCapped) {
  badges_config_.max_collections_per_account = 2;
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string bob = VerifiedAccount("bob@x.example");
  auto first = service_->Create(ann, Named("1"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(service_->Create(ann, Named("2")).ok());
  EXPECT_EQ(service_->Create(ann, Named("3")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(service_->Create(bob, Named("bob's own")).ok());  // per account
  ASSERT_TRUE(service_->Delete(ann, first->id).ok());
  EXPECT_TRUE(service_->Create(ann, Named("3")).ok());
}

// Concurrent creations cannot overshoot the limit between count and write.
TEST_F(CollectionsTest, ConcurrentCreationsRespectTheCap) {
  badges_config_.max_collections_per_account = 5;
  const std::string ann = VerifiedAccount("ann@x.example");
  std::atomic<int> made{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      auto c = service_->Create(ann, Named("c" + std::to_string(i)));
      if (c.ok()) {
        ++made;
      } else if (c.status().code() == StatusCode::kFailedPrecondition) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(made.load(), 5);
  EXPECT_EQ(refused.load(), 7);
  EXPECT_EQ(CountKeys(storage::Family::kCollections), 5u);
}

TEST_F(CollectionsTest, DeletedBadgesAreLeftOutAndDroppedOnWrite) {
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string keep = Import(ann, "ann@x.example");
  const std::string gone = Import(ann, "ann@x.example");
  CollectionChange change = Named("both");
  change.badge_ids = std::vector<std::string>{gone, keep};
  change.is_public = true;
  auto c = service_->Create(ann, change);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(badges_->Delete(ann, gone).ok());

  EXPECT_EQ(service_->Get(ann, c->id)->badge_ids, std::vector<std::string>{keep});
  EXPECT_EQ(service_->List(ann)->at(0).badge_ids, std::vector<std::string>{keep});
  auto shown = service_->GetPublic(c->slug);
  ASSERT_TRUE(shown.ok());
  ASSERT_EQ(shown->badges.size(), 1u);
  EXPECT_EQ(shown->badges[0].id, keep);
  EXPECT_EQ(service_->ListPublic(ann)->at(0).badge_ids, std::vector<std::string>{keep});

  // Still in the record until the next write, which drops it.
  auto raw = [&] {
    auto bytes = store_->Get(storage::Family::kCollections, ann + "/" + c->id);
    EXPECT_TRUE(bytes.ok() && bytes->has_value());
    return json::parse(**bytes)["badges"];
  };
  EXPECT_EQ(raw().size(), 2u);
  ASSERT_TRUE(service_->Update(ann, c->id, Named("renamed")).ok());
  EXPECT_EQ(raw(), json::array({keep}));
}

// Past a few hundred badges a read lists the account's badges once rather
// than looking each up; both paths must agree.
TEST_F(CollectionsTest, LargeCollectionsAreReadByListing) {
  const std::string ann = VerifiedAccount("ann@x.example");
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(Import(ann, "ann@x.example"));
  ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 300u);
  CollectionChange change = Named("big");
  change.badge_ids = ids;
  change.is_public = true;
  auto c = service_->Create(ann, change);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(badges_->Delete(ann, ids[7]).ok());
  std::vector<std::string> expected = ids;
  expected.erase(expected.begin() + 7);
  EXPECT_EQ(service_->Get(ann, c->id)->badge_ids, expected);
  auto shown = service_->GetPublic(c->slug);
  ASSERT_TRUE(shown.ok());
  ASSERT_EQ(shown->badges.size(), expected.size());
  EXPECT_EQ(shown->badges.front().id, expected.front());
  EXPECT_EQ(shown->badges.back().id, expected.back());
  change.badge_ids = ids;  // holds the deleted one again
  EXPECT_EQ(service_->Update(ann, c->id, change).status().message(), "unknown badge " + ids[7]);
}

TEST_F(CollectionsTest, OnlyAcceptedBadgesArePublic) {
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string accepted = Import(ann, "ann@x.example");
  const std::string pending = Import(ann, "ann@x.example", BadgeState::kPending);
  const std::string rejected = Import(ann, "ann@x.example", BadgeState::kRejected);
  CollectionChange change = Named("mixed");
  change.badge_ids = std::vector<std::string>{pending, accepted, rejected};
  change.is_public = true;
  auto c = service_->Create(ann, change);
  ASSERT_TRUE(c.ok()) << c.status().ToString();

  // The owner sees all three; the public only the accepted one.
  EXPECT_EQ(service_->Get(ann, c->id)->badge_ids.size(), 3u);
  auto shown = service_->GetPublic(c->slug);
  ASSERT_TRUE(shown.ok());
  ASSERT_EQ(shown->badges.size(), 1u);
  EXPECT_EQ(shown->badges[0].id, accepted);
  EXPECT_EQ(service_->ListPublic(ann)->at(0).badge_ids, std::vector<std::string>{accepted});

  ASSERT_TRUE(badges_->SetState(ann, pending, BadgeState::kAccepted).ok());
  shown = service_->GetPublic(c->slug);
  ASSERT_TRUE(shown.ok());
  ASSERT_EQ(shown->badges.size(), 2u);
  EXPECT_EQ(shown->badges[0].id, pending);  // the collection's order
  EXPECT_EQ(shown->badges[1].id, accepted);
}

TEST_F(CollectionsTest, DeleteAllRemovesOnlyThatAccountsCollections) {
  const std::string ann = VerifiedAccount("ann@x.example");
  const std::string bob = VerifiedAccount("bob@x.example");
  CollectionChange shown = Named("public");
  shown.is_public = true;
  auto ann_public = service_->Create(ann, shown);
  ASSERT_TRUE(ann_public.ok());
  ASSERT_TRUE(service_->Create(ann, Named("private")).ok());
  auto bob_public = service_->Create(bob, shown);
  ASSERT_TRUE(bob_public.ok());

  ASSERT_TRUE(service_->DeleteAll(ann).ok());
  EXPECT_TRUE(service_->List(ann)->empty());
  EXPECT_EQ(service_->GetPublic(ann_public->slug).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->List(bob)->size(), 1u);
  EXPECT_TRUE(service_->GetPublic(bob_public->slug).ok());
  EXPECT_EQ(CountKeys(storage::Family::kCollections), 1u);
  EXPECT_EQ(CountKeys(storage::Family::kShareSlugs), 1u);
  EXPECT_TRUE(service_->DeleteAll(ann).ok());  // nothing left: still fine
}

TEST_F(CollectionsTest, ListPublicNeedsAnAccount) {
  EXPECT_EQ(service_->ListPublic("0123456789abcdef0123456789abcdef").status().code(), StatusCode::kNotFound);
  const std::string ann = VerifiedAccount("ann@x.example");
  auto listed = service_->ListPublic(ann);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(CollectionsTest, FindVerifiedAccountSeesOnlyVerifiedAddresses) {
  const std::string ann = VerifiedAccount("Ann@X.example");
  auto found = accounts_->FindVerifiedAccount("  ann@x.EXAMPLE ");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->value_or(""), ann);

  ASSERT_TRUE(accounts_->CreateAccount("unverified@x.example", "a good password", "").ok());
  EXPECT_FALSE(accounts_->FindVerifiedAccount("unverified@x.example")->has_value());
  EXPECT_FALSE(accounts_->FindVerifiedAccount("nobody@x.example")->has_value());
  EXPECT_FALSE(accounts_->FindVerifiedAccount("not an address")->has_value());
  // A second, unverified address of a verified account is not enough either.
  ASSERT_TRUE(accounts_->AddEmail(ann, "second@x.example").ok());
  EXPECT_FALSE(accounts_->FindVerifiedAccount("second@x.example")->has_value());
}

// --- The renderer -------------------------------------------------------------

SharePage HostilePage() {
  SharePage page;
  page.name = "<script>alert(1)</script>";
  page.description = "\"quoted\" & 'single' <b>bold</b>";
  page.owner = "Eve <eve@x.example>";
  page.url = "https://node.test/share/AAAAAAAAAAAAAAAAAAAAAA";
  SharedBadge b;
  b.id = "b1";
  b.name = "\"><img src=x onerror=alert(1)>";
  b.description = "</p><script>alert(2)</script>";
  b.image = "https://issuer.test/image.png?a=1&b=2";
  b.issuer_name = "Issuer & Co";
  b.issuer_url = "javascript:alert(3)";
  b.issued_on = "2023-11-14T22:13:20Z";
  b.criteria_url = "https://issuer.test/criteria";
  b.status = "valid";
  page.badges.push_back(b);
  return page;
}

TEST(SharePageTest, EscapesEverythingInterpolated) {
  const std::string html = RenderShareHtml(HostilePage());
  EXPECT_EQ(html.find("<script"), std::string::npos) << html;
  EXPECT_EQ(html.find("<img src=x"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("javascript:"), std::string::npos);  // not a link, not shown
  EXPECT_NE(html.find("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<meta property=\"og:title\" content=\"&lt;script&gt;alert(1)&lt;/script&gt;\">"),
            std::string::npos);
  EXPECT_NE(html.find("content=\"&quot;quoted&quot; &amp; &#39;single&#39; &lt;b&gt;bold&lt;/b&gt;\""),
            std::string::npos);
  EXPECT_NE(html.find("alt=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""), std::string::npos);
  EXPECT_NE(html.find("src=\"https://issuer.test/image.png?a=1&amp;b=2\""), std::string::npos);
  EXPECT_NE(html.find("<meta property=\"og:image\" content=\"https://issuer.test/image.png?a=1&amp;b=2\">"),
            std::string::npos);
  EXPECT_NE(html.find("Issuer &amp; Co"), std::string::npos);
  EXPECT_NE(html.find("<meta property=\"og:type\" content=\"website\">"), std::string::npos);
  EXPECT_NE(html.find("<meta property=\"og:url\" content=\"https://node.test/share/AAAAAAAAAAAAAAAAAAAAAA\">"),
            std::string::npos);
  EXPECT_NE(html.find("<meta name=\"twitter:card\" content=\"summary\">"), std::string::npos);
  EXPECT_NE(html.find("<time datetime=\"2023-11-14T22:13:20Z\">2023-11-14</time>"), std::string::npos);
  EXPECT_NE(html.find("<html lang=\"en\">"), std::string::npos);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html.find("name=\"viewport\""), std::string::npos);
}

TEST(SharePageTest, OnlyHttpUrlsBecomeLinksOrOpenGraphImages) {
  SharePage page = HostilePage();
  page.badges[0].image = "data:image/png;base64,iVBORw0KGgo=";
  page.badges[0].criteria_url = "javascript:alert(1)";
  page.badges[0].issuer_url = "https://issuer.test/";
  std::string html = RenderShareHtml(page);
  EXPECT_NE(html.find("src=\"data:image/png;base64,iVBORw0KGgo=\""), std::string::npos);
  EXPECT_EQ(html.find("og:image"), std::string::npos);  // crawlers need a URL
  EXPECT_EQ(html.find("javascript:"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"https://issuer.test/\" rel=\"nofollow noopener noreferrer\">Issuer &amp; Co</a>"),
            std::string::npos);

  page.badges[0].image = "data:text/html,<script>alert(1)</script>";
  html = RenderShareHtml(page);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_FALSE(IsHttpUrl("https://"));
  EXPECT_FALSE(IsHttpUrl("https:///path"));
  EXPECT_FALSE(IsHttpUrl("https://a.test/\" onload=\"x"));
  EXPECT_TRUE(IsHttpUrl("HTTPS://a.test/x"));
}

TEST(SharePageTest, StylesheetMatchesThePolicyHash) {
  const std::string html = RenderShareHtml(HostilePage());
  const size_t open = html.find("<style>");
  const size_t close = html.find("</style>");
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  const std::string style = html.substr(open + 7, close - open - 7);
  std::string hash = protocol::Base64UrlEncode(protocol::Sha256(style));
  for (char& c : hash) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (hash.size() % 4) hash += '=';
  const std::string& csp = SharePageCsp();
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("style-src 'sha256-" + hash + "'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("script-src"), std::string::npos);
  EXPECT_EQ(html.find(" style="), std::string::npos);  // inline style attributes would be blocked
  EXPECT_NE(RenderNotFoundHtml().find("<style>" + style + "</style>"), std::string::npos);
}

TEST(SharePageTest, JsonHasTheDocumentedShape) {
  const json j = json::parse(RenderShareJson(HostilePage()));
  EXPECT_EQ(j["name"], "<script>alert(1)</script>");
  EXPECT_EQ(j["owner"], "Eve <eve@x.example>");
  EXPECT_EQ(j["url"], "https://node.test/share/AAAAAAAAAAAAAAAAAAAAAA");
  ASSERT_EQ(j["badges"].size(), 1u);
  const json& b = j["badges"][0];
  EXPECT_EQ(b["id"], "b1");
  EXPECT_EQ(b["issuer"]["name"], "Issuer & Co");
  EXPECT_EQ(b["issued_on"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(b["criteria_url"], "https://issuer.test/criteria");
  EXPECT_EQ(b["status"], "valid");
}

TEST(SharePageTest, ReadsBadgeJsonTolerantly) {
  SharedBadge b = SharedBadgeFromJson("id1", R"({
      "name": "Nested", "description": 7,
      "image": {"id": "https://issuer.test/i.png"},
      "issuer": {"name": "Iss", "url": "https://issuer.test"},
      "issued_on": 1700000000,
      "criteria": {"url": "https://issuer.test/c"},
      "recipient": {"identity": "sha256$abc", "hashed": true, "salt": "s"}})",
                                      "valid");
  EXPECT_EQ(b.name, "Nested");
  EXPECT_EQ(b.description, "");  // wrong type: left empty
  EXPECT_EQ(b.image, "https://issuer.test/i.png");
  EXPECT_EQ(b.issuer_name, "Iss");
  EXPECT_EQ(b.issued_on, "2023-11-14T22:13:20Z");
  EXPECT_EQ(b.criteria_url, "https://issuer.test/c");
  EXPECT_TRUE(b.recipient_hashed);

  b = SharedBadgeFromJson("id2", R"({"badge": {"name": "Legacy", "criteria": "https://issuer.test/c",
      "issuer": {"name": "Old", "origin": "https://old.test"}}, "issued_on": "2013-02-21"})", "valid");
  EXPECT_EQ(b.name, "Legacy");
  EXPECT_EQ(b.criteria_url, "https://issuer.test/c");
  EXPECT_EQ(b.issuer_name, "Old");
  EXPECT_EQ(b.issued_on, "2013-02-21");

  b = SharedBadgeFromJson("id3", "not json", "invalid");
  EXPECT_EQ(b.id, "id3");
  EXPECT_EQ(b.status, "invalid");
  EXPECT_TRUE(b.name.empty());
}

TEST(SharePageTest, DisplayerAssertionNeverShowsAnAddressInClear) {
  SharedBadge b;
  b.name = "N";
  b.recipient = "ann@x.example";
  b.issuer_url = "https://issuer.test/profile?x=1";
  const json a = json::parse(DisplayerAssertionJson(b, "pepper"));
  EXPECT_EQ(a["recipient"], "sha256$" + protocol::Sha256Hex("ann@x.examplepepper"));
  EXPECT_EQ(a["salt"], "pepper");
  EXPECT_EQ(a["badge"]["issuer"]["origin"], "https://issuer.test");
  EXPECT_EQ(a["badge"]["name"], "N");

  b.recipient = "sha256$0123";
  b.recipient_hashed = true;
  b.recipient_salt = "s4lt";
  const json hashed = json::parse(DisplayerAssertionJson(b, "pepper"));
  EXPECT_EQ(hashed["recipient"], "sha256$0123");
  EXPECT_EQ(hashed["salt"], "s4lt");
}

}  // namespace
}  // namespace backpack
