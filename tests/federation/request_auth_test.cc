#include "federation/request_auth.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "federation/node_keys.h"
#include "protocol/http_signature.h"

namespace backpack::federation {
namespace {

using nlohmann::json;

constexpr std::string_view kUs = "b.example";
constexpr std::string_view kPeer = "a.example";
constexpr int64_t kNow = 1'800'000'000;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/request_auth_test.XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A signed request as a peer sends it, kept alive for InboundRequest's views.
struct Sent {
  std::string method = "POST";
  std::string target_uri;
  std::string host;
  std::string body;
  OutboundSignature signature;

  InboundRequest View() const {
    return InboundRequest{method, target_uri, host, signature.signature_input, signature.signature,
                          signature.content_digest, body};
  }
};

class RequestAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys = NodeKeys::LoadOrCreate(KeysDirectory(peer_dir_.path()), kNow - 1000);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    peer_keys_.emplace(std::move(*keys));
    published_[std::string(kPeer)] = peer_keys_->KeysDocument(kPeer);
    MakeVerifier();
  }

  void MakeVerifier(RequestVerifierOptions options = {}) {
    options.node_name = std::string(kUs);
    verifier_ = std::make_unique<RequestVerifier>(
        options,
        [this](const std::string& url) -> Result<std::string> {
          std::lock_guard lock(mu_);
          ++fetches_;
          fetched_urls_.push_back(url);
          for (const auto& [node, doc] : published_) {
            if (url == "https://" + node + "/_federation/v1/keys") return doc;
          }
          return Unavailable("fetch: cannot resolve");
        },
        [this](std::string_view node) -> std::string {
          auto it = known_base_urls_.find(std::string(node));
          return it == known_base_urls_.end() ? std::string() : it->second;
        },
        [this] { return now_.load(); });
  }

  Sent Make(const NodeKey& key, std::string_view signer = kPeer, int64_t created = kNow, int64_t lifetime = 300,
            std::string nonce = "") {
    Sent sent;
    sent.target_uri = "https://" + std::string(kUs) + "/_federation/v1/peer";
    sent.host = std::string(kUs);
    sent.body = R"({"node":"a.example"})";
    if (nonce.empty()) nonce = "nonce-" + std::to_string(++nonce_counter_) + "-0123456789abcdef";
    auto signature = SignOutboundRequest({sent.method, sent.target_uri, sent.host, sent.body}, signer, key, created,
                                         lifetime, nonce);
    EXPECT_TRUE(signature.ok()) << signature.status().ToString();
    if (signature.ok()) sent.signature = std::move(*signature);
    return sent;
  }
  Sent Make() { return Make(peer_keys_->current()); }

  static ::testing::AssertionResult Refused(const Result<VerifiedRequest>& result, std::string_view fault,
                                            StatusCode code) {
    if (result.ok()) return ::testing::AssertionFailure() << "accepted";
    if (RequestAuthFault(result.status()) != fault || result.status().code() != code) {
      return ::testing::AssertionFailure() << "refused with " << result.status().ToString() << ", expected "
                                           << fault << " / " << StatusCodeName(code);
    }
    return ::testing::AssertionSuccess();
  }

  TempDir peer_dir_;
  std::optional<NodeKeys> peer_keys_;
  std::map<std::string, std::string> published_;        // node -> keys document
  std::map<std::string, std::string> known_base_urls_;  // node -> base URL
  std::unique_ptr<RequestVerifier> verifier_;
  std::atomic<int64_t> now_{kNow};
  std::mutex mu_;
  int fetches_ = 0;
  std::vector<std::string> fetched_urls_;
  int nonce_counter_ = 0;
};

TEST_F(RequestAuthTest, AcceptsAGoodRequest) {
  const Sent sent = Make();
  auto verified = verifier_->Verify(sent.View());
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->node, "a.example");
  EXPECT_EQ(verified->key_id, "a.example#k1");
  EXPECT_EQ(verified->created, kNow);
  EXPECT_EQ(verified->expires, kNow + 300);
  EXPECT_EQ(fetched_urls_, std::vector<std::string>{"https://a.example/_federation/v1/keys"});
}

TEST_F(RequestAuthTest, HostIsComparedNormalised) {
  Sent sent = Make();
  sent.host = "B.Example:443";  // same authority; the signature covered it normalised
  EXPECT_TRUE(verifier_->Verify(sent.View()).ok());
}

TEST_F(RequestAuthTest, CachesTheKeysDocument) {
  ASSERT_TRUE(verifier_->Verify(Make().View()).ok());
  ASSERT_TRUE(verifier_->Verify(Make().View()).ok());
  EXPECT_EQ(fetches_, 1);
  now_ += 301;  // past keys_ttl_seconds
  ASSERT_TRUE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View()).ok());
  EXPECT_EQ(fetches_, 2);
}

TEST_F(RequestAuthTest, RefusesAnUnsignedRequest) {
  Sent sent = Make();
  sent.signature.signature_input.clear();
  sent.signature.signature.clear();
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "unsigned", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, RefusesABadSignature) {
  // Signed by a key the node does not hold, under its keyid.
  auto forged = NodeKey{"k1", *protocol::PrivateKey::Generate(protocol::KeyType::kEd25519), kNow, std::nullopt};
  EXPECT_TRUE(Refused(verifier_->Verify(Make(forged).View()), "bad-signature", StatusCode::kUnauthenticated));
  // A genuine signature over another target.
  Sent moved = Make();
  moved.target_uri = "https://b.example/_federation/v1/other";
  EXPECT_TRUE(Refused(verifier_->Verify(moved.View()), "bad-signature", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, RefusesAReplayedNonce) {
  const Sent sent = Make();
  ASSERT_TRUE(verifier_->Verify(sent.View()).ok());
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "replayed", StatusCode::kUnauthenticated));
  now_ += 100;  // still within the signature's lifetime
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "replayed", StatusCode::kUnauthenticated));
  // The same nonce under a new signature is a replay too.
  const Sent again = Make(peer_keys_->current(), kPeer, now_, 300, "nonce-1-0123456789abcdef");
  EXPECT_TRUE(Refused(verifier_->Verify(again.View()), "replayed", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, ARefusedRequestDoesNotSpendItsNonce) {
  Sent sent = Make();
  const std::string body = sent.body;
  sent.body += " ";
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "digest-mismatch", StatusCode::kInvalidArgument));
  sent.body = body;
  EXPECT_TRUE(verifier_->Verify(sent.View()).ok());
}

TEST_F(RequestAuthTest, RefusesAnExpiredSignature) {
  const Sent sent = Make(peer_keys_->current(), kPeer, kNow - 400);
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "stale", StatusCode::kUnauthenticated));
  // Accepted when fresh, refused once it expires: the replay window closes.
  const Sent fresh = Make();
  ASSERT_TRUE(verifier_->Verify(fresh.View()).ok());
  now_ += 300;
  EXPECT_TRUE(Refused(verifier_->Verify(fresh.View()), "stale", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, RefusesAFutureCreated) {
  EXPECT_TRUE(Refused(verifier_->Verify(Make(peer_keys_->current(), kPeer, kNow + 61).View()), "future",
                      StatusCode::kUnauthenticated));
  EXPECT_TRUE(verifier_->Verify(Make(peer_keys_->current(), kPeer, kNow + 60).View()).ok());  // within the skew
}

TEST_F(RequestAuthTest, RefusesTooLongALifetime) {
  EXPECT_TRUE(Refused(verifier_->Verify(Make(peer_keys_->current(), kPeer, kNow, 301).View()), "lifetime",
                      StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, RefusesAWrongAuthority) {
  Sent sent;
  sent.target_uri = "https://c.example/_federation/v1/peer";
  sent.host = "c.example";
  auto signature = SignOutboundRequest({sent.method, sent.target_uri, sent.host, sent.body}, kPeer,
                                       peer_keys_->current(), kNow, 300, "0123456789abcdef0123");
  ASSERT_TRUE(signature.ok());
  sent.signature = *signature;
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "wrong-authority", StatusCode::kUnauthenticated));
  EXPECT_EQ(fetches_, 0) << "no key is fetched for a request meant for another node";
  // Signed for c.example, sent to us with our Host: the base no longer matches.
  sent.host = std::string(kUs);
  sent.target_uri = "https://b.example/_federation/v1/peer";
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "bad-signature", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, RefusesAnUnknownKey) {
  auto k9 = NodeKey{"k9", peer_keys_->current().key, kNow, std::nullopt};
  EXPECT_TRUE(Refused(verifier_->Verify(Make(k9).View()), "unknown-key", StatusCode::kUnauthenticated));
  // A keyid that names no node.
  Sent sent = Make(peer_keys_->current(), "not a node");
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "unknown-key", StatusCode::kUnauthenticated));
}

TEST_F(RequestAuthTest, UnknownKeyRefetchesAtMostOncePerInterval) {
  ASSERT_TRUE(verifier_->Verify(Make().View()).ok());
  EXPECT_EQ(fetches_, 1);
  // The peer rotates; its first request with k2 makes us fetch again...
  ASSERT_TRUE(peer_keys_->Rotate(kNow).ok());
  now_ += 31;
  published_[std::string(kPeer)] = peer_keys_->KeysDocument(kPeer);
  ASSERT_TRUE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View()).ok());
  EXPECT_EQ(fetches_, 2);
  // ...but made-up key ids do not make us fetch on every request.
  auto k9 = NodeKey{"k9", peer_keys_->current().key, now_, std::nullopt};
  EXPECT_TRUE(Refused(verifier_->Verify(Make(k9, kPeer, now_).View()), "unknown-key", StatusCode::kUnauthenticated));
  EXPECT_TRUE(Refused(verifier_->Verify(Make(k9, kPeer, now_).View()), "unknown-key", StatusCode::kUnauthenticated));
  EXPECT_EQ(fetches_, 2);
  now_ += 30;
  EXPECT_TRUE(Refused(verifier_->Verify(Make(k9, kPeer, now_).View()), "unknown-key", StatusCode::kUnauthenticated));
  EXPECT_EQ(fetches_, 3);
}

TEST_F(RequestAuthTest, RetiredKeySignsOnlyBeforeItsRetirement) {
  const NodeKey k1 = peer_keys_->current();
  ASSERT_TRUE(peer_keys_->Rotate(kNow).ok());
  published_[std::string(kPeer)] = peer_keys_->KeysDocument(kPeer);
  // Created before the retirement: accepted.
  ASSERT_TRUE(verifier_->Verify(Make(k1, kPeer, kNow - 10).View()).ok());
  // Created at or after it: refused.
  EXPECT_TRUE(Refused(verifier_->Verify(Make(k1, kPeer, kNow).View()), "retired-key", StatusCode::kUnauthenticated));
  now_ += 5;
  EXPECT_TRUE(
      Refused(verifier_->Verify(Make(k1, kPeer, now_).View()), "retired-key", StatusCode::kUnauthenticated));
  EXPECT_TRUE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View()).ok());
}

TEST_F(RequestAuthTest, RefusesADigestMismatch) {
  Sent sent = Make();
  sent.body = R"({"node":"evil.example"})";
  EXPECT_TRUE(Refused(verifier_->Verify(sent.View()), "digest-mismatch", StatusCode::kInvalidArgument));
}

TEST_F(RequestAuthTest, KeysUnavailableIsRetryLater) {
  published_.clear();
  EXPECT_TRUE(Refused(verifier_->Verify(Make().View()), "keys-unavailable", StatusCode::kUnavailable));
  EXPECT_TRUE(Refused(verifier_->Verify(Make().View()), "keys-unavailable", StatusCode::kUnavailable));
  EXPECT_EQ(fetches_, 1) << "a failed fetch is not repeated at once";
}

TEST_F(RequestAuthTest, KeysComeFromTheKnownBaseUrlOrTheHint) {
  published_.clear();
  VerifyOptions options;
  options.base_url_hint = "http://a.example:8080";  // another authority: not used
  EXPECT_FALSE(verifier_->Verify(Make().View(), options).ok());
  EXPECT_EQ(fetched_urls_.back(), "https://a.example/_federation/v1/keys");

  now_ += 31;
  options.base_url_hint = "http://a.example/";
  EXPECT_FALSE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View(), options).ok());
  EXPECT_EQ(fetched_urls_.back(), "http://a.example/_federation/v1/keys");

  now_ += 31;
  known_base_urls_[std::string(kPeer)] = "https://a.example/backpack";  // a known peer wins over the hint
  EXPECT_FALSE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View(), options).ok());
  EXPECT_EQ(fetched_urls_.back(), "https://a.example/backpack/_federation/v1/keys");
}

TEST_F(RequestAuthTest, AdmitRunsBeforeAnyKeyFetch) {
  VerifyOptions options;
  std::string asked;
  options.admit = [&asked](std::string_view node) {
    asked = std::string(node);
    return PermissionDenied("blocked: " + asked + " is blocked");
  };
  auto result = verifier_->Verify(Make().View(), options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(RequestAuthFault(result.status()), "blocked");
  EXPECT_EQ(asked, "a.example");
  EXPECT_EQ(fetches_, 0);
}

TEST_F(RequestAuthTest, NonceCacheIsBoundedAndFailsClosed) {
  RequestVerifierOptions options;
  options.max_nonces = 2;
  MakeVerifier(options);
  ASSERT_TRUE(verifier_->Verify(Make().View()).ok());
  ASSERT_TRUE(verifier_->Verify(Make().View()).ok());
  const Sent third = Make();
  EXPECT_TRUE(Refused(verifier_->Verify(third.View()), "busy", StatusCode::kUnavailable));
  // Once the first two have expired (plus the skew), there is room again.
  now_ += 300 + 60 + 1;
  EXPECT_TRUE(verifier_->Verify(Make(peer_keys_->current(), kPeer, now_).View()).ok());
}

TEST_F(RequestAuthTest, MalformedFieldsAre400) {
  Sent sent = Make();
  sent.signature.signature_input = "sig1=(";
  auto result = verifier_->Verify(sent.View());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(RequestAuthFault(result.status()), "malformed");
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
}

TEST(RequestAuthFault, NamesTheFault) {
  EXPECT_EQ(RequestAuthFault(Status::Ok()), "");
  EXPECT_EQ(RequestAuthFault(Unauthenticated("replayed: again")), "replayed");
  EXPECT_EQ(RequestAuthFault(InvalidArgument("digest-mismatch: x")), "digest-mismatch");
  EXPECT_EQ(RequestAuthFault(Internal("storage failed")), "internal");
  EXPECT_EQ(RequestAuthFault(Internal("The Thing: x")), "internal");
}

}  // namespace
}  // namespace backpack::federation
