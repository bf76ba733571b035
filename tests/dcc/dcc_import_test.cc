// The node imports credentials signed by an independent implementation: the
// Digital Credentials Consortium's JavaScript libraries (tests/dcc/dcc.js)
// sign OB 3.0 credentials for an earner of a real backpackd, which imports
// them as JSON and baked into PNG and SVG; a tampered copy is refused naming
// the proof check, and nothing is stored. Without node_modules (npm ci in
// tests/dcc) the test fails, saying so, as the other cross-checks do.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/did.h"
#include "protocol/jws.h"
#include "protocol/recipient.h"
#include "tests/dcc/dcc_runner.h"
#include "tests/dcc/sample_credentials.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack {
namespace {

using Json = nlohmann::json;
using testing::NodeProcess;
using testing::Reply;

constexpr char kEarner[] = "ann@example.org";

// A credential for kEarner (hashed, salted identifier) from `did`, with its own id.
Json CredentialFor(const std::string& did, int n) {
  Json credential = testing::MinimalOpenBadgeCredential(did);
  credential["id"] = "urn:uuid:7d3c1e2a-4b5f-4c6d-8e9f-0a1b2c3d4e5" + std::to_string(n);
  credential["credentialSubject"]["identifier"] = {{{"type", "IdentityObject"},
                                                    {"identityType", "emailAddress"},
                                                    {"hashed", true},
                                                    {"salt", "pepper"},
                                                    {"identityHash", protocol::HashIdentity(kEarner, "pepper")}}};
  return credential;
}

TEST(DccImport, DccSignedCredentialsImportAsJsonPngAndSvg) {
  testing::DccRunner dcc(BACKPACK_NODE, BACKPACK_DCC_DIR);
  ASSERT_TRUE(dcc.modules_installed()) << "the DCC packages are not installed: run `npm ci` in " << dcc.dir();
  auto key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
  ASSERT_TRUE(key.ok());
  auto multikey = protocol::Ed25519Multikey(key->public_key());
  ASSERT_TRUE(multikey.ok());
  const std::string did = "did:key:" + *multikey;

  Json unsigned_credentials = Json::array({CredentialFor(did, 1), CredentialFor(did, 2), CredentialFor(did, 3)});
  const testing::DccRun run = dcc.Run({"sign", dcc.WriteFile("key.pem", key->ToPem()),
                                       dcc.WriteFile("unsigned.json", unsigned_credentials.dump()),
                                       "2026-06-01T12:00:00Z"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const Json signed_credentials = Json::parse(run.out, nullptr, false);
  ASSERT_TRUE(signed_credentials.is_array() && signed_credentials.size() == 3) << run.out;

  testing::TempDir dir;
  NodeProcess node(dir.path() + "/node");
  ASSERT_TRUE(node.Start()) << node.ReadLog();
  const std::string token = testing::SignUpVerified(node, dir.path() + "/node/outbox", kEarner);
  ASSERT_FALSE(token.empty()) << node.ReadLog();

  testing::TestIssuer images;  // only for its plain PNG and SVG
  const auto credential = protocol::BadgeKind::kCredential;
  const Reply replies[] = {
      node.Call({"POST", "/api/v1/badges", Json{{"credential", signed_credentials[0]}}.dump(), "application/json",
                 token, {}}),
      node.Call({"POST", "/api/v1/badges", images.BakePng(signed_credentials[1].dump(), credential), "image/png",
                 token, {}}),
      node.Call({"POST", "/api/v1/badges", images.BakeSvg(signed_credentials[2].dump(), credential),
                 "image/svg+xml", token, {}}),
  };
  for (const Reply& reply : replies) {
    ASSERT_EQ(reply.status, 201) << reply.body;
    const Json body = Json::parse(reply.body);
    EXPECT_EQ(body["status"], "valid");
    EXPECT_EQ(body["spec_version"], "3.0");
    EXPECT_EQ(body["badge"]["issuer"]["id"], did);
    EXPECT_EQ(body["badge"]["credential"]["proofs"][0]["cryptosuite"], "eddsa-rdfc-2022");
  }

  // Tampered after DCC signed it: refused, naming the proof check; nothing stored.
  Json tampered = signed_credentials[0];
  tampered["id"] = "urn:uuid:7d3c1e2a-4b5f-4c6d-8e9f-0a1b2c3d4e59";
  tampered["credentialSubject"]["achievement"]["name"] = "Leadership";
  const Reply refused = node.Call(
      {"POST", "/api/v1/badges", Json{{"credential", tampered}}.dump(), "application/json", token, {}});
  EXPECT_EQ(refused.status, 422) << refused.body;
  bool names_proof = false;
  const Json refusal = Json::parse(refused.body);
  for (const Json& m : refusal["verification"]["messages"]) {
    names_proof = names_proof || (m["messageLevel"] == "ERROR" && m["name"] == "VERIFY_PROOF");
  }
  EXPECT_TRUE(names_proof) << refused.body;
  const Json list = Json::parse(node.Call({"GET", "/api/v1/badges", "", "", token, {}}).body);
  EXPECT_EQ(list["badges"].size(), 3u);
}

}  // namespace
}  // namespace backpack
