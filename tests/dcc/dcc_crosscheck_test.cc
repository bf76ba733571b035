// Cross-check of eddsa-rdfc-2022 Data Integrity proofs between our code
// (protocol/data_integrity.h, protocol/credential.h) and the Digital
// Credentials Consortium's JavaScript libraries (@digitalcredentials/vc,
// data-integrity, eddsa-rdfc-2022-cryptosuite; tests/dcc/dcc.js):
//   * credentials DCC signs with a key made here verify with ours, through
//     VerifyDataIntegrityProof and through CheckCredential;
//   * credentials we sign verify with DCC's verifyCredential;
//   * a changed achievement name, or a changed proofValue, fails on both
//     sides, whoever signed; a term no context defines is refused by both
//     (JSON-LD safe mode);
//   * both sides sign the same bytes: Ed25519 being deterministic, our
//     signature over the same credential and proof options is DCC's.
// Node runs twice for the whole suite (one signing run, one verifying run),
// in SetUpTestSuite. Without node_modules (npm ci in tests/dcc) every test
// fails, saying so, as the bakery cross-check does.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "protocol/credential.h"
#include "protocol/data_integrity.h"
#include "protocol/did.h"
#include "protocol/jws.h"
#include "tests/dcc/dcc_runner.h"
#include "tests/dcc/sample_credentials.h"
#include "tests/support/data_integrity_signer.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;                      // 2027-01-15
constexpr const char* kDccCreated = "2026-06-01T12:00:00Z";  // proofs DCC makes
constexpr const char* kOurCreated = "2026-06-02T08:30:00Z";  // proofs we make

// A base58 proofValue with one character changed: same length and size, a
// different signature. A digit is only lowered to '1' (zero) or raised from
// it, so no carry changes the decoded length.
std::string ChangeProofValue(std::string value) {
  const size_t at = value.size() / 2;
  value[at] = value[at] == '1' ? '2' : '1';
  return value;
}

std::string Errors(const VerificationReport& report) {
  std::string out;
  for (const ReportMessage& message : report.messages()) {
    if (message.level == MessageLevel::kError) out += message.name + ": " + message.message + "\n";
  }
  return out;
}

struct Sample {
  std::string name;
  Json credential;  // unsigned
  DataModel model;
};

// What both runs of node produced, shared by every test.
struct Fixture {
  std::string setup_error;  // non-empty: node or the packages are missing, or a run failed
  PrivateKey key = PrivateKey::Generate(KeyType::kEd25519).value();
  std::string did;
  std::string method;  // the verification method: did#multikey
  ResolvedKey resolved{"", "", "", key.public_key()};
  std::vector<Sample> samples;
  std::vector<Json> dcc_signed;   // per sample, signed by DCC (kDccCreated)
  std::vector<Json> ours_signed;  // per sample, signed by us (kOurCreated)
  // DCC's verdict ({"verified", "error"}) per label: "<signer> <sample> <kTampers entry>".
  std::map<std::string, Json> dcc_verdicts;
};

Json Tampered(Json credential, const std::string& how) {
  if (how == "name") credential["credentialSubject"]["achievement"]["name"] = "Leadership";
  // No context defines it: expansion would drop it, so the signature cannot
  // cover it, and both sides refuse the credential (safe mode).
  if (how == "undefinedTerm") credential["credentialSubject"]["achievement"]["undefinedTerm"] = "rides along";
  if (how == "proofValue") {
    credential["proof"]["proofValue"] = ChangeProofValue(credential["proof"]["proofValue"].get<std::string>());
  }
  return credential;
}

const char* const kTampers[] = {"original", "name", "proofValue", "undefinedTerm"};

std::string SetUpFixture(Fixture& f) {
  auto multikey = Ed25519Multikey(f.key.public_key());
  if (!multikey.ok()) return multikey.status().ToString();
  f.did = "did:key:" + *multikey;
  f.method = f.did + "#" + *multikey;
  f.resolved = {f.method, f.did, "Multikey", f.key.public_key()};
  f.samples = {
      {"minimal-v2", testing::MinimalOpenBadgeCredential(f.did), DataModel::kV2_0},
      {"minimal-v1.1", testing::V11OpenBadgeCredential(f.did), DataModel::kV1_1},
      {"course", testing::CourseOpenBadgeCredential(f.did), DataModel::kV2_0},
      {"degree", testing::DegreeOpenBadgeCredential(f.did), DataModel::kV2_0},
  };

  testing::DccRunner dcc(BACKPACK_NODE, BACKPACK_DCC_DIR);
  if (!dcc.modules_installed()) {
    return "the DCC packages are not installed (node_modules is missing): run `npm ci` in " + dcc.dir().string();
  }

  // Run 1: DCC signs every sample with our key.
  Json unsigned_credentials = Json::array();
  for (const Sample& sample : f.samples) unsigned_credentials.push_back(sample.credential);
  const std::string key_file = dcc.WriteFile("key.pem", f.key.ToPem());
  const std::string unsigned_file = dcc.WriteFile("unsigned.json", unsigned_credentials.dump());
  testing::DccRun run = dcc.Run({"sign", key_file, unsigned_file, kDccCreated});
  if (run.exit_code != 0) return "dcc.js sign failed (exit " + std::to_string(run.exit_code) + "): " + run.err;
  Json signed_by_dcc = Json::parse(run.out, nullptr, false);
  if (!signed_by_dcc.is_array() || signed_by_dcc.size() != f.samples.size()) {
    return "dcc.js sign printed " + run.out;
  }
  f.dcc_signed = signed_by_dcc.get<std::vector<Json>>();

  for (const Sample& sample : f.samples) {
    auto signed_credential =
        testing::SignDataIntegrity(sample.credential, testing::EddsaRdfc2022ProofOptions(f.method, kOurCreated), f.key);
    if (!signed_credential.ok()) return sample.name + ": " + signed_credential.status().ToString();
    f.ours_signed.push_back(*signed_credential);
  }

  // Run 2: DCC verifies both sides' credentials, as signed and tampered.
  std::vector<std::string> labels;
  Json to_verify = Json::array();
  for (size_t i = 0; i < f.samples.size(); ++i) {
    for (const char* tamper : kTampers) {
      labels.push_back("dcc " + f.samples[i].name + " " + tamper);
      to_verify.push_back(Tampered(f.dcc_signed[i], tamper));
      labels.push_back("ours " + f.samples[i].name + " " + tamper);
      to_verify.push_back(Tampered(f.ours_signed[i], tamper));
    }
  }
  run = dcc.Run({"verify", dcc.WriteFile("verify.json", to_verify.dump())});
  if (run.exit_code != 0) return "dcc.js verify failed (exit " + std::to_string(run.exit_code) + "): " + run.err;
  const Json verdicts = Json::parse(run.out, nullptr, false);
  if (!verdicts.is_array() || verdicts.size() != labels.size()) return "dcc.js verify printed " + run.out;
  for (size_t i = 0; i < labels.size(); ++i) f.dcc_verdicts[labels[i]] = verdicts[i];
  return "";
}

class DccCrossCheck : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    fixture_->setup_error = SetUpFixture(*fixture_);
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(f().setup_error, "") << "the DCC cross-check could not run"; }

  static const Fixture& f() { return *fixture_; }

  static Status OurVerify(const Json& credential) {
    DataIntegrityOptions options;
    options.now = kNow;
    return VerifyDataIntegrityProof(credential, credential["proof"], f().resolved, options);
  }

  static CredentialCheckResult OurCheck(const Json& credential) {
    DataIntegrityOptions di_options;
    di_options.now = kNow;
    CredentialCheckOptions options;
    options.now = kNow;
    options.check_recipient = false;
    options.data_integrity_check = MakeDataIntegrityCheck(di_options);
    const ParsedCredential parsed = ParseCredential(credential.dump());
    EXPECT_TRUE(CredentialDocumentsToFetch(parsed, {}, options).empty()) << "did:key resolves locally";
    return CheckCredential(parsed, {}, options);
  }

  static const Json& DccVerdict(const std::string& label) {
    static const Json kMissing = {{"verified", nullptr}, {"error", "no verdict"}};
    auto it = f().dcc_verdicts.find(label);
    return it == f().dcc_verdicts.end() ? kMissing : it->second;
  }

  static Fixture* fixture_;
};

Fixture* DccCrossCheck::fixture_ = nullptr;

TEST_F(DccCrossCheck, DccSignsWithOurKeyAndAcceptsItsOwnProofs) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    SCOPED_TRACE(f().samples[i].name);
    const Json& proof = f().dcc_signed[i]["proof"];
    EXPECT_EQ(proof["type"], "DataIntegrityProof");
    EXPECT_EQ(proof["cryptosuite"], "eddsa-rdfc-2022");
    EXPECT_EQ(proof["verificationMethod"], f().method);
    EXPECT_EQ(proof["proofPurpose"], "assertionMethod");
    EXPECT_EQ(proof["created"], kDccCreated);
    // DCC changed nothing but adding the proof.
    Json document = f().dcc_signed[i];
    document.erase("proof");
    EXPECT_EQ(document, f().samples[i].credential);
    const Json& verdict = DccVerdict("dcc " + f().samples[i].name + " original");
    EXPECT_EQ(verdict["verified"], true) << verdict.dump();
  }
}

TEST_F(DccCrossCheck, DccSignedCredentialsVerifyWithOurs) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    SCOPED_TRACE(f().samples[i].name);
    const Status status = OurVerify(f().dcc_signed[i]);
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
}

TEST_F(DccCrossCheck, DccSignedCredentialsPassCheckCredential) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    SCOPED_TRACE(f().samples[i].name);
    const CredentialCheckResult result = OurCheck(f().dcc_signed[i]);
    EXPECT_EQ(result.details.kind, CredentialKind::kAchievement);
    EXPECT_EQ(result.details.data_model, f().samples[i].model);
    ASSERT_EQ(result.proofs.size(), 1u);
    EXPECT_EQ(result.proofs[0].outcome, ProofOutcome::kVerified) << result.proofs[0].message;
    EXPECT_EQ(result.proofs[0].key_id, f().method);
    EXPECT_TRUE(result.valid()) << Errors(result.report);
  }
}

TEST_F(DccCrossCheck, TamperedDccSignedCredentialsFailInOursAndDccs) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    for (const char* tamper : {"name", "proofValue"}) {
      SCOPED_TRACE(f().samples[i].name + " " + tamper);
      const Json tampered = Tampered(f().dcc_signed[i], tamper);
      ASSERT_NE(tampered, f().dcc_signed[i]);
      const Status status = OurVerify(tampered);
      EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(status.message(), "signature does not verify");
      const CredentialCheckResult result = OurCheck(tampered);
      ASSERT_EQ(result.proofs.size(), 1u);
      EXPECT_EQ(result.proofs[0].outcome, ProofOutcome::kSignatureInvalid);
      EXPECT_FALSE(result.valid());
      const Json& verdict = DccVerdict("dcc " + f().samples[i].name + " " + tamper);
      EXPECT_EQ(verdict["verified"], false) << verdict.dump();
    }
  }
}

TEST_F(DccCrossCheck, OurSignedCredentialsVerifyWithDccs) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    SCOPED_TRACE(f().samples[i].name);
    EXPECT_TRUE(OurVerify(f().ours_signed[i]).ok());
    const Json& verdict = DccVerdict("ours " + f().samples[i].name + " original");
    EXPECT_EQ(verdict["verified"], true) << verdict.dump();
  }
}

TEST_F(DccCrossCheck, TamperedOurSignedCredentialsFailInDccs) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    for (const char* tamper : {"name", "proofValue"}) {
      SCOPED_TRACE(f().samples[i].name + " " + tamper);
      EXPECT_EQ(OurVerify(Tampered(f().ours_signed[i], tamper)).message(), "signature does not verify");
      const Json& verdict = DccVerdict("ours " + f().samples[i].name + " " + tamper);
      EXPECT_EQ(verdict["verified"], false) << verdict.dump();
      EXPECT_NE(verdict["error"], nullptr) << verdict.dump();
    }
  }
}

TEST_F(DccCrossCheck, UndefinedTermsAreRefusedByBothSides) {
  for (size_t i = 0; i < f().samples.size(); ++i) {
    for (const char* signer : {"dcc", "ours"}) {
      SCOPED_TRACE(f().samples[i].name + " signed by " + signer);
      const Json& signed_credential = std::string(signer) == "dcc" ? f().dcc_signed[i] : f().ours_signed[i];
      const Status status = OurVerify(Tampered(signed_credential, "undefinedTerm"));
      EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(status.message().find("safe mode: invalid property: undefinedTerm"), std::string::npos)
          << status.ToString();
      const Json& verdict = DccVerdict(std::string(signer) + " " + f().samples[i].name + " undefinedTerm");
      EXPECT_EQ(verdict["verified"], false) << verdict.dump();
      EXPECT_NE(verdict["error"].dump().find("Safe mode"), std::string::npos) << verdict.dump();
    }
  }
}

TEST_F(DccCrossCheck, BothSidesSignTheSameBytes) {
  // Ed25519 signatures are deterministic: the same key over the same hash
  // data gives the same proofValue, so equal proofValues mean our canonical
  // document and proof configuration are DCC's, byte for byte.
  for (size_t i = 0; i < f().samples.size(); ++i) {
    SCOPED_TRACE(f().samples[i].name);
    auto ours = testing::SignDataIntegrity(f().samples[i].credential,
                                           testing::EddsaRdfc2022ProofOptions(f().method, kDccCreated), f().key);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    EXPECT_EQ((*ours)["proof"]["proofValue"], f().dcc_signed[i]["proof"]["proofValue"]);
  }
}

}  // namespace
}  // namespace backpack::protocol
