// Test support: signing credentials with an Ed25519 Data Integrity proof
// (eddsa-rdfc-2022 or Ed25519Signature2020) through our own code, for tests
// and benchmarks that need signed credentials. Production code only
// verifies such proofs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "base/status.h"
#include "protocol/data_integrity.h"
#include "protocol/did.h"
#include "protocol/jws.h"

namespace backpack::testing {

// `credential` with `proof` attached as its "proof", `proof` being the proof
// options (type, cryptosuite, created, verificationMethod, proofPurpose)
// completed with proofValue = 'z' + base58btc(Ed25519 signature of
// DataIntegrityHashData). Errors: those of DataIntegrityHashData (a document
// refused in safe mode, say) and of SignEd25519 (a key that is not Ed25519).
inline Result<nlohmann::json> SignDataIntegrity(nlohmann::json credential, nlohmann::json proof,
                                                const protocol::PrivateKey& key,
                                                const protocol::DataIntegrityOptions& options = {}) {
  auto hash = protocol::DataIntegrityHashData(credential, proof, options);
  if (!hash.ok()) return hash.status();
  if (hash->size() != 64) return Internal("hash data is " + std::to_string(hash->size()) + " bytes, not 64");
  auto signature = protocol::SignEd25519(key, *hash);
  if (!signature.ok()) return signature.status();
  proof["proofValue"] = "z" + protocol::Base58BtcEncode(*signature);
  credential["proof"] = std::move(proof);
  return credential;
}

// eddsa-rdfc-2022 proof options for `verification_method`, made `created`.
inline nlohmann::json EddsaRdfc2022ProofOptions(const std::string& verification_method, const std::string& created) {
  return {{"type", "DataIntegrityProof"},
          {"cryptosuite", "eddsa-rdfc-2022"},
          {"created", created},
          {"verificationMethod", verification_method},
          {"proofPurpose", "assertionMethod"}};
}

}  // namespace backpack::testing
