#include "protocol/data_integrity.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "protocol/did.h"
#include "protocol/jws.h"
#include "tests/support/data_integrity_signer.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15

class DataIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    auto multikey = Ed25519Multikey(key_.public_key());
    ASSERT_TRUE(multikey.ok());
    did_ = "did:key:" + *multikey;
    resolved_ = {did_ + "#" + *multikey, did_, "Multikey", key_.public_key()};
    options_.now = kNow;
  }

  Json Credential(Json context = Json::array({"https://www.w3.org/ns/credentials/v2",
                                              "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"})) const {
    return {
        {"@context", std::move(context)},
        {"id", "urn:uuid:2f4b3a4e-5d1c-4a0e-9b6f-0c7d8e9f1a2b"},
        {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
        {"issuer", {{"id", did_}, {"type", {"Profile"}}, {"name", "Example University"}}},
        {"validFrom", "2026-01-01T00:00:00Z"},
        {"name", "Teamwork"},
        {"credentialSubject",
         {{"type", {"AchievementSubject"}},
          {"achievement",
           {{"id", "https://example.edu/achievements/teamwork"},
            {"type", {"Achievement"}},
            {"name", "Teamwork"},
            {"description", "Works well with others."},
            {"criteria", {{"narrative", "Completed the course."}}}}}}},
    };
  }

  Json ProofOptions(const std::string& type = "DataIntegrityProof") const {
    Json proof = {{"type", type},
                  {"created", "2026-01-02T03:04:05Z"},
                  {"verificationMethod", resolved_.id},
                  {"proofPurpose", "assertionMethod"}};
    if (type == "DataIntegrityProof") proof["cryptosuite"] = "eddsa-rdfc-2022";
    return proof;
  }

  // Signs `credential` with `proof` (its options) and attaches the proof.
  Json Sign(Json credential, Json proof, const DataIntegrityOptions& options = {}) const {
    auto signed_credential = testing::SignDataIntegrity(credential, std::move(proof), key_, options);
    EXPECT_TRUE(signed_credential.ok()) << signed_credential.status().ToString();
    return signed_credential.ok() ? std::move(signed_credential).value() : credential;
  }

  Status Verify(const Json& credential, const ResolvedKey& key) const {
    return VerifyDataIntegrityProof(credential, credential["proof"], key, options_);
  }
  Status Verify(const Json& credential) const { return Verify(credential, resolved_); }

  PrivateKey key_ = PrivateKey::Generate(KeyType::kEd25519).value();
  std::string did_;
  ResolvedKey resolved_{"", "", "", key_.public_key()};
  DataIntegrityOptions options_;
};

TEST_F(DataIntegrity, EddsaRdfc2022Verifies) {
  const Json signed_credential = Sign(Credential(), ProofOptions());
  EXPECT_TRUE(Verify(signed_credential).ok()) << Verify(signed_credential).ToString();
  // The hook says the same.
  const DataIntegrityCheck hook = MakeDataIntegrityCheck(options_);
  EXPECT_TRUE(hook(signed_credential, signed_credential["proof"], resolved_).ok());
}

TEST_F(DataIntegrity, Ed25519Signature2020Verifies) {
  const Json credential = Credential({"https://www.w3.org/ns/credentials/v2",
                                      "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
                                      "https://w3id.org/security/suites/ed25519-2020/v1"});
  const Json signed_credential = Sign(credential, ProofOptions("Ed25519Signature2020"));
  EXPECT_TRUE(Verify(signed_credential).ok()) << Verify(signed_credential).ToString();
  Json tampered = signed_credential;
  tampered["name"] = "Leadership";
  EXPECT_EQ(Verify(tampered).message(), "signature does not verify");
}

TEST_F(DataIntegrity, ProofInAProofSetVerifies) {
  Json signed_credential = Sign(Credential(), ProofOptions());
  Json other = ProofOptions("Ed25519Signature2020");
  other["proofValue"] = "z1111";
  signed_credential["proof"] = Json::array({other, signed_credential["proof"]});
  EXPECT_TRUE(VerifyDataIntegrityProof(signed_credential, signed_credential["proof"][1], resolved_, options_).ok());
}

TEST_F(DataIntegrity, TamperedFieldFails) {
  Json signed_credential = Sign(Credential(), ProofOptions());
  signed_credential["credentialSubject"]["achievement"]["name"] = "Leadership";
  const Status status = Verify(signed_credential);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "signature does not verify");
}

TEST_F(DataIntegrity, TamperedCreatedFails) {
  Json signed_credential = Sign(Credential(), ProofOptions());
  signed_credential["proof"]["created"] = "2026-01-02T03:04:06Z";
  EXPECT_EQ(Verify(signed_credential).message(), "signature does not verify");
}

TEST_F(DataIntegrity, WrongKeyFails) {
  const Json signed_credential = Sign(Credential(), ProofOptions());
  auto other = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(other.ok());
  ResolvedKey wrong = resolved_;
  wrong.key = other->public_key();
  EXPECT_EQ(Verify(signed_credential, wrong).message(), "signature does not verify");
}

TEST_F(DataIntegrity, NonEd25519KeyIsMalformed) {
  const Json signed_credential = Sign(Credential(), ProofOptions());
  auto ec = PrivateKey::Generate(KeyType::kEcP256);
  ASSERT_TRUE(ec.ok());
  ResolvedKey wrong = resolved_;
  wrong.key = ec->public_key();
  const Status status = Verify(signed_credential, wrong);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(status.message().starts_with("malformed proof: ")) << status.ToString();
}

TEST_F(DataIntegrity, UnsupportedSuiteIsNotChecked) {
  Json signed_credential = Sign(Credential(), ProofOptions());
  signed_credential["proof"]["cryptosuite"] = "eddsa-jcs-2022";
  Status status = Verify(signed_credential);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "cryptosuite \"eddsa-jcs-2022\" is not supported");
  signed_credential["proof"] = ProofOptions("Ed25519Signature2018");
  EXPECT_EQ(Verify(signed_credential).code(), StatusCode::kFailedPrecondition);
}

TEST_F(DataIntegrity, UndefinedTermIsRefusedInSafeMode) {
  Json signed_credential = Sign(Credential(), ProofOptions());
  // Not covered by any context: expansion would drop it, so a signature
  // could not protect it.
  signed_credential["undefinedTerm"] = "rides along";
  Status status = Verify(signed_credential);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("safe mode"), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find("undefinedTerm"), std::string::npos) << status.ToString();
  // Signing such a document is refused as well.
  EXPECT_FALSE(DataIntegrityHashData(signed_credential, ProofOptions()).ok());
}

TEST_F(DataIntegrity, ProofMembersAreChecked) {
  const Json signed_credential = Sign(Credential(), ProofOptions());
  auto with = [&](const char* name, Json value) {
    Json copy = signed_credential;
    if (value.is_null()) {
      copy["proof"].erase(name);
    } else {
      copy["proof"][name] = std::move(value);
    }
    return Verify(copy);
  };
  for (const Status& status :
       {with("proofPurpose", "authentication"), with("proofValue", nullptr), with("proofValue", "uAAAA"),
        with("proofValue", "z3yZe7d"), with("created", "yesterday"), with("created", "2028-01-01T00:00:00Z"),
        with("expires", "2026-06-01T00:00:00Z"), with("verificationMethod", nullptr)}) {
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(status.message().starts_with("malformed proof: ")) << status.ToString();
  }
}

TEST_F(DataIntegrity, ProofContextMustPrefixTheDocuments) {
  Json credential = Credential();
  Json proof = ProofOptions();
  proof["proofValue"] = "z" + Base58BtcEncode(std::string(64, '\x01'));
  proof["@context"] = Json::array({"https://www.w3.org/ns/credentials/v2"});
  credential["proof"] = proof;
  // The proof's @context then stands for the document's, so the Open Badges
  // terms are undefined: refused in safe mode.
  EXPECT_NE(Verify(credential).message().find("safe mode"), std::string::npos) << Verify(credential).ToString();
  credential["proof"]["@context"] = Json::array({"https://www.w3.org/2018/credentials/v1"});
  EXPECT_EQ(Verify(credential).message(), "malformed proof: the document's @context does not start with the proof's");
}

TEST_F(DataIntegrity, LegacyEscapingIsRetried) {
  Json credential = Credential();
  credential["name"] = "Team\twork";  // TAB: written raw by URDNA2015, escaped by RDFC-1.0
  DataIntegrityOptions legacy;
  legacy.canon.legacy_urdna2015_escaping = true;
  const Json legacy_signed = Sign(credential, ProofOptions(), legacy);
  EXPECT_TRUE(Verify(legacy_signed).ok()) << Verify(legacy_signed).ToString();
  const Json rdfc_signed = Sign(credential, ProofOptions());
  EXPECT_TRUE(Verify(rdfc_signed).ok());
  // The two forms differ for this document.
  auto legacy_hash = DataIntegrityHashData(credential, ProofOptions(), legacy);
  auto rdfc_hash = DataIntegrityHashData(credential, ProofOptions());
  ASSERT_TRUE(legacy_hash.ok() && rdfc_hash.ok());
  EXPECT_NE(*legacy_hash, *rdfc_hash);
}

TEST_F(DataIntegrity, HookFeedsCheckCredential) {
  const Json signed_credential = Sign(Credential(), ProofOptions());
  ParsedCredential parsed = ParseCredential(signed_credential.dump());
  CredentialCheckOptions options;
  options.now = kNow;
  options.check_recipient = false;
  options.data_integrity_check = MakeDataIntegrityCheck(options_);
  CredentialCheckResult result = CheckCredential(parsed, {}, options);
  ASSERT_EQ(result.proofs.size(), 1u);
  EXPECT_EQ(result.proofs[0].outcome, ProofOutcome::kVerified) << result.proofs[0].message;

  Json tampered = signed_credential;
  tampered["name"] = "Leadership";
  result = CheckCredential(ParseCredential(tampered.dump()), {}, options);
  ASSERT_EQ(result.proofs.size(), 1u);
  EXPECT_EQ(result.proofs[0].outcome, ProofOutcome::kSignatureInvalid);
}

}  // namespace
}  // namespace backpack::protocol
