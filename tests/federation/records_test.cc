// RecordStore (federation/records.h) over a real RocksDB store: identities,
// publishing, the change log and its cursors, applying pages from peers, and
// the directory. Two stores stand for two nodes.
#include "federation/records.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "protocol/account_record.h"
#include "protocol/encoding.h"
#include "storage/store.h"
#include "tests/support/test_http.h"

namespace backpack::federation {
namespace {

using Json = nlohmann::json;
using protocol::EmailHash;

std::string Random(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

// One node: a store, its locks, its RecordStore.
struct Node {
  Node(const std::string& path, const std::string& name, std::atomic<int64_t>& clock) : now(clock) {
    storage::StoreOptions options;
    options.path = path;
    auto opened = storage::OpenRocksStore(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(*opened);
    Reopen(name);
  }
  void Reopen(const std::string& name) {
    records.reset();
    auto opened = RecordStore::Open(*store, locks, {.node_name = name, .node_url = "http://" + name}, [this] { return now.load(); }, Random);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    records = std::move(*opened);
  }
  std::atomic<int64_t>& now;
  std::unique_ptr<storage::Store> store;
  storage::KeyLocks locks;
  std::unique_ptr<RecordStore> records;
};

class RecordsTest : public ::testing::Test {
 protected:
  // Pulls everything `from` has for `to` (as peer `from_name`), in pages of `page`.
  Result<ApplyResult> Pull(Node& from, Node& to, const std::string& from_name, size_t page = 2) {
    ApplyResult total;
    for (;;) {
      auto cursor = to.records->Cursor(from_name);
      if (!cursor.ok()) return cursor.status();
      auto changes = from.records->Changes(cursor->next, cursor->digest, page, 1 << 20);
      if (!changes.ok()) return changes.status();
      if (changes->records.empty() && changes->next == cursor->next) return total;
      auto applied = to.records->Apply(from_name, changes->records, {changes->log_id, changes->next, changes->digest});
      if (!applied.ok()) return applied.status();
      total.applied += applied->applied;
      total.older += applied->older;
    }
  }

  testing::TempDir dir_;
  std::atomic<int64_t> now_{1'800'000'000'000};
  Node a_{dir_.path() + "/a", "a.example", now_};
  Node b_{dir_.path() + "/b", "b.example", now_};
};

TEST(HybridClock, IncreasesEvenWhenTheClockStallsOrStepsBack) {
  int64_t wall = 1000;
  HybridClock clock([&] { return wall; });
  const auto v1 = clock.Next();
  const auto v2 = clock.Next();
  wall = 500;
  const auto v3 = clock.Next();
  wall = 2000;
  const auto v4 = clock.Next();
  EXPECT_EQ(v1, (protocol::RecordVersion{1000, 0}));
  EXPECT_LT(v1, v2);
  EXPECT_LT(v2, v3);
  EXPECT_EQ(v4, (protocol::RecordVersion{2000, 0}));
  clock.Observe({5000, 3});
  EXPECT_EQ(clock.Next(), (protocol::RecordVersion{5000, 4}));
}

TEST_F(RecordsTest, AnIdentityIsMadeOnceWithItsHomeRecord) {
  auto id = a_.records->Identity("local-ann");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->account, protocol::AccountIdOf(id->genesis));
  EXPECT_EQ(a_.records->Identity("local-ann")->account, id->account);
  EXPECT_EQ(**a_.records->LocalAccount(id->account), "local-ann");
  auto home = a_.records->Get(id->account, "home");
  ASSERT_TRUE(home.ok() && home->has_value());
  EXPECT_EQ(Json::parse(**home)["record"]["node"], "a.example");
  EXPECT_EQ(a_.records->Watermark(), 1u);
  // After a restart the same identity and key, and the log goes on.
  a_.Reopen("a.example");
  EXPECT_EQ(a_.records->Identity("local-ann")->account, id->account);
  EXPECT_EQ(a_.records->Watermark(), 1u);
  EXPECT_NE(a_.records->Identity("local-bob")->account, id->account);
  EXPECT_EQ(a_.records->Watermark(), 2u);
}

TEST_F(RecordsTest, PagesReplicateWithCursorsAndTheDirectoryFollows) {
  auto ann = a_.records->Identity("ann");
  ASSERT_TRUE(ann.ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "directory"}, {"email_sha256", EmailHash("ann@example.org")},
                                          {"discoverable", true}}).ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b1"}, {"original", "e30"}}).ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "mirrors"}, {"nodes", {"b.example"}}}).ok());

  auto pulled = Pull(a_, b_, "a.example");
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(pulled->applied, 4u);
  auto hit = b_.records->Lookup(EmailHash("Ann@Example.org"));
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->account, ann->account);
  EXPECT_EQ(Json::parse((*hit)->home)["record"]["node"], "a.example");
  EXPECT_EQ(b_.records->AccountRecords(ann->account)->size(), 4u);

  // Nothing new: the next pull applies nothing. The same page again changes nothing.
  EXPECT_EQ(Pull(a_, b_, "a.example")->applied, 0u);
  auto all = a_.records->Changes(1, "", 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  auto again = b_.records->Apply("a.example", all->records, {all->log_id, all->next, all->digest});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->applied, 0u);
  EXPECT_EQ(again->older, 4u);

  // Undiscoverable, then a deleted badge: both follow, and an old copy cannot bring the badge back.
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "directory"}, {"email_sha256", EmailHash("ann@example.org")},
                                          {"discoverable", false}}).ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "tombstone"}, {"target", "badge/b1"}}).ok());
  ASSERT_TRUE(Pull(a_, b_, "a.example").ok());
  EXPECT_FALSE(b_.records->Lookup(EmailHash("ann@example.org"))->has_value());
  auto badge = b_.records->Get(ann->account, "badge/b1");
  ASSERT_TRUE(badge.ok() && badge->has_value());
  EXPECT_EQ(Json::parse(**badge)["record"]["type"], "tombstone");
  auto replayed = b_.records->Apply("a.example", all->records, {all->log_id, all->next, all->digest});
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replayed->applied, 0u);
  EXPECT_EQ(Json::parse(**b_.records->Get(ann->account, "badge/b1"))["record"]["type"], "tombstone");
}

TEST_F(RecordsTest, ReorderedRecordsKeepTheNewest) {
  ASSERT_TRUE(a_.records->Identity("ann").ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b1"}, {"original", "djE"}}).ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b1"}, {"original", "djI"}}).ok());
  auto all = a_.records->Changes(1, "", 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 3u);
  // Home first (it carries the genesis), then the two badge versions newest first.
  std::vector<std::string> reordered = {all->records[0], all->records[2], all->records[1]};
  auto applied = b_.records->Apply("a.example", reordered, {all->log_id, all->next, all->digest});
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->applied, 2u);
  EXPECT_EQ(applied->older, 1u);
  const std::string id = a_.records->Identity("ann")->account;
  EXPECT_EQ(Json::parse(**b_.records->Get(id, "badge/b1"))["record"]["original"], "djI");
}

TEST_F(RecordsTest, APeerCannotWriteForAccountsItIsNotHomeFor) {
  ASSERT_TRUE(a_.records->Identity("ann").ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b1"}, {"original", "e30"}}).ok());
  auto all = a_.records->Changes(1, "", 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  // c.example relays a's records as its own: refused, nothing stored, cursor unchanged.
  auto relayed = b_.records->Apply("c.example", all->records, {all->log_id, all->next, all->digest});
  EXPECT_EQ(relayed.status().code(), StatusCode::kPermissionDenied) << relayed.status().ToString();
  EXPECT_TRUE(b_.records->AccountRecords(a_.records->Identity("ann")->account)->empty());
  EXPECT_EQ(b_.records->Cursor("c.example")->next, 1u);

  // A record for a's account signed with another key (a forger holding the page).
  ASSERT_TRUE(Pull(a_, b_, "a.example").ok());
  const std::string id = a_.records->Identity("ann")->account;
  const auto forger = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519).value();
  auto forged = protocol::SignRecord(
      {{"type", "badge"}, {"account", id}, {"version", protocol::RecordVersion{now_ + 1, 0}.ToString()},
       {"badge", "evil"}, {"original", "e30"}},
      forger);
  ASSERT_TRUE(forged.ok());
  auto refused = b_.records->Apply("a.example", {*forged}, {all->log_id, all->next, all->digest});
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status().ToString();
  EXPECT_FALSE(b_.records->Get(id, "badge/evil")->has_value());

  // A far-future version, even correctly signed by the home: refused.
  now_ += 10 * 60 * 1000;  // a's clock runs ahead of b's
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "later"}, {"original", "e30"}}).ok());
  now_ -= 10 * 60 * 1000;
  auto page = a_.records->Changes(all->next, all->digest, 100, 1 << 20);
  ASSERT_TRUE(page.ok());
  auto future = b_.records->Apply("a.example", page->records, {page->log_id, page->next, page->digest});
  EXPECT_EQ(future.status().code(), StatusCode::kInvalidArgument) << future.status().ToString();
  EXPECT_NE(future.status().message().find("future"), std::string::npos);

  // b's own accounts cannot be written by anyone else.
  auto bob = b_.records->Identity("bob");
  ASSERT_TRUE(bob.ok());
  auto own = b_.records->Changes(1, "", 100, 1 << 20);
  ASSERT_TRUE(own.ok());
  Node c(dir_.path() + "/c", "c.example", now_);
  EXPECT_EQ(c.records->Apply("b.example", own->records, {own->log_id, own->next, own->digest}).status().code(),
            StatusCode::kOk);
  EXPECT_EQ(b_.records->Apply("c.example", own->records, {}).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(RecordsTest, ACursorThatNoLongerFitsTheLogIsInvalid) {
  ASSERT_TRUE(a_.records->Identity("ann").ok());
  ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b1"}, {"original", "e30"}}).ok());
  auto first = a_.records->Changes(1, "", 1, 1 << 20);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->next, 2u);
  EXPECT_TRUE(a_.records->Changes(first->next, first->digest, 10, 1 << 20).ok());
  // Another history at that point (a restored backup), beyond the end, or 0.
  for (auto [since, after] : {std::pair<uint64_t, std::string>{2, std::string(64, '0')}, {9, first->digest},
                              {0, ""}}) {
    auto bad = a_.records->Changes(since, after, 10, 1 << 20);
    EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(bad.status().message().starts_with("cursor_invalid")) << bad.status().ToString();
  }
}

TEST_F(RecordsTest, PagesRespectTheirBoundsAndFilters) {
  ASSERT_TRUE(a_.records->Identity("ann").ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a_.records->Publish("ann", {{"type", "badge"}, {"badge", "b" + std::to_string(i)},
                                            {"original", protocol::Base64UrlEncode(std::string(1000, 'x'))}})
                    .ok());
  }
  auto small = a_.records->Changes(1, "", 100, 1500);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->records.size(), 1u);  // at least one, even over the byte bound
  EXPECT_TRUE(small->more);
  // A filter leaves badges out but the cursor still moves past them.
  auto homes = a_.records->Changes(1, "", 100, 1 << 20, [](const protocol::RecordEnvelope& e) {
    return e.type != protocol::RecordType::kBadge;
  });
  ASSERT_TRUE(homes.ok());
  EXPECT_EQ(homes->records.size(), 1u);
  EXPECT_EQ(homes->next, 7u);
  EXPECT_FALSE(homes->more);
}

TEST_F(RecordsTest, ConcurrentPublishesNeverHideAnEntryFromAReader) {
  ASSERT_TRUE(a_.records->Identity("ann").ok());
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(a_.records->Publish("ann", {{"type", "badge"},
                                                {"badge", "t" + std::to_string(t) + "-" + std::to_string(i)},
                                                {"original", "e30"}})
                        .ok());
      }
    });
  }
  // A reader pulling while they write sees every entry exactly once.
  size_t seen = 0;
  uint64_t next = 1;
  std::string digest;
  const uint64_t total = 1 + kThreads * kEach;
  while (next <= total) {
    auto page = a_.records->Changes(next, digest, 7, 1 << 20);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    seen += page->records.size();
    next = page->next;
    digest = page->digest;
    if (page->records.empty()) a_.records->WaitFor(next, now_.load() + 100);
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(seen, total);
  EXPECT_EQ(a_.records->Watermark(), total);
}

// Regression: Identity() took the home record's key lock while holding the
// identity's, and KeyLocks only orders the stripes of a single Lock() call:
// two keys on one stripe deadlocked the calling thread, and two threads
// could deadlock each other.
TEST(RecordStoreLocks, IdentitiesAreMadeWithOneKeyLockAtATime) {
  testing::TempDir dir;
  storage::StoreOptions options;
  options.path = dir.path() + "/db";
  auto store = storage::OpenRocksStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  storage::KeyLocks locks(1);  // one stripe: every key shares it
  auto records = RecordStore::Open(**store, locks, {.node_name = "a.example", .node_url = "http://a.example"},
                                   [] { return int64_t{1'800'000'000'000}; }, Random);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  auto made = std::async(std::launch::async, [&] {
    std::vector<std::thread> threads;
    std::atomic<int> failed{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10; ++i) {
          if (!(*records)->Identity("user-" + std::to_string(t) + "-" + std::to_string(i)).ok()) ++failed;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    return failed.load();
  });
  if (made.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "Identity() deadlocked";
    std::_Exit(1);  // the stuck threads cannot be joined
  }
  EXPECT_EQ(made.get(), 0);
  EXPECT_EQ((*records)->Watermark(), 40u);
}

}  // namespace
}  // namespace backpack::federation
