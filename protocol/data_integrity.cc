#include "protocol/data_integrity.h"

#include <openssl/evp.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/assertion.h"
#include "protocol/bundled_contexts.h"
#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kEddsaRdfc2022 = "eddsa-rdfc-2022";

std::string Quote(std::string_view text) {
  std::string out = "\"";
  out.append(text.substr(0, 100));
  if (text.size() > 100) out += "...";
  return out + "\"";
}

Status Malformed(const std::string& why) { return InvalidArgument("malformed proof: " + why); }

std::string StringMember(const Json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Json AsArray(const Json& value) { return value.is_array() ? value : Json::array({value}); }

// Whether RDFC-1.0 and URDNA2015 escaping can write a literal of `value`
// differently: a control character other than LF and CR, or DEL.
bool HasLegacyEscapeDifference(const Json& value, int depth = 0) {
  if (depth > 256) return false;
  auto differs = [](std::string_view s) {
    for (unsigned char c : s) {
      if ((c < 0x20 && c != '\n' && c != '\r') || c == 0x7f) return true;
    }
    return false;
  };
  if (value.is_string()) return differs(value.get_ref<const std::string&>());
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      if (differs(key) || HasLegacyEscapeDifference(member, depth + 1)) return true;
    }
  } else if (value.is_array()) {
    for (const Json& item : value) {
      if (HasLegacyEscapeDifference(item, depth + 1)) return true;
    }
  }
  return false;
}

// The suite of `proof`: OK for the two supported, FailedPrecondition otherwise.
Status CheckSuite(const Json& proof) {
  if (!proof.is_object()) return Malformed("the proof is not an object");
  const std::string type = StringMember(proof, "type");
  if (type == "DataIntegrityProof") {
    const std::string suite = StringMember(proof, "cryptosuite");
    if (suite != kEddsaRdfc2022) return FailedPrecondition("cryptosuite " + Quote(suite) + " is not supported");
  } else if (type != "Ed25519Signature2020") {
    return FailedPrecondition("cryptosuite " + Quote(type.empty() ? "(no proof type)" : type) +
                              " is not supported");
  }
  if (proof.contains("previousProof")) {
    return FailedPrecondition("cryptosuite " + Quote(type) + " is not supported for proof chains (previousProof)");
  }
  return Status::Ok();
}

// The document and proof configuration the signature covers.
Result<std::pair<Json, Json>> SignedForms(const Json& credential, const Json& proof) {
  if (!credential.is_object()) return Malformed("the credential is not an object");
  auto context = credential.find("@context");
  if (context == credential.end()) return Malformed("the credential has no @context");
  // Copied member by member, so the proofs (often the larger part) are not
  // copied only to be erased.
  Json document = Json::object();
  for (auto it = credential.begin(); it != credential.end(); ++it) {
    if (it.key() != "proof") document[it.key()] = *it;
  }
  Json config = Json::object();
  for (auto it = proof.begin(); it != proof.end(); ++it) {
    if (it.key() != "proofValue") config[it.key()] = *it;
  }
  if (auto own = config.find("@context"); own != config.end()) {
    // vc-di-eddsa: the document's @context must start with the proof's, in
    // order; the proof's is then the document's.
    const Json prefix = AsArray(*own);
    const Json full = AsArray(*context);
    if (prefix.size() > full.size()) return Malformed("the document's @context does not start with the proof's");
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (prefix[i] != full[i]) return Malformed("the document's @context does not start with the proof's");
    }
    document["@context"] = *own;
  } else {
    config["@context"] = *context;
  }
  return std::make_pair(std::move(document), std::move(config));
}

// SHA-256 through a digest fetched once (SHA256() fetches it on every call).
std::string Sha256Digest(std::string_view data) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), digest, &size, md, nullptr) != 1 || size != 32) {
    return Sha256(data);
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

jsonld::ContextCache* BundledCache() {
  static jsonld::ContextCache cache;
  return &cache;
}

Result<std::string> HashData(const Json& document, const Json& config, const DataIntegrityOptions& options,
                             bool legacy_escaping) {
  jsonld::Options canon;
  canon.safe_mode = options.safe_mode;
  canon.limits = options.limits;
  canon.canon = options.canon;
  canon.canon.legacy_urdna2015_escaping = options.canon.legacy_urdna2015_escaping || legacy_escaping;
  jsonld::DocumentLoader loader = options.loader;
  canon.cache = options.cache;
  if (!loader) {
    loader = BundledContextLoader();
    if (canon.cache == nullptr) canon.cache = BundledCache();
  }
  auto proof_canon = jsonld::CanonicalNQuads(config, loader, canon);
  if (!proof_canon.ok()) {
    return Status(proof_canon.status().code(), "the proof cannot be canonicalised: " + proof_canon.status().message());
  }
  auto doc_canon = jsonld::CanonicalNQuads(document, loader, canon);
  if (!doc_canon.ok()) {
    return Status(doc_canon.status().code(), "the document cannot be canonicalised: " + doc_canon.status().message());
  }
  return Sha256Digest(*proof_canon) + Sha256Digest(*doc_canon);
}

// created / expires: well formed, in order, and (with a clock) current.
Status CheckProofDates(const Json& proof, const DataIntegrityOptions& options) {
  auto read = [&](const char* name) -> Result<std::optional<int64_t>> {
    auto it = proof.find(name);
    if (it == proof.end()) return std::optional<int64_t>();
    const std::optional<BadgeTime> time =
        it->is_string() ? ParseBadgeTime(it->get<std::string>()) : std::optional<BadgeTime>();
    if (!time || !time->has_time || !time->has_zone || time->from_unix) {
      return Malformed(std::string(name) + " is not a date-time with a zone");
    }
    return std::optional<int64_t>(time->unix_seconds);
  };
  auto created = read("created");
  if (!created.ok()) return created.status();
  auto expires = read("expires");
  if (!expires.ok()) return expires.status();
  if (*created && *expires && **expires <= **created) return Malformed("expires is not after created");
  if (options.now != 0) {
    if (*created && **created > options.now + options.clock_skew_seconds) {
      return Malformed("created is in the future");
    }
    if (*expires && **expires <= options.now) return Malformed("the proof expired");
  }
  return Status::Ok();
}

Status Verify(const Json& credential, const Json& proof, const ResolvedKey& key, const DataIntegrityOptions& options) {
  if (Status suite = CheckSuite(proof); !suite.ok()) return suite;
  if (StringMember(proof, "proofPurpose") != "assertionMethod") {
    return Malformed("proofPurpose is " + Quote(StringMember(proof, "proofPurpose")) +
                     "; a credential's proof must be assertionMethod");
  }
  if (StringMember(proof, "verificationMethod").empty()) return Malformed("no verificationMethod");
  const std::string proof_value = StringMember(proof, "proofValue");
  if (proof_value.empty() || proof_value[0] != 'z') {
    return Malformed("proofValue is not a base58btc multibase value ('z...')");
  }
  const std::optional<std::string> signature = Base58BtcDecode(std::string_view(proof_value).substr(1));
  if (!signature || signature->size() != 64) return Malformed("proofValue is not a 64-byte Ed25519 signature");
  if (key.key.type() != KeyType::kEd25519) {
    return Malformed("the suite needs an Ed25519 key; " + Quote(key.id) + " is " +
                     std::string(KeyTypeName(key.key.type())));
  }
  if (Status dates = CheckProofDates(proof, options); !dates.ok()) return dates;

  auto forms = SignedForms(credential, proof);
  if (!forms.ok()) return forms.status();
  const auto& [document, config] = *forms;
  auto hash = HashData(document, config, options, false);
  if (!hash.ok()) return hash.status();
  if (VerifyEd25519(key.key, *hash, *signature).ok()) return Status::Ok();
  if (!options.canon.legacy_urdna2015_escaping &&
      (HasLegacyEscapeDifference(document) || HasLegacyEscapeDifference(config))) {
    auto legacy = HashData(document, config, options, true);
    if (legacy.ok() && VerifyEd25519(key.key, *legacy, *signature).ok()) return Status::Ok();
  }
  return InvalidArgument("signature does not verify");
}

}  // namespace

Result<std::string> DataIntegrityHashData(const Json& credential, const Json& proof,
                                          const DataIntegrityOptions& options) {
  try {
    if (Status suite = CheckSuite(proof); !suite.ok()) return suite;
    auto forms = SignedForms(credential, proof);
    if (!forms.ok()) return forms.status();
    return HashData(forms->first, forms->second, options, false);
  } catch (const std::exception& e) {
    return Internal(std::string("hashing the proof failed: ") + e.what());
  }
}

Status VerifyDataIntegrityProof(const Json& credential, const Json& proof, const ResolvedKey& key,
                                const DataIntegrityOptions& options) {
  try {
    return Verify(credential, proof, key, options);
  } catch (const std::exception& e) {
    return Internal(std::string("checking the proof failed: ") + e.what());
  }
}

DataIntegrityCheck MakeDataIntegrityCheck(DataIntegrityOptions options) {
  std::shared_ptr<jsonld::ContextCache> owned;
  if (options.cache == nullptr && options.loader) {
    owned = std::make_shared<jsonld::ContextCache>();
    options.cache = owned.get();
  }
  return [options = std::move(options), owned](const Json& credential, const Json& proof,
                                               const ResolvedKey& key) -> Status {
    return VerifyDataIntegrityProof(credential, proof, key, options);
  };
}

}  // namespace backpack::protocol
