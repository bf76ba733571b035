// Conformance of JSON-LD expansion + RDFC-1.0 against third-party vectors in
// shared/vectors (BACKPACK_VECTORS_DIR overrides; skipped when absent):
//  * the W3C vc-di-eddsa test vectors: canonical N-Quads of the document and
//    of the proof configuration, for eddsa-rdfc-2022 and Ed25519Signature2020;
//  * the 1EdTech Open Badges 3.0 linked-data-proof test vector;
//  * every Data Integrity proof listed in checks-here.json, checked with
//    VerifyDataIntegrityProof (protocol/data_integrity.h): a signature
//    verifies only if both canonical forms are exactly the signer's, so each
//    verdict there is also a canonicalisation cross-check. Documents refused
//    in safe mode have their signature checked again without it.
// Contexts come from BundledContextLoader(); the one test-only context the
// W3C vectors use (credentials/examples/v2) is read from the vectors.
#include <gtest/gtest.h>

#include "tests/support/vectors.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "protocol/bundled_contexts.h"
#include "protocol/data_integrity.h"
#include "protocol/did.h"
#include "protocol/encoding.h"
#include "protocol/jsonld.h"
#include "protocol/jws.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

using backpack::testing::VectorsDir;

std::optional<std::string> ReadFile(const std::filesystem::path& path) { return backpack::testing::ReadVectorFile(path); }

// Bundled contexts, plus test-only contexts read from the vectors.
jsonld::DocumentLoader VectorLoader(const std::filesystem::path& dir) {
  auto extra = std::make_shared<std::map<std::string, std::string>>();
  if (auto examples = ReadFile(dir / "w3c-vc-di-eddsa/w3c-vc-data-model/contexts/credentials/examples/v2")) {
    (*extra)["https://www.w3.org/ns/credentials/examples/v2"] = *examples;
  }
  auto bundled = BundledContextLoader();
  return [extra, bundled](const std::string& url) -> Result<jsonld::LoadedDocument> {
    if (auto it = extra->find(url); it != extra->end()) return jsonld::LoadedDocument{url, it->second};
    return bundled(url);
  };
}

class CanonConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = VectorsDir();
    if (!std::filesystem::exists(dir_ / "README.md")) {
      GTEST_SKIP() << "no test vectors at " << dir_ << " (set BACKPACK_VECTORS_DIR to point at them)";
    }
    loader_ = VectorLoader(dir_);
    options_.cache = &cache_;
    options_.safe_mode = true;
  }

  Json ReadJson(const std::string& rel) {
    auto text = ReadFile(dir_ / rel);
    EXPECT_TRUE(text) << rel;
    return text ? Json::parse(*text) : Json();
  }

  std::string Canon(const Json& doc) {
    auto result = jsonld::CanonicalNQuads(doc, loader_, options_);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : "";
  }

  std::filesystem::path dir_;
  jsonld::DocumentLoader loader_;
  jsonld::ContextCache cache_;
  jsonld::Options options_;
};

TEST_F(CanonConformance, W3cEddsaRdfc2022) {
  const std::string base = "w3c-vc-di-eddsa/TestVectors/";
  EXPECT_EQ(Canon(ReadJson(base + "unsigned.json")), *ReadFile(dir_ / (base + "eddsa-rdfc-2022/canonDocDataInt.txt")));
  EXPECT_EQ(Canon(ReadJson(base + "eddsa-rdfc-2022/proofConfigDataInt.json")),
            *ReadFile(dir_ / (base + "eddsa-rdfc-2022/proofCanonDataInt.txt")));
  EXPECT_EQ(Sha256Hex(Canon(ReadJson(base + "unsigned.json"))),
            *ReadFile(dir_ / (base + "eddsa-rdfc-2022/docHashDataInt.txt")));
}

TEST_F(CanonConformance, W3cEd25519Signature2020) {
  const std::string base = "w3c-vc-di-eddsa/TestVectors/";
  Json doc = ReadJson(base + "Ed25519Signature2020/signedEdSig.json");
  doc.erase("proof");
  EXPECT_EQ(Canon(doc), *ReadFile(dir_ / (base + "Ed25519Signature2020/canonDocEdSig.txt")));
  EXPECT_EQ(Canon(ReadJson(base + "Ed25519Signature2020/proofConfigEdSig.json")),
            *ReadFile(dir_ / (base + "Ed25519Signature2020/proofCanonEdSig.txt")));
}

TEST_F(CanonConformance, OpenBadges30LinkedDataProofVector) {
  const std::string base = "1edtech-ob-spec/extracted/ob30-ldp-test-vector/";
  const Json credential = ReadJson(base + "credential-unsigned.json");
  const std::string doc = Canon(credential);
  EXPECT_EQ(doc, *ReadFile(dir_ / (base + "document-canon.txt")));
  Json proof = ReadJson(base + "proof-options.json");
  proof["@context"] = credential["@context"];
  const std::string proof_canon = Canon(proof);
  EXPECT_EQ(proof_canon, *ReadFile(dir_ / (base + "proof-canon.txt")));
  const Json values = ReadJson(base + "intermediate-values.json");
  EXPECT_EQ(Sha256Hex(doc), values["documentHashHex"]);
  EXPECT_EQ(Sha256Hex(proof_canon), values["proofHashHex"]);
}

// ---------------------------------------------------------------------------
// Every Data Integrity proof of checks-here.json, through the library's
// VerifyDataIntegrityProof.

TEST_F(CanonConformance, DataIntegrityProofsVerify) {
  const Json checks = ReadJson("checks-here.json");
  std::map<std::string, Json> did_web = {
      {"did:web:digitalcredentials.github.io:vc-test-fixtures:dids:legacy",
       ReadJson("dcc-vc-test-fixtures/dids/legacy/did.json")},
      {"did:web:digitalcredentials.github.io:vc-test-fixtures:dids:oidf",
       ReadJson("dcc-vc-test-fixtures/dids/oidf/did.json")},
  };
  DataIntegrityOptions di;
  di.loader = loader_;
  di.cache = &cache_;
  DataIntegrityOptions lenient = di;
  lenient.safe_mode = false;
  auto any_key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(any_key.ok());
  const ResolvedKey unused_key{"did:example:unused#key", "did:example:unused", "Multikey", any_key->public_key()};

  int agree = 0, agree_valid = 0, disagree = 0, skipped = 0, safe_mode_refused = 0, canon_failed = 0;
  int unsupported = 0;
  std::string failures;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& [file, proofs] : checks["data_integrity_proofs"].items()) {
    // Baked images and the like are not JSON; status lists are, without a
    // file extension.
    const Json signed_doc = Json::parse(ReadFile(dir_ / file).value_or(""), nullptr, false);
    if (!signed_doc.is_object()) {
      skipped += static_cast<int>(proofs.size());
      continue;
    }
    const Json all_proofs = signed_doc.contains("proof") ? signed_doc["proof"] : Json();
    for (size_t i = 0; i < proofs.size(); ++i) {
      const Json& check = proofs[i];
      const std::string verdict = check.value("result", "");
      const std::string type = check.value("type", "");
      // The proof of this entry: the i-th of a proof set.
      const Json proof = all_proofs.is_array() ? (i < all_proofs.size() ? all_proofs[i] : Json()) : all_proofs;
      if (verdict == "UNSUPPORTED_SUITE" && proof.is_object()) {
        const Status status = VerifyDataIntegrityProof(signed_doc, proof, unused_key, di);
        if (status.code() == StatusCode::kFailedPrecondition) {
          ++unsupported;
        } else {
          ++disagree;
          failures += file + " (" + type + "): expected unsupported, got " + status.ToString() + "\n";
        }
        continue;
      }
      if (verdict != "SIG_VALID" && verdict != "SIG_INVALID") {
        ++skipped;
        continue;
      }
      if (proof.contains("previousProof")) {
        ++skipped;  // chains also sign the previous proof
        continue;
      }
      // Key: did:key, the fragment's Multikey, or a local did:web document.
      std::optional<PublicKey> key;
      const std::string vm = check.value("vm", "");
      const std::string key_from = check.value("keyFrom", "");
      const size_t hash = vm.find('#');
      auto from_multikey = [&](const std::string& multibase) {
        auto parsed = PublicKeyFromMultikey(multibase);
        if (parsed.ok()) key = *parsed;
      };
      if (key_from == "did:key" || key_from == "fragment-multikey") {
        from_multikey(hash == std::string::npos ? vm.substr(vm.rfind(':') + 1) : vm.substr(hash + 1));
      } else if (key_from.rfind("did:web", 0) == 0) {
        const std::string did = vm.substr(0, hash);
        for (const char* relation : {"verificationMethod", "assertionMethod"}) {
          for (const auto& method : did_web[did].value(relation, Json::array())) {
            if (method.is_object() && method.value("id", "") == vm) from_multikey(method.value("publicKeyMultibase", ""));
          }
        }
      }
      if (!key) {
        ++skipped;
        continue;
      }
      const ResolvedKey resolved{vm, vm.substr(0, hash), "Multikey", *key};
      Status status = VerifyDataIntegrityProof(signed_doc, proof, resolved, di);
      if (!status.ok() && status.message().find("JSON-LD safe mode") != std::string::npos) {
        // Data the signature would not cover: refused. The signature itself
        // is still cross-checked over what expansion keeps.
        ++safe_mode_refused;
        if (std::getenv("BACKPACK_SHOW_DROPS")) std::printf("safe mode refuses %s: %s\n", file.c_str(), status.message().c_str());
        status = VerifyDataIntegrityProof(signed_doc, proof, resolved, lenient);
      }
      if (!status.ok() && status.message() != "signature does not verify") {
        ++canon_failed;
        failures += file + ": " + status.ToString() + "\n";
        continue;
      }
      if (status.ok() == (verdict == "SIG_VALID")) {
        ++agree;
        agree_valid += status.ok() ? 1 : 0;
      } else {
        ++disagree;
        failures += file + " (" + type + "): expected " + verdict + "\n";
      }
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("Data Integrity proofs: %d agree with the recorded verdict (%d valid, %d invalid), %d unsupported "
              "suites refused as not checked, %d disagree, %d could not be checked, %d not checkable here; %d "
              "refused in safe mode (signature cross-checked without it); %.1f ms\n",
              agree, agree_valid, agree - agree_valid, unsupported, disagree, canon_failed, skipped,
              safe_mode_refused, ms);
  EXPECT_EQ(disagree, 0) << failures;
  EXPECT_EQ(canon_failed, 0) << failures;
  EXPECT_GE(agree, 160);
}

}  // namespace
}  // namespace backpack::protocol
