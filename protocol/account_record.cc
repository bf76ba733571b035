#include "protocol/account_record.h"

#include <charconv>
#include <cctype>

#include "protocol/did.h"
#include "protocol/encoding.h"
#include "protocol/jcs.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kSigningPrefix = "backpackd-record-v1\n";
constexpr int64_t kMaxMs = int64_t{1} << 53;
constexpr size_t kMaxIdBytes = 256;       // badge ids, node names
constexpr size_t kMaxMirrors = 16;

std::string Base32Lower(std::string_view bytes) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

bool IsLowerHex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAccountId(std::string_view s) {
  if (s.size() != 33 || s[0] != 'a') return false;
  for (char c : s.substr(1)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

// A badge id or node name: printable ASCII without '/', bounded.
bool IsName(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdBytes) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '/') return false;
  }
  return true;
}

const Json* Member(const Json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

Result<std::string> StringMember(const Json& object, const char* name) {
  const Json* value = Member(object, name);
  if (value == nullptr || !value->is_string()) return InvalidArgument(std::string("record '") + name + "' must be a string");
  return value->get<std::string>();
}

// The record rules: its type, account, version, and the members its type needs.
Status ReadRecord(const Json& record, RecordEnvelope& out) {
  if (!record.is_object()) return InvalidArgument("'record' must be an object");
  auto type = StringMember(record, "type");
  if (!type.ok()) return type.status();
  auto account = StringMember(record, "account");
  if (!account.ok()) return account.status();
  if (!IsAccountId(*account)) return InvalidArgument("record 'account' is not an account id");
  auto version_text = StringMember(record, "version");
  if (!version_text.ok()) return version_text.status();
  auto version = RecordVersion::Parse(*version_text);
  if (!version) return InvalidArgument("record 'version' is not '<ms>.<counter>'");
  out.account = std::move(*account);
  out.version = *version;
  if (*type == "home") {
    auto node = StringMember(record, "node");
    if (!node.ok()) return node.status();
    if (!IsName(*node)) return InvalidArgument("home 'node' is not a node name");
    // Where the home answers: http(s)://<node>, so a reader needs no other lookup.
    auto url = StringMember(record, "url");
    if (!url.ok()) return url.status();
    const std::string_view u = *url;
    const size_t authority = u.starts_with("https://") ? 8 : u.starts_with("http://") ? 7 : 0;
    if (authority == 0 || u.substr(authority) != *node) {
      return InvalidArgument("home 'url' must be http://<node> or https://<node>");
    }
    out.type = RecordType::kHome;
    out.key = "home";
  } else if (*type == "directory") {
    auto hash = StringMember(record, "email_sha256");
    if (!hash.ok()) return hash.status();
    if (!IsLowerHex(*hash, 64)) return InvalidArgument("directory 'email_sha256' must be 64 lower-case hex digits");
    const Json* discoverable = Member(record, "discoverable");
    if (discoverable == nullptr || !discoverable->is_boolean()) {
      return InvalidArgument("directory 'discoverable' must be true or false");
    }
    out.type = RecordType::kDirectory;
    out.key = "directory/" + *hash;
  } else if (*type == "mirrors") {
    const Json* nodes = Member(record, "nodes");
    if (nodes == nullptr || !nodes->is_array() || nodes->size() > kMaxMirrors) {
      return InvalidArgument("mirrors 'nodes' must be an array of at most 16 node names");
    }
    for (const Json& node : *nodes) {
      if (!node.is_string() || !IsName(node.get_ref<const std::string&>())) {
        return InvalidArgument("mirrors 'nodes' holds something that is not a node name");
      }
    }
    out.type = RecordType::kMirrors;
    out.key = "mirrors";
  } else if (*type == "badge") {
    auto badge = StringMember(record, "badge");
    if (!badge.ok()) return badge.status();
    if (!IsName(*badge)) return InvalidArgument("badge 'badge' is not a badge id");
    auto original = StringMember(record, "original");
    if (!original.ok()) return original.status();
    if (!Base64UrlDecode(*original)) return InvalidArgument("badge 'original' is not base64url");
    out.type = RecordType::kBadge;
    out.key = "badge/" + *badge;
  } else if (*type == "tombstone") {
    auto target = StringMember(record, "target");
    if (!target.ok()) return target.status();
    const bool badge = target->starts_with("badge/") && IsName(std::string_view(*target).substr(6));
    const bool directory = target->starts_with("directory/") && IsLowerHex(std::string_view(*target).substr(10), 64);
    if (!badge && !directory) return InvalidArgument("tombstone 'target' must name a badge or directory record");
    out.type = RecordType::kTombstone;
    out.key = std::move(*target);
  } else {
    return InvalidArgument("record 'type' " + *type + " is not known");
  }
  return Status::Ok();
}

std::string SigningInput(const Json& record) { return std::string(kSigningPrefix) + CanonicalJson(record); }

}  // namespace

std::string RecordVersion::ToString() const { return std::to_string(ms) + "." + std::to_string(counter); }

std::optional<RecordVersion> RecordVersion::Parse(std::string_view text) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits, auto& value) {
    if (digits.empty() || digits.size() > 16 || (digits.size() > 1 && digits[0] == '0')) return false;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
    }
    return std::from_chars(digits.data(), digits.data() + digits.size(), value).ec == std::errc();
  };
  RecordVersion v;
  if (!number(text.substr(0, dot), v.ms) || !number(text.substr(dot + 1), v.counter)) return std::nullopt;
  if (v.ms >= kMaxMs) return std::nullopt;
  return v;
}

RecordVersion NextVersion(const RecordVersion& last, int64_t now_ms) {
  if (now_ms > last.ms) return {now_ms, 0};
  return {last.ms, last.counter + 1};
}

std::string_view RecordTypeName(RecordType type) {
  switch (type) {
    case RecordType::kHome:
      return "home";
    case RecordType::kDirectory:
      return "directory";
    case RecordType::kMirrors:
      return "mirrors";
    case RecordType::kBadge:
      return "badge";
    case RecordType::kTombstone:
      return "tombstone";
  }
  return "home";
}

Json MakeGenesis(const PublicKey& account_key, int64_t created, std::string_view nonce) {
  Result<std::string> multikey = Ed25519Multikey(account_key);
  return Json{{"type", "genesis"},
              {"key", multikey.ok() ? *multikey : std::string()},
              {"created", created},
              {"nonce", std::string(nonce)}};
}

std::string AccountIdOf(const Json& genesis) {
  return "a" + Base32Lower(Sha256(CanonicalJson(genesis)).substr(0, 20));
}

Result<PublicKey> GenesisKey(const Json& genesis, std::string_view account_id) {
  if (!genesis.is_object() || genesis.size() != 4 || genesis.value("type", "") != "genesis" ||
      !genesis.contains("created") || !genesis["created"].is_number_integer() || !genesis.contains("nonce") ||
      !genesis["nonce"].is_string() || genesis["nonce"].get_ref<const std::string&>().size() > kMaxIdBytes) {
    return InvalidArgument("the genesis record is malformed");
  }
  auto key = StringMember(genesis, "key");
  if (!key.ok()) return key.status();
  if (AccountIdOf(genesis) != account_id) return InvalidArgument("the genesis record is not that of this account");
  Result<PublicKey> public_key = PublicKeyFromMultikey(*key);
  if (!public_key.ok()) return InvalidArgument("the genesis key is not an Ed25519 multikey: " + public_key.status().message());
  return public_key;
}

std::string EmailHash(std::string_view address) {
  std::string lower(address);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return Sha256Hex(lower);
}

Result<RecordEnvelope> ParseEnvelope(std::string_view text) {
  if (text.size() > kMaxEnvelopeBytes) return InvalidArgument("the record is too large");
  Json envelope = Json::parse(text, nullptr, false);
  if (envelope.is_discarded()) return InvalidArgument("the record is not JSON");
  return ParseEnvelopeObject(envelope);
}

Result<RecordEnvelope> ParseEnvelopeObject(const Json& envelope) {
  if (!envelope.is_object()) return InvalidArgument("the envelope must be an object");
  for (const auto& [name, value] : envelope.items()) {
    if (name != "record" && name != "genesis" && name != "sig") {
      return InvalidArgument("the envelope has an unknown member '" + name + "'");
    }
  }
  RecordEnvelope out;
  const Json* record = Member(envelope, "record");
  if (record == nullptr) return InvalidArgument("the envelope has no 'record'");
  BP_RETURN_IF_ERROR(ReadRecord(*record, out));
  out.record = *record;
  if (const Json* genesis = Member(envelope, "genesis"); genesis != nullptr) {
    if (!genesis->is_object()) return InvalidArgument("'genesis' must be an object");
    out.genesis = *genesis;
  }
  const Json* sig = Member(envelope, "sig");
  if (sig == nullptr || !sig->is_object()) return InvalidArgument("the envelope has no 'sig' object");
  if (sig->value("alg", "") != "ed25519") return InvalidArgument("'sig.alg' must be ed25519");
  auto key_id = StringMember(*sig, "key");
  if (!key_id.ok()) return key_id.status();
  if (!key_id->starts_with(out.account + "#")) return InvalidArgument("'sig.key' is not a key of the record's account");
  auto value = StringMember(*sig, "value");
  if (!value.ok()) return value.status();
  auto raw = Base64UrlDecode(*value);
  if (!raw || raw->size() != 64) return InvalidArgument("'sig.value' is not a base64url Ed25519 signature");
  out.key_id = std::move(*key_id);
  out.signature = std::move(*raw);
  return out;
}

Result<std::string> RecordKeyOf(const Json& record) {
  RecordEnvelope parsed;
  BP_RETURN_IF_ERROR(ReadRecord(record, parsed));
  return parsed.key;
}

Result<std::string> SignRecord(const Json& record, const PrivateKey& account_key, const Json* genesis) {
  RecordEnvelope parsed;
  BP_RETURN_IF_ERROR(ReadRecord(record, parsed));
  Result<std::string> signature = SignEd25519(account_key, SigningInput(record));
  if (!signature.ok()) return signature.status();
  Json envelope = {{"record", record},
                   {"sig", {{"key", parsed.account + "#k1"}, {"alg", "ed25519"}, {"value", Base64UrlEncode(*signature)}}}};
  if (genesis != nullptr) envelope["genesis"] = *genesis;
  return envelope.dump();
}

Status VerifyEnvelope(const RecordEnvelope& envelope, const PublicKey& account_key, int64_t now_ms,
                      int64_t max_future_ms) {
  if (envelope.version.ms > now_ms + max_future_ms) {
    return InvalidArgument("the record's version " + envelope.version.ToString() + " is too far in the future");
  }
  if (!VerifyEd25519(account_key, SigningInput(envelope.record), envelope.signature).ok()) {
    return PermissionDenied("the record's signature does not verify with the account key");
  }
  return Status::Ok();
}

}  // namespace backpack::protocol
