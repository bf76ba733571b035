// The Replicator (federation/replication.h) against a fake transport and a
// simulated clock, over real RecordStores: a source node whose change log
// the fake transport serves, and the node under test that applies it. Also
// the wire format of the change feed and the backoff.
#include "federation/replication.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/account_record.h"
#include "storage/store.h"
#include "tests/support/test_http.h"

namespace backpack::federation {
namespace {

using Json = nlohmann::json;

constexpr char kSource[] = "a.example";

std::string Random(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

struct Node {
  Node(const std::string& path, const std::string& name, std::atomic<int64_t>& clock) {
    storage::StoreOptions options;
    options.path = path;
    auto opened = storage::OpenRocksStore(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(*opened);
    auto records_opened = RecordStore::Open(
        *store, locks, {.node_name = name, .node_url = "http://" + name}, [&clock] { return clock.load(); }, Random);
    EXPECT_TRUE(records_opened.ok()) << records_opened.status().ToString();
    records = std::move(*records_opened);
  }
  std::unique_ptr<storage::Store> store;
  storage::KeyLocks locks;
  std::unique_ptr<RecordStore> records;
};

// A simulated clock: tasks run, in due order, only when the test advances time.
class FakeScheduler : public ReplicationScheduler {
 public:
  int64_t NowMs() override { return now_; }
  void RunAfter(int64_t delay_ms, std::function<void()> task) override {
    EXPECT_GE(delay_ms, 0);
    tasks_.emplace(std::make_pair(now_ + delay_ms, seq_++), std::move(task));
  }
  // Runs every task due within `ms` from now, moving the clock to each.
  void Advance(int64_t ms) {
    const int64_t end = now_ + ms;
    while (!tasks_.empty() && tasks_.begin()->first.first <= end) {
      auto node = tasks_.extract(tasks_.begin());
      now_ = std::max(now_, node.key().first);
      node.mapped()();
    }
    now_ = end;
  }
  void RunReady() { Advance(0); }
  // When the earliest task is due; -1 with none.
  int64_t NextDue() const { return tasks_.empty() ? -1 : tasks_.begin()->first.first; }

 private:
  int64_t now_ = 1'000'000;
  uint64_t seq_ = 0;
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> tasks_;
};

// Keeps every request until the test answers it, or serves a RecordStore.
class FakeTransport : public ReplicationTransport {
 public:
  struct PendingPull {
    PeerAddress peer;
    ChangesQuery query;
    std::function<void(PullResult)> done;
  };
  struct PendingPoke {
    PeerAddress peer;
    std::function<void(PokeResult)> done;
  };

  void Pull(const PeerAddress& peer, const ChangesQuery& query, std::function<void(PullResult)> done) override {
    queries.push_back(query);
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    pulls.push_back({peer, query, [this, done = std::move(done)](PullResult r) {
                       --in_flight;
                       done(std::move(r));
                     }});
    if (serve != nullptr) ServeReady();
  }
  void Poke(const PeerAddress& peer, std::function<void(PokeResult)> done) override {
    pokes.push_back({peer, std::move(done)});
  }

  // Answers the oldest pending pull.
  void Answer(PullResult result) {
    ASSERT_FALSE(pulls.empty());
    PendingPull pull = std::move(pulls.front());
    pulls.pop_front();
    pull.done(std::move(result));
  }
  void Fail(const std::string& error = "connection refused") { Answer({PullResult::Outcome::kFailed, {}, error, 0}); }
  // Answers the pending pulls from `serve` (a long poll with nothing new stays pending).
  void ServeReady() {
    while (!pulls.empty()) {
      const ChangesQuery& q = pulls.front().query;
      auto page = serve->Changes(q.since, q.after, q.limit, q.max_bytes);
      if (!page.ok()) {
        const bool invalid = page.status().message().starts_with("cursor_invalid");
        Answer({invalid ? PullResult::Outcome::kCursorInvalid : PullResult::Outcome::kFailed,
                {},
                page.status().message(),
                0});
        continue;
      }
      if (page->records.empty() && page->next == q.since && q.wait_seconds > 0) return;  // held
      Answer({PullResult::Outcome::kPage, std::move(*page), "", 0});
    }
  }
  void AnswerPoke(PokeResult result) {
    ASSERT_FALSE(pokes.empty());
    PendingPoke poke = std::move(pokes.front());
    pokes.pop_front();
    poke.done(std::move(result));
  }

  RecordStore* serve = nullptr;
  std::deque<PendingPull> pulls;
  std::deque<PendingPoke> pokes;
  std::vector<ChangesQuery> queries;
  int in_flight = 0;
  int max_in_flight = 0;
};

class RecordingEvents : public ReplicationEvents {
 public:
  void PageApplied(const std::string& peer, const ChangePage& page, const ApplyResult& result) override {
    pages.push_back(page);
    applied += result.applied;
    older += result.older;
  }
  void PullSucceeded(const std::string& peer, int failures) override {
    ++successes;
    if (failures > 0) recovered_after.push_back(failures);
  }
  void PullFailed(const std::string& peer, const PullFailure& failure) override { failures.push_back(failure); }
  void Resync(const std::string& peer, const std::string& why) override { resyncs.push_back(why); }
  void PokeSent(const std::string& peer, const PokeResult& result) override { ++pokes_done; }

  std::vector<ChangePage> pages;
  size_t applied = 0;
  size_t older = 0;
  int successes = 0;
  std::vector<int> recovered_after;
  std::vector<PullFailure> failures;
  std::vector<std::string> resyncs;
  int pokes_done = 0;
};

class ReplicatorTest : public ::testing::Test {
 protected:
  ReplicationOptions Options() {
    ReplicationOptions o;
    o.page_max_records = 4;
    o.page_max_bytes = 1 << 20;
    o.long_poll_seconds = 10;
    o.idle_poll_seconds = 30;
    o.retry_min_seconds = 1;
    o.retry_max_seconds = 16;
    o.breaker_failures = 4;
    o.pokes_per_minute = 60;
    o.seed = 7;
    return o;
  }
  void Make(ReplicationOptions options) {
    replicator_ = std::make_unique<Replicator>(*b_.records, transport_, scheduler_, events_, std::move(options));
  }
  void Publish(int accounts, int first = 0) {
    for (int i = first; i < first + accounts; ++i) {
      ASSERT_TRUE(a_.records->Identity("user" + std::to_string(i)).ok());
    }
  }
  // account/key -> version of everything `node` holds for a's accounts.
  std::map<std::string, std::string> Held(Node& node) {
    std::map<std::string, std::string> out;
    auto all = a_.records->Changes(1, "", 100000, 1 << 30);
    EXPECT_TRUE(all.ok());
    std::set<std::string> accounts;
    for (const std::string& r : all->records) accounts.insert(protocol::ParseEnvelope(r)->account);
    for (const std::string& account : accounts) {
      auto records = node.records->AccountRecords(account);
      EXPECT_TRUE(records.ok());
      for (const std::string& r : *records) {
        auto e = protocol::ParseEnvelope(r);
        out[account + "/" + e->key] = e->version.ToString();
      }
    }
    return out;
  }

  testing::TempDir dir_;
  std::atomic<int64_t> now_{1'800'000'000'000};
  Node a_{dir_.path() + "/a", kSource, now_};
  Node b_{dir_.path() + "/b", "b.example", now_};
  FakeScheduler scheduler_;
  FakeTransport transport_;
  RecordingEvents events_;
  std::unique_ptr<Replicator> replicator_;
};

// ---- Wire format -----------------------------------------------------------------

TEST(ChangeFeedWire, PagesRoundTripWithRecordsAsJsonValues) {
  ChangePage page;
  page.log_id = "0123abcd";
  page.records = {R"({"record":{"type":"home"},"sig":{}})", R"({"record":{"type":"badge"}})"};
  page.next = 7;
  page.digest = std::string(64, 'a');
  page.more = true;
  const std::string body = EncodeChangePage(page);
  const Json parsed = Json::parse(body);
  EXPECT_TRUE(parsed["records"][0].is_object());
  EXPECT_EQ(parsed["records"][0]["record"]["type"], "home");
  EXPECT_EQ(parsed["log"], "0123abcd");
  EXPECT_EQ(parsed["next"], 7);
  EXPECT_EQ(parsed["more"], true);

  auto decoded = DecodeChangePage(body, {.since = 3, .after = std::string(64, 'b'), .limit = 10});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->log_id, page.log_id);
  EXPECT_EQ(decoded->next, 7u);
  EXPECT_EQ(decoded->digest, page.digest);
  EXPECT_TRUE(decoded->more);
  ASSERT_EQ(decoded->records.size(), 2u);
  EXPECT_EQ(Json::parse(decoded->records[0]), Json::parse(page.records[0]));

  EXPECT_EQ(ChangesTarget({.since = 5, .after = "ab", .limit = 50, .max_bytes = 1000, .wait_seconds = 25}),
            "/_federation/v1/changes?since=5&after=ab&limit=50&bytes=1000&wait=25");
}

TEST(ChangeFeedWire, AnythingButAWellFormedAnswerIsRefused) {
  const std::string d(64, 'c');
  const ChangesQuery q{.since = 5, .after = std::string(64, 'e'), .limit = 2};
  auto refused = [&](const std::string& body) {
    auto page = DecodeChangePage(body, q);
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument) << body;
    return page.status().message();
  };
  refused("garbage");
  refused("[]");
  refused(std::string(100, '[') + std::string(100, ']'));
  refused(R"({"records":[],"next":5,"digest":"","more":false})");                        // no log
  refused(R"({"log":"l","records":{},"next":6,"digest":")" + d + R"(","more":false})");  // records not an array
  refused(R"({"log":"l","records":[],"next":-1,"digest":")" + d + R"(","more":false})");
  refused(R"({"log":"l","records":[],"next":6,"digest":")" + d + R"(","more":"no"})");
  refused(R"({"log":"l","records":[{},{},{}],"next":9,"digest":")" + d + R"(","more":false})");  // over the limit
  refused(R"({"log":"l","records":[],"next":4,"digest":")" + d + R"(","more":false})");          // goes back
  refused(R"({"log":"l","records":[{}],"next":5,"digest":")" + q.after + R"(","more":false})");  // no progress
  refused(R"({"log":"l","records":[{},{}],"next":6,"digest":")" + d + R"(","more":false})");     // 2 records in 1 entry
  refused(R"({"log":"l","records":[],"next":5,"digest":")" + q.after + R"(","more":true})");     // more, no progress
  refused(R"({"log":"l","records":[{}],"next":6,"digest":"xyz","more":false})");                 // not a digest
  refused(R"({"log":"l","records":[],"next":5,"digest":")" + d + R"(","more":false})");          // digest moved
  refused(R"({"log":"l","records":[7],"next":6,"digest":")" + d + R"(","more":false})");         // not an object
  EXPECT_TRUE(
      DecodeChangePage(R"({"log":"l","records":[],"next":5,"digest":")" + q.after + R"(","more":false})", q).ok());
  EXPECT_TRUE(DecodeChangePage(R"({"log":"l","records":[],"next":8,"digest":")" + d + R"(","more":false})", q).ok());
}

TEST(Backoff, GrowsFromRetryMinToRetryMaxWithJitterInTheUpperHalf) {
  // retry_min 1 s, retry_max 60 s, breaker at 10.
  const int64_t bases[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  for (int failures = 1; failures <= 9; ++failures) {
    const int64_t base = bases[failures - 1];
    EXPECT_EQ(BackoffMs(failures, 1, 60, 10, 0.0), base) << failures;
    for (double u : {0.0, 0.25, 0.5, 0.75, 0.999}) {
      const int64_t d = BackoffMs(failures, 1, 60, 10, u);
      EXPECT_LE(d, base);
      EXPECT_GE(d, std::max<int64_t>(1000, base / 2));
    }
  }
  // From the breaker on: retry_max, jittered.
  EXPECT_EQ(BackoffMs(3, 1, 60, 3, 0.0), 60000);
  EXPECT_EQ(BackoffMs(3, 1, 60, 3, 0.999), 30030);
  // Never under retry_min, never over retry_max.
  EXPECT_EQ(BackoffMs(1, 5, 300, 5, 0.9), 5000);
  EXPECT_EQ(BackoffMs(1000000, 1, 300, 2000000, 0.0), 300000);
}

// ---- The puller -------------------------------------------------------------------

TEST_F(ReplicatorTest, PagesAreAppliedInOrderAndTheLastPullLongPolls) {
  Publish(10);
  transport_.serve = a_.records.get();
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();

  ASSERT_EQ(events_.pages.size(), 3u);  // 4 + 4 + 2
  uint64_t since = 1;
  for (size_t i = 0; i < events_.pages.size(); ++i) {
    EXPECT_EQ(transport_.queries[i].since, since) << i;
    EXPECT_EQ(transport_.queries[i].limit, 4u);
    since = events_.pages[i].next;
  }
  EXPECT_EQ(since, 11u);
  EXPECT_EQ(events_.applied, 10u);
  EXPECT_EQ(events_.older, 0u);
  EXPECT_EQ(b_.records->Cursor(kSource)->next, 11u);
  EXPECT_EQ(Held(b_), Held(a_));
  // Caught up: one long poll waits on the source.
  ASSERT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(transport_.pulls.front().query.since, 11u);
  EXPECT_EQ(transport_.pulls.front().query.wait_seconds, 10);
  EXPECT_EQ(replicator_->long_polls(), 1u);
  EXPECT_EQ(transport_.max_in_flight, 1);

  // News answers the long poll; the puller goes on at once.
  Publish(3, 10);
  transport_.ServeReady();
  scheduler_.RunReady();
  EXPECT_EQ(events_.applied, 13u);
  EXPECT_EQ(Held(b_), Held(a_));
  EXPECT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(transport_.max_in_flight, 1);
}

TEST_F(ReplicatorTest, AnEarlyEmptyAnswerWaitsOutTheLongPoll) {
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 1u);
  auto empty = a_.records->Changes(1, "", 4, 1 << 20);
  ASSERT_TRUE(empty.ok());
  scheduler_.Advance(2000);
  transport_.Answer({PullResult::Outcome::kPage, *empty, "", 0});  // answered after 2 of 10 seconds
  EXPECT_EQ(scheduler_.NextDue(), 1'000'000 + 10'000);
  scheduler_.Advance(7999);
  EXPECT_TRUE(transport_.pulls.empty());
  scheduler_.Advance(1);
  EXPECT_EQ(transport_.pulls.size(), 1u);
}

TEST_F(ReplicatorTest, CursorInvalidStartsAgainFromOneAndSkipsWhatIsHeld) {
  Publish(6);
  transport_.serve = a_.records.get();
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(events_.applied, 6u);
  const auto before = Held(b_);

  // The source was restored from a backup: it no longer knows our cursor.
  transport_.serve = nullptr;
  transport_.Answer({PullResult::Outcome::kCursorInvalid, {}, "cursor_invalid: entry 6 is not the one", 0});
  EXPECT_EQ(events_.resyncs.size(), 1u);
  EXPECT_EQ(b_.records->Cursor(kSource)->next, 1u);
  EXPECT_TRUE(events_.failures.empty());
  transport_.serve = a_.records.get();
  scheduler_.RunReady();
  EXPECT_EQ(transport_.queries[transport_.queries.size() - 3].since, 1u);
  EXPECT_EQ(events_.applied, 6u);  // nothing applied twice
  EXPECT_EQ(events_.older, 6u);
  EXPECT_EQ(Held(b_), before);
  EXPECT_EQ(b_.records->Cursor(kSource)->next, 7u);

  // A page from another log (the source's data was replaced) does the same.
  transport_.serve = nullptr;
  auto page = a_.records->Changes(7, b_.records->Cursor(kSource)->digest, 4, 1 << 20);
  ASSERT_TRUE(page.ok());
  page->log_id = "another-log";
  transport_.Answer({PullResult::Outcome::kPage, *page, "", 0});
  EXPECT_EQ(events_.resyncs.size(), 2u);
  EXPECT_EQ(b_.records->Cursor(kSource)->next, 1u);
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(transport_.pulls.front().query.since, 1u);
  EXPECT_EQ(transport_.pulls.front().query.after, "");
}

TEST_F(ReplicatorTest, FailuresBackOffWithJitterAndTheBreakerSuspendsThenRecovers) {
  ReplicationOptions options = Options();
  Make(options);
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();

  std::vector<int64_t> waits;
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(transport_.pulls.size(), 1u) << i;
    const int64_t failed_at = scheduler_.NowMs();
    transport_.Fail();
    ASSERT_EQ(events_.failures.size(), static_cast<size_t>(i + 1));
    const PullFailure& f = events_.failures.back();
    EXPECT_EQ(f.failures, i + 1);
    EXPECT_EQ(f.kind, PullFailure::Kind::kTransport);
    EXPECT_EQ(f.suspended, i + 1 >= options.breaker_failures);
    EXPECT_EQ(scheduler_.NextDue() - failed_at, f.retry_in_ms);
    const int64_t base = i + 1 >= options.breaker_failures ? 16000 : std::min<int64_t>(16000, int64_t{1000} << i);
    EXPECT_LE(f.retry_in_ms, base) << i;
    EXPECT_GE(f.retry_in_ms, std::max<int64_t>(1000, base / 2)) << i;
    waits.push_back(f.retry_in_ms);
    // Nothing before the backoff ends.
    scheduler_.Advance(f.retry_in_ms - 1);
    EXPECT_TRUE(transport_.pulls.empty());
    scheduler_.Advance(1);
  }
  EXPECT_TRUE(replicator_->StatusOf(kSource)->suspended);
  // Jitter: the suspended retries are not all the same.
  EXPECT_NE(waits[4], waits[5]);
  EXPECT_EQ(transport_.max_in_flight, 1);

  // A suspended peer is not poked.
  replicator_->OnLocalCommit();
  scheduler_.RunReady();
  EXPECT_TRUE(transport_.pokes.empty());

  // One success makes it healthy again.
  Publish(1);
  transport_.serve = a_.records.get();
  transport_.ServeReady();
  scheduler_.RunReady();
  EXPECT_EQ(events_.recovered_after, std::vector<int>{7});
  EXPECT_FALSE(replicator_->StatusOf(kSource)->suspended);
  EXPECT_EQ(replicator_->StatusOf(kSource)->failures, 0);
  EXPECT_EQ(events_.applied, 1u);
}

TEST_F(ReplicatorTest, TheJitterIsSeededAndDiffersBetweenSeeds) {
  auto run = [&](uint64_t seed) {
    FakeScheduler scheduler;
    FakeTransport transport;
    RecordingEvents events;
    ReplicationOptions options = Options();
    options.seed = seed;
    Replicator replicator(*b_.records, transport, scheduler, events, options);
    replicator.SetPeers({{kSource, "http://a.example", 0}});
    std::vector<int64_t> waits;
    for (int i = 0; i < 6; ++i) {
      scheduler.Advance(20000);
      transport.Fail();
      waits.push_back(events.failures.back().retry_in_ms);
    }
    return waits;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST_F(ReplicatorTest, ARefusedPageStoresNothingAndCountsAsAFailure) {
  Publish(3);
  auto page = a_.records->Changes(1, "", 4, 1 << 20);
  ASSERT_TRUE(page.ok());
  // The last record altered after signing.
  Json tampered = Json::parse(page->records[2]);
  tampered["record"]["url"] = "http://evil.example";
  page->records[2] = tampered.dump();
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();
  transport_.Answer({PullResult::Outcome::kPage, *page, "", 0});
  ASSERT_EQ(events_.failures.size(), 1u);
  EXPECT_EQ(events_.failures[0].kind, PullFailure::Kind::kRefusedPage);
  EXPECT_NE(events_.failures[0].error.find("record 2"), std::string::npos) << events_.failures[0].error;
  EXPECT_TRUE(events_.pages.empty());
  EXPECT_TRUE(Held(b_).empty());
  EXPECT_EQ(b_.records->Cursor(kSource)->next, 1u);
}

TEST_F(ReplicatorTest, APeerCannotSendRecordsOfAccountsItIsNotHomeFor) {
  Publish(2);
  auto honest = a_.records->Changes(1, "", 4, 1 << 20);
  ASSERT_TRUE(honest.ok());
  Make(Options());
  // c.example relays a.example's records as its own.
  replicator_->SetPeers({{"c.example", "http://c.example", 0}});
  scheduler_.RunReady();
  transport_.Answer({PullResult::Outcome::kPage, *honest, "", 0});
  ASSERT_EQ(events_.failures.size(), 1u);
  EXPECT_EQ(events_.failures[0].kind, PullFailure::Kind::kRefusedPage);
  EXPECT_NE(events_.failures[0].error.find("c.example"), std::string::npos) << events_.failures[0].error;
  EXPECT_TRUE(Held(b_).empty());
  EXPECT_EQ(b_.records->Cursor("c.example")->next, 1u);
}

TEST_F(ReplicatorTest, DuplicateAndReorderedPagesChangeNothing) {
  ASSERT_TRUE(a_.records->Identity("user0").ok());
  const std::string hash = protocol::EmailHash("ann@example.org");
  ASSERT_TRUE(
      a_.records->Publish("user0", {{"type", "directory"}, {"email_sha256", hash}, {"discoverable", true}}).ok());
  ASSERT_TRUE(
      a_.records->Publish("user0", {{"type", "directory"}, {"email_sha256", hash}, {"discoverable", false}}).ok());
  auto all = a_.records->Changes(1, "", 10, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 3u);
  const std::string home = all->records[0], v1 = all->records[1], v2 = all->records[2];

  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  uint64_t next = 1;
  // Pages that advance the cursor one entry at a time, whatever they carry.
  auto deliver = [&](std::vector<std::string> records) {
    scheduler_.RunReady();
    ASSERT_EQ(transport_.pulls.size(), 1u);
    EXPECT_EQ(transport_.pulls.front().query.since, next);
    ChangePage page{all->log_id, std::move(records), ++next, std::string(64, 'd'), false};
    transport_.Answer({PullResult::Outcome::kPage, std::move(page), "", 0});
  };
  deliver({home});
  deliver({v2});  // the newer directory record before the older
  const auto held = Held(b_);
  EXPECT_EQ(held, Held(a_));
  deliver({v1});        // late: older, skipped
  deliver({v2, home});  // again
  EXPECT_EQ(Held(b_), held);
  EXPECT_EQ(events_.applied, 2u);
  EXPECT_EQ(events_.older, 3u);
  EXPECT_TRUE(events_.failures.empty());
  auto directory = b_.records->Get(a_.records->Identity("user0")->account, "directory/" + hash);
  ASSERT_TRUE(directory.ok() && directory->has_value());
  EXPECT_EQ(Json::parse(**directory)["record"]["discoverable"], false);
  EXPECT_FALSE(b_.records->Lookup(hash)->has_value());

  // A page that would move the cursor back is refused.
  scheduler_.RunReady();
  ChangePage back{all->log_id, {home}, 2, std::string(64, 'd'), false};
  transport_.Answer({PullResult::Outcome::kPage, std::move(back), "", 0});
  ASSERT_EQ(events_.failures.size(), 1u);
  EXPECT_EQ(b_.records->Cursor(kSource)->next, next);
  EXPECT_EQ(Held(b_), held);
}

TEST_F(ReplicatorTest, APokeFloodKeepsOnePullInFlight) {
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 1u);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(replicator_->OnPoke(kSource));
  scheduler_.RunReady();
  EXPECT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(replicator_->StatusOf(kSource)->pulls, 1u);
  // The pull ends with nothing new: the pokes make one more pull, at once.
  auto empty = a_.records->Changes(1, "", 4, 1 << 20);
  transport_.Answer({PullResult::Outcome::kPage, *empty, "", 0});
  scheduler_.RunReady();
  EXPECT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(replicator_->StatusOf(kSource)->pulls, 2u);
  EXPECT_EQ(transport_.max_in_flight, 1);
  EXPECT_FALSE(replicator_->OnPoke("unknown.example"));

  // A poke ends a backoff (the peer is up), still one pull at a time.
  transport_.Fail();
  EXPECT_GT(scheduler_.NextDue(), scheduler_.NowMs());
  for (int i = 0; i < 10; ++i) replicator_->OnPoke(kSource);
  scheduler_.RunReady();
  EXPECT_EQ(transport_.pulls.size(), 1u);
  EXPECT_EQ(replicator_->StatusOf(kSource)->pulls, 3u);
  EXPECT_EQ(transport_.max_in_flight, 1);
}

TEST_F(ReplicatorTest, PokesAfterCommitsAreCoalescedAndBackedOff) {
  ReplicationOptions options = Options();
  options.pokes_per_minute = 30;  // 2 s apart
  Make(options);
  replicator_->SetPeers({{kSource, "http://a.example", 0}, {"c.example", "http://c.example", 0}});
  scheduler_.RunReady();

  for (int i = 0; i < 50; ++i) replicator_->OnLocalCommit();
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pokes.size(), 2u);  // one per peer
  std::set<std::string> poked = {transport_.pokes[0].peer.name, transport_.pokes[1].peer.name};
  EXPECT_EQ(poked, (std::set<std::string>{kSource, "c.example"}));
  // More commits while they are in flight: one more poke each, afterwards.
  for (int i = 0; i < 50; ++i) replicator_->OnLocalCommit();
  scheduler_.RunReady();
  EXPECT_EQ(transport_.pokes.size(), 2u);
  transport_.AnswerPoke({});
  transport_.AnswerPoke({});
  scheduler_.Advance(1999);
  EXPECT_TRUE(transport_.pokes.empty());  // not closer than 60 / pokes_per_minute
  scheduler_.Advance(1);
  EXPECT_EQ(transport_.pokes.size(), 2u);
  transport_.AnswerPoke({});
  transport_.AnswerPoke({});
  scheduler_.Advance(60000);
  EXPECT_TRUE(transport_.pokes.empty());  // nothing new, nothing sent

  // A failed poke is retried after a backoff; a Retry-After is honoured.
  replicator_->OnLocalCommit();
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pokes.size(), 2u);
  transport_.AnswerPoke({Unavailable("down"), 0});
  transport_.AnswerPoke({ResourceExhausted("429"), 30000});
  scheduler_.Advance(1000);
  ASSERT_EQ(transport_.pokes.size(), 1u);
  EXPECT_EQ(transport_.pokes[0].peer.name, kSource);  // peers are kept in name order
  transport_.AnswerPoke({});
  scheduler_.Advance(28999);
  EXPECT_TRUE(transport_.pokes.empty());
  scheduler_.Advance(1);
  EXPECT_EQ(transport_.pokes.size(), 1u);
  EXPECT_EQ(events_.pokes_done, 7);
}

TEST_F(ReplicatorTest, APeerWaitingOnOurLogIsNotPoked) {
  ReplicationOptions options = Options();
  options.peer_is_waiting = [](const std::string& peer) { return peer == "c.example"; };
  Make(options);
  replicator_->SetPeers({{kSource, "http://a.example", 0}, {"c.example", "http://c.example", 0}});
  replicator_->OnLocalCommit();
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pokes.size(), 1u);
  EXPECT_EQ(transport_.pokes[0].peer.name, kSource);
  EXPECT_FALSE(replicator_->StatusOf("c.example")->poke_pending);
}

TEST_F(ReplicatorTest, LongPollsAreCappedAndPeersComeAndGo) {
  ReplicationOptions options = Options();
  options.max_long_polls = 1;
  Make(options);
  replicator_->SetPeers({{kSource, "http://a.example", 0}, {"c.example", "http://c.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 2u);
  EXPECT_EQ(transport_.pulls[0].query.wait_seconds + transport_.pulls[1].query.wait_seconds, 10);
  EXPECT_EQ(replicator_->long_polls(), 1u);

  // c leaves while its pull is in flight: the pull ends and nothing follows.
  const bool c_first = transport_.pulls[0].peer.name == "c.example";
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  auto empty = a_.records->Changes(1, "", 4, 1 << 20);
  if (!c_first) std::swap(transport_.pulls[0], transport_.pulls[1]);
  transport_.Answer({PullResult::Outcome::kPage, *empty, "", 0});
  scheduler_.Advance(120000);
  EXPECT_EQ(transport_.pulls.size(), 1u);  // a's
  EXPECT_EQ(transport_.pulls[0].peer.name, kSource);
  EXPECT_FALSE(replicator_->StatusOf("c.example")->enabled);
  EXPECT_FALSE(replicator_->OnPoke("c.example"));

  // It comes back with a new address and is pulled at once.
  replicator_->SetPeers({{kSource, "http://a.example", 0}, {"c.example", "http://c2.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 2u);
  EXPECT_EQ(transport_.pulls[1].peer.base_url, "http://c2.example");
}

TEST_F(ReplicatorTest, AfterStopNothingStarts) {
  Make(Options());
  replicator_->SetPeers({{kSource, "http://a.example", 0}});
  scheduler_.RunReady();
  ASSERT_EQ(transport_.pulls.size(), 1u);
  replicator_->Stop();
  transport_.Fail();
  replicator_->OnLocalCommit();
  EXPECT_FALSE(replicator_->OnPoke(kSource));
  scheduler_.Advance(1000000);
  EXPECT_TRUE(transport_.pulls.empty());
  EXPECT_TRUE(transport_.pokes.empty());
  EXPECT_TRUE(events_.failures.empty());
}

}  // namespace
}  // namespace backpack::federation
