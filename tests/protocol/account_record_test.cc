// Signed account records (protocol/account_record.h): account ids bound to
// their genesis record, envelopes that verify only with the account key and
// refuse every alteration, and the record rules of each type.
#include "protocol/account_record.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/encoding.h"
#include "protocol/jws.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr int64_t kNowMs = 1'800'000'000'000;

class AccountRecordTest : public ::testing::Test {
 protected:
  Json Home(const std::string& node = "a.example", RecordVersion v = {kNowMs, 0}) const {
    return {{"type", "home"}, {"account", id_}, {"version", v.ToString()}, {"node", node}, {"url", "https://" + node}};
  }
  Json Directory(bool discoverable = true) const {
    return {{"type", "directory"},
            {"account", id_},
            {"version", RecordVersion{kNowMs, 1}.ToString()},
            {"email_sha256", EmailHash("Ann@Example.org")},
            {"discoverable", discoverable}};
  }
  std::string Sign(const Json& record, bool with_genesis = false) const {
    auto signed_record = SignRecord(record, key_, with_genesis ? &genesis_ : nullptr);
    EXPECT_TRUE(signed_record.ok()) << signed_record.status().ToString();
    return signed_record.ok() ? *signed_record : std::string();
  }
  Status Check(const std::string& text) const {
    auto envelope = ParseEnvelope(text);
    if (!envelope.ok()) return envelope.status();
    auto key = GenesisKey(genesis_, envelope->account);
    if (!key.ok()) return key.status();
    return VerifyEnvelope(*envelope, *key, kNowMs);
  }

  PrivateKey key_ = PrivateKey::Generate(KeyType::kEd25519).value();
  Json genesis_ = MakeGenesis(key_.public_key(), 1'800'000'000, "n0nce");
  std::string id_ = AccountIdOf(genesis_);
};

TEST(RecordVersion, ParsesFormatsOrdersAndAdvances) {
  const auto v = RecordVersion::Parse("1800000000000.7");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->ms, 1800000000000);
  EXPECT_EQ(v->counter, 7u);
  EXPECT_EQ(v->ToString(), "1800000000000.7");
  EXPECT_LT((RecordVersion{5, 9}), (RecordVersion{6, 0}));
  EXPECT_LT((RecordVersion{5, 1}), (RecordVersion{5, 2}));
  for (const char* bad : {"", "1", "1.", ".1", "01.1", "1.01", "-1.0", "1.0.0", "1e3.0", "9007199254740993.0", "1. 2"}) {
    EXPECT_FALSE(RecordVersion::Parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(NextVersion({100, 3}, 200), (RecordVersion{200, 0}));
  EXPECT_EQ(NextVersion({100, 3}, 100), (RecordVersion{100, 4}));
  EXPECT_EQ(NextVersion({100, 3}, 50), (RecordVersion{100, 4}));  // the clock went back: still increasing
}

TEST_F(AccountRecordTest, TheAccountIdIsBoundToTheGenesisRecord) {
  EXPECT_EQ(id_.size(), 33u);
  EXPECT_EQ(id_[0], 'a');
  EXPECT_EQ(AccountIdOf(genesis_), id_);  // deterministic
  ASSERT_TRUE(GenesisKey(genesis_, id_).ok());
  EXPECT_EQ(GenesisKey(genesis_, id_)->ToJwk(), key_.public_key().ToJwk());

  // Another key, nonce or time is another account.
  Json other = genesis_;
  other["nonce"] = "other";
  EXPECT_NE(AccountIdOf(other), id_);
  EXPECT_FALSE(GenesisKey(other, id_).ok());
  // A genesis naming another key cannot claim this id.
  Json swapped = genesis_;
  swapped["key"] = MakeGenesis(PrivateKey::Generate(KeyType::kEd25519)->public_key(), 1, "x")["key"];
  EXPECT_FALSE(GenesisKey(swapped, id_).ok());
  Json extra = genesis_;
  extra["more"] = 1;
  EXPECT_FALSE(GenesisKey(extra, AccountIdOf(extra)).ok());
}

TEST_F(AccountRecordTest, SignedRecordsVerifyWithTheAccountKey) {
  const std::string home = Sign(Home(), /*with_genesis=*/true);
  EXPECT_TRUE(Check(home).ok()) << Check(home).ToString();
  auto parsed = ParseEnvelope(home);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->type, RecordType::kHome);
  EXPECT_EQ(parsed->key, "home");
  EXPECT_EQ(parsed->account, id_);
  EXPECT_EQ(parsed->genesis, genesis_);

  const std::string directory = Sign(Directory());
  ASSERT_TRUE(Check(directory).ok());
  EXPECT_EQ(ParseEnvelope(directory)->key, "directory/" + EmailHash("ann@example.org"));
}

TEST_F(AccountRecordTest, EveryAlterationIsRefused) {
  const Json envelope = Json::parse(Sign(Home()));
  // Another node named home, another version, another account.
  for (const auto& [member, value] : {std::pair<std::string, Json>{"node", "evil.example"},
                                      {"version", RecordVersion{kNowMs + 1, 0}.ToString()}}) {
    Json altered = envelope;
    altered["record"][member] = value;
    if (member == "node") altered["record"]["url"] = "https://evil.example";
    const Status s = Check(altered.dump());
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << member << ": " << s.ToString();
  }
  // Signed by another key: a peer forging a record for an account it does not hold.
  const PrivateKey forger = PrivateKey::Generate(KeyType::kEd25519).value();
  auto forged = SignRecord(Home("evil.example"), forger);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(Check(*forged).code(), StatusCode::kPermissionDenied);
  // A signature of the wrong length, an unknown algorithm, a foreign key id.
  Json short_sig = envelope;
  short_sig["sig"]["value"] = Base64UrlEncode("short");
  EXPECT_EQ(Check(short_sig.dump()).code(), StatusCode::kInvalidArgument);
  Json alg = envelope;
  alg["sig"]["alg"] = "rs256";
  EXPECT_EQ(Check(alg.dump()).code(), StatusCode::kInvalidArgument);
  Json key_id = envelope;
  key_id["sig"]["key"] = "aother#k1";
  EXPECT_EQ(Check(key_id.dump()).code(), StatusCode::kInvalidArgument);
}

TEST_F(AccountRecordTest, FarFutureVersionsAreRefused) {
  const std::string soon = Sign(Home("a.example", {kNowMs + 60'000, 0}));
  EXPECT_TRUE(Check(soon).ok());
  const std::string far = Sign(Home("a.example", {kNowMs + 3'600'000, 0}));
  const Status s = Check(far);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("future"), std::string::npos);
}

TEST_F(AccountRecordTest, RecordRulesPerType) {
  const std::string v = RecordVersion{kNowMs, 2}.ToString();
  const Json good[] = {
      {{"type", "mirrors"}, {"account", id_}, {"version", v}, {"nodes", {"b.example", "127.0.0.1:8081"}}},
      {{"type", "badge"}, {"account", id_}, {"version", v}, {"badge", "0123abcd"}, {"original", Base64UrlEncode("{}")}},
      {{"type", "tombstone"}, {"account", id_}, {"version", v}, {"target", "badge/0123abcd"}},
  };
  const char* keys[] = {"mirrors", "badge/0123abcd", "badge/0123abcd"};
  for (size_t i = 0; i < std::size(good); ++i) {
    const std::string text = Sign(good[i]);
    ASSERT_TRUE(Check(text).ok()) << good[i].dump();
    EXPECT_EQ(ParseEnvelope(text)->key, keys[i]);
  }
  const Json bad[] = {
      {{"type", "unknown"}, {"account", id_}, {"version", v}},
      {{"type", "home"}, {"account", "not-an-id"}, {"version", v}, {"node", "a"}, {"url", "https://a"}},
      {{"type", "home"}, {"account", id_}, {"version", "yesterday"}, {"node", "a"}, {"url", "https://a"}},
      {{"type", "home"}, {"account", id_}, {"version", v}, {"node", "a/b"}, {"url", "https://a/b"}},
      {{"type", "home"}, {"account", id_}, {"version", v}, {"node", "a.example"}},
      {{"type", "home"}, {"account", id_}, {"version", v}, {"node", "a.example"}, {"url", "https://b.example"}},
      {{"type", "home"}, {"account", id_}, {"version", v}, {"node", "a.example"}, {"url", "ftp://a.example"}},
      {{"type", "directory"}, {"account", id_}, {"version", v}, {"email_sha256", "ann@example.org"}, {"discoverable", true}},
      {{"type", "directory"}, {"account", id_}, {"version", v}, {"email_sha256", EmailHash("a")}},
      {{"type", "mirrors"}, {"account", id_}, {"version", v}, {"nodes", {1}}},
      {{"type", "badge"}, {"account", id_}, {"version", v}, {"badge", "x"}, {"original", "!!"}},
      {{"type", "tombstone"}, {"account", id_}, {"version", v}, {"target", "home"}},
  };
  for (const Json& record : bad) {
    EXPECT_FALSE(SignRecord(record, key_).ok()) << record.dump();
    Json envelope = Json::parse(Sign(Home()));
    envelope["record"] = record;
    EXPECT_EQ(ParseEnvelope(envelope.dump()).status().code(), StatusCode::kInvalidArgument) << record.dump();
  }
  EXPECT_FALSE(ParseEnvelope("not json").ok());
  EXPECT_FALSE(ParseEnvelope(R"({"record":{},"sig":{},"extra":1})").ok());
  EXPECT_FALSE(ParseEnvelope(std::string(kMaxEnvelopeBytes + 1, ' ')).ok());
}

}  // namespace
}  // namespace backpack::protocol
