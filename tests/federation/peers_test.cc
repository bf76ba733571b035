#include "federation/peers.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "storage/store.h"

namespace backpack::federation {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;

class PeersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/peers_test.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    storage::StoreOptions options;
    options.path = dir_ + "/db";
    auto store = storage::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    Reset({});
  }
  void TearDown() override {
    table_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A table over the same store with another policy: a restart with a new
  // configuration.
  void Reset(PeerPolicy policy) {
    policy.self = "self.example";
    table_ = std::make_unique<PeerTable>(*store_, policy);
  }

  static PeerPolicy Allowlist() {
    PeerPolicy policy;
    policy.open = false;
    return policy;
  }
  static PeerPolicy Blocking(std::string name) {
    PeerPolicy policy;
    policy.blocked = {std::move(name)};
    return policy;
  }
  static PeerPolicy AtMost(size_t peers) {
    PeerPolicy policy;
    policy.max_peers = peers;
    return policy;
  }

  static Handshake From(std::string node, std::string base_url = "") {
    Handshake h;
    h.node = node;
    h.base_url = base_url.empty() ? "https://" + node : base_url;
    h.capabilities = {"peer/1"};
    return h;
  }
  static Handshake Answer(std::string node, std::string state) {
    Handshake h = From(std::move(node));
    h.state = std::move(state);
    return h;
  }

  PeerRecord Stored(const std::string& name) {
    auto record = table_->Get(name);
    EXPECT_TRUE(record.ok());
    EXPECT_TRUE(record.ok() && record->has_value()) << name;
    return record.ok() && record->has_value() ? **record : PeerRecord{};
  }

  std::string dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<PeerTable> table_;
};

TEST_F(PeersTest, OpenModeActivatesAnUnknownNode) {
  auto record = table_->OnHandshake(From("a.example"), kNow);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->state, PeerState::kActive);
  EXPECT_EQ(record->origin, "inbound");
  EXPECT_TRUE(record->approved);
  EXPECT_EQ(record->remote_state, "active");
  EXPECT_EQ(record->base_url, "https://a.example");
  EXPECT_EQ(record->capabilities, std::vector<std::string>{"peer/1"});
  EXPECT_EQ(record->since, kNow);
  EXPECT_EQ(record->last_seen, kNow);
  EXPECT_EQ(Stored("a.example").state, PeerState::kActive);  // durable
}

TEST_F(PeersTest, AllowlistKeepsAnUnknownNodePendingUntilApproved) {
  Reset(Allowlist());
  auto record = table_->OnHandshake(From("a.example"), kNow);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, PeerState::kPending);
  EXPECT_FALSE(record->approved);
  // Handshaking again changes nothing.
  EXPECT_EQ(table_->OnHandshake(From("a.example"), kNow + 5)->state, PeerState::kPending);

  auto approved = table_->Approve("a.example", kNow + 10);
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(approved->state, PeerState::kActive);  // it handshook: it accepts us
  EXPECT_EQ(approved->since, kNow + 10);
  EXPECT_EQ(approved->next_attempt, kNow + 10);  // tell it with a handshake
  EXPECT_EQ(table_->OnHandshake(From("a.example"), kNow + 20)->state, PeerState::kActive);

  EXPECT_EQ(table_->Approve("unknown.example", kNow).status().code(), StatusCode::kNotFound);
}

TEST_F(PeersTest, BlockRefusesAndUnblockRestores) {
  ASSERT_TRUE(table_->OnHandshake(From("a.example"), kNow).ok());
  auto blocked = table_->Block("a.example", kNow + 1);
  ASSERT_TRUE(blocked.ok());
  EXPECT_EQ(blocked->state, PeerState::kBlocked);
  EXPECT_EQ(blocked->since, kNow + 1);
  auto refused = table_->OnHandshake(From("a.example"), kNow + 2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(refused.status().message().starts_with("blocked: ")) << refused.status().message();
  EXPECT_EQ(table_->Approve("a.example", kNow).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(table_->Add("https://a.example", kNow).status().code(), StatusCode::kFailedPrecondition);

  auto unblocked = table_->Unblock("a.example", kNow + 3);
  ASSERT_TRUE(unblocked.ok());
  EXPECT_EQ(unblocked->state, PeerState::kActive);  // approved, and it accepted us before
  EXPECT_EQ(unblocked->next_attempt, kNow + 3);
  EXPECT_EQ(table_->OnHandshake(From("a.example"), kNow + 4)->state, PeerState::kActive);

  // A node can be blocked before it ever calls.
  auto early = table_->Block("evil.example", kNow);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->state, PeerState::kBlocked);
  EXPECT_EQ(early->base_url, "");
  EXPECT_EQ(table_->OnHandshake(From("evil.example"), kNow).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(table_->Block("Not A Name", kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(table_->Unblock("nobody.example", kNow).status().code(), StatusCode::kNotFound);
}

TEST_F(PeersTest, ConfigBlockedNodesAreRefusedAndCannotBeUnblocked) {
  Reset(Blocking("evil.example"));
  ASSERT_TRUE(table_->ApplyConfig({}, kNow).ok());
  EXPECT_EQ(Stored("evil.example").state, PeerState::kBlocked);
  EXPECT_TRUE(table_->BlockedByConfig("evil.example"));
  EXPECT_EQ(table_->OnHandshake(From("evil.example"), kNow).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(table_->Unblock("evil.example", kNow).status().code(), StatusCode::kFailedPrecondition);

  // Removing it from the configuration lifts the block at the next start.
  Reset({});
  ASSERT_TRUE(table_->ApplyConfig({}, kNow + 1).ok());
  EXPECT_EQ(Stored("evil.example").state, PeerState::kPending);
  EXPECT_EQ(table_->OnHandshake(From("evil.example"), kNow + 2)->state, PeerState::kActive);
}

TEST_F(PeersTest, ConfiguredPeersAreApprovedAndDueAtStart) {
  Reset(Allowlist());
  ASSERT_TRUE(table_->ApplyConfig({"http://127.0.0.1:8081/", "https://b.example"}, kNow).ok());
  PeerRecord a = Stored("127.0.0.1:8081");
  EXPECT_EQ(a.base_url, "http://127.0.0.1:8081");
  EXPECT_EQ(a.origin, "config");
  EXPECT_TRUE(a.approved);
  EXPECT_EQ(a.state, PeerState::kPending);  // no answer yet
  auto due = table_->Due(kNow);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(due->size(), 2u);
  EXPECT_TRUE(table_->Due(kNow - 1)->empty());
  EXPECT_EQ(**table_->NextAttempt(), kNow);

  // The answer decides: active, or pending while the other operator decides.
  auto active = table_->OnAnswer("127.0.0.1:8081", Answer("127.0.0.1:8081", "active"), kNow + 1);
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->state, PeerState::kActive);
  EXPECT_EQ(active->next_attempt, 0);
  auto pending = table_->OnAnswer("b.example", Answer("b.example", "pending"), kNow + 1);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->state, PeerState::kPending);
  EXPECT_EQ(pending->remote_state, "pending");
  EXPECT_EQ(pending->next_attempt, kNow + 1 + 300);
  // In allowlist mode a configured peer's own handshake makes it active.
  EXPECT_EQ(table_->OnHandshake(From("b.example"), kNow + 2)->state, PeerState::kActive);

  EXPECT_EQ(table_->ApplyConfig({"https://self.example"}, kNow).code(), StatusCode::kInvalidArgument);
}

TEST_F(PeersTest, FailuresBackOffAndSuspend) {
  ASSERT_TRUE(table_->ApplyConfig({"https://b.example"}, kNow).ok());
  ASSERT_TRUE(table_->OnAnswer("b.example", Answer("b.example", "active"), kNow).ok());
  PeerPolicy policy;
  policy.retry_min_seconds = 1;
  policy.retry_max_seconds = 300;
  EXPECT_EQ(BackoffSeconds(1, policy), 1);
  EXPECT_EQ(BackoffSeconds(2, policy), 2);
  EXPECT_EQ(BackoffSeconds(5, policy), 16);
  EXPECT_EQ(BackoffSeconds(20, policy), 300);
  EXPECT_EQ(BackoffSeconds(1000, policy), 300);

  for (int i = 1; i <= 4; ++i) {
    auto failed = table_->RecordFailure("b.example", "fetch: connection refused", "", kNow + i);
    ASSERT_TRUE(failed.ok());
    EXPECT_EQ(failed->state, PeerState::kActive) << i;
    EXPECT_EQ(failed->failures, i);
    EXPECT_EQ(failed->next_attempt, kNow + i + BackoffSeconds(i, policy));
  }
  auto suspended = table_->RecordFailure("b.example", "fetch: connection refused", "", kNow + 5);
  ASSERT_TRUE(suspended.ok());
  EXPECT_EQ(suspended->state, PeerState::kSuspended);
  EXPECT_EQ(suspended->since, kNow + 5);
  EXPECT_EQ(suspended->last_error, "fetch: connection refused");

  auto recovered = table_->OnAnswer("b.example", Answer("b.example", "active"), kNow + 100);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->state, PeerState::kActive);
  EXPECT_EQ(recovered->failures, 0);
  EXPECT_EQ(recovered->last_error, "");

  // A 403 from the peer: it blocked us.
  auto refused = table_->RecordFailure("b.example", "answered 403 blocked", "blocked", kNow + 200);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->remote_state, "blocked");
  EXPECT_EQ(refused->state, PeerState::kPending);
  EXPECT_EQ(table_->RecordFailure("nobody.example", "x", "", kNow).status().code(), StatusCode::kNotFound);
}

TEST_F(PeersTest, OperatorAddApprovesAndSchedules) {
  Reset(Allowlist());
  auto added = table_->Add("https://C.example:443/", kNow);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->name, "c.example");
  EXPECT_EQ(added->base_url, "https://c.example");
  EXPECT_EQ(added->origin, "operator");
  EXPECT_TRUE(added->approved);
  EXPECT_EQ(added->next_attempt, kNow);
  EXPECT_EQ(table_->Add("ftp://c.example", kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(table_->Add("https://self.example", kNow).status().code(), StatusCode::kInvalidArgument);
  // The operator's URL stays when the peer calls.
  ASSERT_TRUE(table_->OnHandshake(From("c.example", "http://c.example/other"), kNow).ok());
  EXPECT_EQ(Stored("c.example").base_url, "https://c.example");
}

TEST_F(PeersTest, RefusesItselfAndLimitsUnknownNodes) {
  EXPECT_EQ(table_->OnHandshake(From("self.example"), kNow).status().code(), StatusCode::kInvalidArgument);
  Reset(AtMost(2));
  ASSERT_TRUE(table_->OnHandshake(From("a.example"), kNow).ok());
  ASSERT_TRUE(table_->OnHandshake(From("b.example"), kNow).ok());
  EXPECT_EQ(table_->OnHandshake(From("c.example"), kNow).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(table_->OnHandshake(From("a.example"), kNow + 1).ok());  // known nodes still come in
  EXPECT_TRUE(table_->Block("c.example", kNow).ok());                 // blocking is always possible
}

TEST_F(PeersTest, RecordsRoundTripAndKeepTheCursor) {
  ASSERT_TRUE(table_->OnHandshake(From("a.example"), kNow).ok());
  storage::WriteBatch batch;
  batch.Put(storage::Family::kMeta, "peers_test_marker", "1");
  auto updated = table_->Update(
      "a.example", kNow + 1,
      [](PeerRecord& record) {
        record.cursor = {{"log", "L1"}, {"next", 42}};
        return Status::Ok();
      },
      std::move(batch));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(Stored("a.example").cursor["next"], 42);
  EXPECT_EQ(**store_->Get(storage::Family::kMeta, "peers_test_marker"), "1");  // written in the same batch
  // Protocol events leave the cursor alone.
  ASSERT_TRUE(table_->OnHandshake(From("a.example"), kNow + 2).ok());
  EXPECT_EQ(Stored("a.example").cursor["log"], "L1");

  auto refused = table_->Update("a.example", kNow, [](PeerRecord&) { return Aborted("no"); });
  EXPECT_EQ(refused.status().code(), StatusCode::kAborted);
  EXPECT_EQ(table_->Update("nobody.example", kNow, [](PeerRecord&) { return Status::Ok(); }).status().code(),
            StatusCode::kNotFound);

  const json stored = ToJson(Stored("a.example"));
  for (const char* member : {"name", "base_url", "state", "since", "capabilities", "failures", "next_attempt",
                             "last_error", "origin", "approved", "blocked", "remote_state", "created", "last_seen",
                             "cursor"}) {
    EXPECT_TRUE(stored.contains(member)) << member;
  }
  auto list = table_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "a.example");
}

TEST(Handshake, ParsesAndChecks) {
  auto h = ParseHandshake(R"({"node":"a.example","base_url":"https://A.example/","capabilities":["peer/1"],"x":1})",
                          false);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->node, "a.example");
  EXPECT_EQ(h->base_url, "https://a.example");
  EXPECT_EQ(h->capabilities, std::vector<std::string>{"peer/1"});

  const char* bad[] = {
      R"([])",
      R"({"base_url":"https://a.example"})",
      R"({"node":"A.example","base_url":"https://a.example"})",
      R"({"node":"a.example","base_url":"https://b.example"})",
      R"({"node":"a.example","base_url":"https://a.example:8443"})",
      R"({"node":"a.example","base_url":"ftp://a.example"})",
      R"({"node":"a.example","base_url":"https://a.example","capabilities":"peer/1"})",
      R"({"node":"a.example","base_url":"https://a.example","capabilities":["Peer"]})",
      R"({"node":"a.example","base_url":"https://a.example","capabilities":["p","p"]})",
  };
  for (const char* body : bad) EXPECT_EQ(ParseHandshake(body, false).status().code(), StatusCode::kInvalidArgument) << body;
  EXPECT_FALSE(ParseHandshake(std::string(kMaxHandshakeBytes + 1, ' '), false).ok());
  std::string many = R"({"node":"a.example","base_url":"https://a.example","capabilities":[)";
  for (size_t i = 0; i <= kMaxCapabilities; ++i) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  many += "]}";
  EXPECT_FALSE(ParseHandshake(many, false).ok());

  EXPECT_FALSE(ParseHandshake(R"({"node":"a.example","base_url":"https://a.example"})", true).ok());  // no state
  EXPECT_FALSE(ParseHandshake(R"({"node":"a.example","base_url":"https://a.example","state":"blocked"})", true).ok());
  auto answer = ParseHandshake(R"({"node":"a.example","base_url":"https://a.example","state":"pending"})", true);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->state, "pending");
  auto round = ParseHandshake(ToJson(*answer), true);
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->state, "pending");
}

}  // namespace
}  // namespace backpack::federation
