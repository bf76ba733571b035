// Conformance of JSON-LD expansion + RDFC-1.0 against third-party vectors in
// shared/vectors (BACKPACK_VECTORS_DIR overrides; skipped when absent):
//  * the W3C vc-di-eddsa test vectors: canonical N-Quads of the document and
//    of the proof configuration, for eddsa-rdfc-2022 and Ed25519Signature2020;
//  * the 1EdTech Open Badges 3.0 linked-data-proof test vector;
//  * every Data Integrity proof listed in checks-here.json: the canonical
//    forms are hashed as the suites prescribe and the Ed25519 signature is
//    checked (a signature verifies only if both canonical forms are exactly
//    the signer's), so each verdict there is a canonicalisation cross-check.
// Contexts come from BundledContextLoader(); the one test-only context the
// W3C vectors use (credentials/examples/v2) is read from the vectors.
#include <gtest/gtest.h>
#include <openssl/evp.h>

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
#include "protocol/encoding.h"
#include "protocol/jsonld.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

std::filesystem::path VectorsDir() {
  if (const char* dir = std::getenv("BACKPACK_VECTORS_DIR")) return dir;
  return std::filesystem::path(__FILE__).parent_path() / ".." / ".." / ".." / "shared" / "vectors";
}

std::optional<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

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
// Every Data Integrity proof of checks-here.json.

std::optional<std::string> Base58Decode(std::string_view text) {
  static const std::string kAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  std::vector<unsigned char> bytes;  // big-endian
  for (char c : text) {
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) return std::nullopt;
    unsigned carry = static_cast<unsigned>(v);
    for (auto it = bytes.rbegin(); it != bytes.rend(); ++it) {
      carry += 58u * *it;
      *it = static_cast<unsigned char>(carry & 0xff);
      carry >>= 8;
    }
    while (carry) {
      bytes.insert(bytes.begin(), static_cast<unsigned char>(carry & 0xff));
      carry >>= 8;
    }
  }
  size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == '1') ++zeros;
  return std::string(zeros, '\0') + std::string(bytes.begin(), bytes.end());
}

// A raw Ed25519 key from a multibase "z6Mk..." Multikey (0xed 0x01 header).
std::optional<std::string> Ed25519KeyFromMultikey(std::string_view multibase) {
  if (multibase.empty() || multibase[0] != 'z') return std::nullopt;
  auto raw = Base58Decode(multibase.substr(1));
  if (!raw || raw->size() != 34 || (*raw)[0] != '\xed' || (*raw)[1] != '\x01') return std::nullopt;
  return raw->substr(2);
}

bool Ed25519Verify(const std::string& key, const std::string& message, const std::string& signature) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(key.data()), key.size());
  if (!pkey) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

TEST_F(CanonConformance, DataIntegrityProofsVerify) {
  const Json checks = ReadJson("checks-here.json");
  std::map<std::string, Json> did_web = {
      {"did:web:digitalcredentials.github.io:vc-test-fixtures:dids:legacy",
       ReadJson("dcc-vc-test-fixtures/dids/legacy/did.json")},
      {"did:web:digitalcredentials.github.io:vc-test-fixtures:dids:oidf",
       ReadJson("dcc-vc-test-fixtures/dids/oidf/did.json")},
  };
  int agree = 0, agree_valid = 0, disagree = 0, skipped = 0, safe_mode_refused = 0, canon_failed = 0;
  std::string failures;
  const auto start = std::chrono::steady_clock::now();
  int canonicalisations = 0;
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
      if (verdict != "SIG_VALID" && verdict != "SIG_INVALID") {
        ++skipped;
        continue;
      }
      const std::string type = check.value("type", "");
      const std::string vm = check.value("vm", "");
      // The proof of this entry: the i-th of a proof set.
      const Json proof = all_proofs.is_array() ? all_proofs[i] : all_proofs;
      if (proof.contains("previousProof")) {
        ++skipped;  // chains also sign the previous proof
        continue;
      }
      // Key: did:key, the fragment's Multikey, or a local did:web document.
      std::optional<std::string> key;
      const std::string key_from = check.value("keyFrom", "");
      const size_t hash = vm.find('#');
      if (key_from == "did:key" || key_from == "fragment-multikey") {
        key = Ed25519KeyFromMultikey(hash == std::string::npos ? vm.substr(vm.rfind(':') + 1) : vm.substr(hash + 1));
      } else if (key_from.rfind("did:web", 0) == 0) {
        const std::string did = vm.substr(0, hash);
        for (const char* relation : {"verificationMethod", "assertionMethod"}) {
          for (const auto& method : did_web[did].value(relation, Json::array())) {
            if (method.is_object() && method.value("id", "") == vm) {
              key = Ed25519KeyFromMultikey(method.value("publicKeyMultibase", ""));
            }
          }
        }
      }
      if (!key) {
        ++skipped;
        continue;
      }
      Json document = signed_doc;
      document.erase("proof");
      Json config = proof;
      config.erase("proofValue");
      config["@context"] = document["@context"];

      std::vector<jsonld::Dropped> dropped_doc, dropped_proof;
      jsonld::Options lenient = options_;
      lenient.safe_mode = false;
      auto doc_canon = jsonld::CanonicalNQuads(document, loader_, lenient, &dropped_doc);
      auto proof_canon = jsonld::CanonicalNQuads(config, loader_, lenient, &dropped_proof);
      canonicalisations += 2;
      if (!doc_canon.ok() || !proof_canon.ok()) {
        ++canon_failed;
        failures += file + ": " + (doc_canon.ok() ? proof_canon.status() : doc_canon.status()).ToString() + "\n";
        continue;
      }
      if (!dropped_doc.empty() || !dropped_proof.empty()) {
        ++safe_mode_refused;
        const auto& d = dropped_doc.empty() ? dropped_proof.front() : dropped_doc.front();
        if (std::getenv("BACKPACK_SHOW_DROPS")) std::printf("safe mode would refuse %s: %s: %s\n", file.c_str(), d.kind.c_str(), d.detail.c_str());
      }
      const std::string message = Sha256(*proof_canon) + Sha256(*doc_canon);
      const std::string proof_value = proof.value("proofValue", "");
      auto signature = proof_value.size() > 1 ? Base58Decode(proof_value.substr(1)) : std::nullopt;
      const bool verifies = signature && Ed25519Verify(*key, message, *signature);
      if (verifies == (verdict == "SIG_VALID")) {
        ++agree;
        agree_valid += verifies ? 1 : 0;
      } else {
        ++disagree;
        failures += file + " (" + type + "): expected " + verdict + "\n";
      }
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("Data Integrity proofs: %d agree with the recorded verdict (%d valid, %d invalid), %d disagree, %d "
              "could not be canonicalised, %d not checkable here; %d would be refused in safe mode; %d "
              "canonicalisations in %.1f ms\n",
              agree, agree_valid, agree - agree_valid, disagree, canon_failed, skipped, safe_mode_refused,
              canonicalisations, ms);
  EXPECT_EQ(disagree, 0) << failures;
  EXPECT_EQ(canon_failed, 0) << failures;
  EXPECT_GE(agree, 160);
}

}  // namespace
}  // namespace backpack::protocol
