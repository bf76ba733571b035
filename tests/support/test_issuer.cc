#include "tests/support/test_issuer.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "protocol/baking.h"
#include "protocol/did.h"
#include "protocol/encoding.h"
#include "protocol/jws.h"
#include "protocol/png.h"
#include "protocol/recipient.h"
#include "tests/support/data_integrity_signer.h"
#include "tests/support/local_http_server.h"

namespace backpack::testing {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr char kContext[] = "https://w3id.org/openbadges/v2";
constexpr char kJsonLd[] = "application/ld+json";
constexpr char kLongLived[] = "max-age=300";  // Profile, BadgeClass, key, image
constexpr char kNoCache[] = "no-cache";       // revocation list, hosted assertions
constexpr char kRevocationReason[] = "revoked by the test issuer";

// Test support cannot recover from a broken fixture: say why and stop.
[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "TestIssuer: %s\n", what.c_str());
  std::abort();
}

protocol::PrivateKey NewKey() {
  Result<protocol::PrivateKey> key = protocol::PrivateKey::Generate(protocol::KeyType::kRsa, 2048);
  if (!key.ok()) Fail("cannot generate an RSA key: " + key.status().ToString());
  return std::move(key).value();
}

std::string IsoTime(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string RandomUuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) Fail("RAND_bytes failed");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string hex = protocol::HexEncode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

void AppendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string PngChunk(std::string_view type, std::string_view data) {
  std::string out;
  AppendU32(out, static_cast<uint32_t>(data.size()));
  out.append(type);
  out.append(data);
  AppendU32(out, protocol::PngCrc32(std::string(type) + std::string(data)));
  return out;
}

// A 16x16 8-bit greyscale PNG; the pixel rows go in one stored (uncompressed)
// deflate block, so no compressor is needed.
std::string PlainPng() {
  constexpr uint32_t kSide = 16;
  std::string ihdr;
  AppendU32(ihdr, kSide);
  AppendU32(ihdr, kSide);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit greyscale, deflate, no filter, no interlace
  std::string rows;
  for (uint32_t y = 0; y < kSide; ++y) {
    rows.push_back('\0');  // filter type None
    for (uint32_t x = 0; x < kSide; ++x) rows.push_back(static_cast<char>(((x ^ y) * 16) & 0xff));
  }
  std::string zlib = "\x78\x01";
  zlib.push_back('\x01');  // BFINAL, stored
  const auto len = static_cast<uint16_t>(rows.size());
  zlib.push_back(static_cast<char>(len & 0xff));
  zlib.push_back(static_cast<char>(len >> 8));
  zlib.push_back(static_cast<char>(~len & 0xff));
  zlib.push_back(static_cast<char>((~len >> 8) & 0xff));
  zlib += rows;
  uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char c : rows) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  AppendU32(zlib, (b << 16) | a);
  return std::string(protocol::kPngSignature) + PngChunk("IHDR", ihdr) + PngChunk("IDAT", zlib) + PngChunk("IEND", "");
}

constexpr char kPlainSvg[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\" viewBox=\"0 0 16 16\">"
    "<circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#3a7\"/></svg>\n";

std::string Bake(const std::string& image, const std::string& payload, protocol::BadgeKind kind) {
  Result<protocol::PayloadForm> form = protocol::ClassifyPayload(payload);
  if (!form.ok()) Fail("cannot bake a payload that is not JSON, a JWS or a URL: " + form.status().ToString());
  protocol::BakedPayload baked;
  baked.kind = kind;
  baked.form = *form;
  baked.data = payload;
  Result<std::string> out = protocol::BakeBadge(image, baked);
  if (!out.ok()) Fail("baking failed: " + out.status().ToString());
  return std::move(out).value();
}

protocol::PrivateKey NewEd25519Key() {
  Result<protocol::PrivateKey> key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
  if (!key.ok()) Fail("cannot generate an Ed25519 key: " + key.status().ToString());
  return std::move(key).value();
}

std::string Gzip(std::string_view bytes) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    Fail("deflateInit2 failed");
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(bytes.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) Fail("deflate failed");
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Attaches an eddsa-rdfc-2022 proof made with `key` (method `method`).
nlohmann::json SignDataIntegrity(nlohmann::json document, const protocol::PrivateKey& key,
                                 const std::string& method) {
  Result<nlohmann::json> signed_document = testing::SignDataIntegrity(
      std::move(document), testing::EddsaRdfc2022ProofOptions(method, "2023-11-14T22:13:20Z"), key);
  if (!signed_document.ok()) Fail("cannot sign a credential: " + signed_document.status().ToString());
  return std::move(signed_document).value();
}

std::string WithoutFragment(const std::string& url) { return url.substr(0, url.find('#')); }

// "scheme://authority" of a URL, for telling this issuer's URLs from others.
std::string OriginOf(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  return url.substr(0, url.find('/', scheme + 3));
}

// One answer, the same whether served over HTTP or in memory.
struct Answer {
  int status = 200;  // 0: not this issuer's host (no server would answer)
  std::string content_type = {};
  std::string cache_control = {};
  std::string body = {};
  std::string etag = {};  // set on 200 answers
};

}  // namespace

struct TestIssuer::Impl {
  mutable std::mutex mu;
  std::string base_url;
  protocol::PrivateKey key = NewKey();
  std::string png = PlainPng();
  std::map<std::string, std::string> hosted;   // URL -> assertion JSON, as awarded
  std::map<std::string, std::string> revoked;  // assertion id -> reason
  std::map<std::string, int> requests;         // full URL -> requests answered
  bool down = false;
  std::optional<int> max_age;  // SetMaxAge: one Cache-Control for every document
  int next_assertion = 1;
  // OB 3.0: the did:key issuer, its status list (one bit per credential
  // awarded with a status, 131,072 entries) and the signed list as served.
  protocol::PrivateKey ed_key = NewEd25519Key();
  std::string did;
  std::string did_method;  // the verification method: did#multikey
  std::map<std::string, uint64_t> status_index;  // credential id -> bit
  uint64_t next_status = 0;
  std::string status_list_json;  // signed; rebuilt when a bit changes

  // The server, once started.
  std::unique_ptr<LocalHttpServer> server;

  std::string IssuerUrl() const { return base_url + "/issuer"; }
  std::string BadgeClassUrl() const { return base_url + "/badge-class"; }
  std::string KeyUrl() const { return base_url + "/keys/1"; }
  std::string RevocationListUrl() const { return base_url + "/revocations"; }
  std::string ImageUrl() const { return base_url + "/images/badge.png"; }
  std::string StatusListUrl() const { return base_url + "/status/1"; }

  void InitDid() {
    if (!did.empty()) return;
    Result<std::string> multikey = protocol::Ed25519Multikey(ed_key.public_key());
    if (!multikey.ok()) Fail("cannot encode the Ed25519 key: " + multikey.status().ToString());
    did = "did:key:" + *multikey;
    did_method = did + "#" + *multikey;
  }

  // The signed BitstringStatusListCredential with the revoked bits set.
  std::string StatusListJson() {
    if (!status_list_json.empty()) return status_list_json;
    InitDid();
    std::string bits(protocol::kMinStatusListBits / 8, '\0');
    for (const auto& [id, index] : status_index) {
      if (revoked.contains(id)) bits[index / 8] = static_cast<char>(bits[index / 8] | (0x80 >> (index % 8)));
    }
    nlohmann::json list = {
        {"@context", {"https://www.w3.org/ns/credentials/v2"}},
        {"id", StatusListUrl()},
        {"type", {"VerifiableCredential", "BitstringStatusListCredential"}},
        {"issuer", did},
        {"validFrom", "2023-11-14T22:13:20Z"},
        {"credentialSubject",
         {{"id", StatusListUrl() + "#list"},
          {"type", "BitstringStatusList"},
          {"statusPurpose", "revocation"},
          {"encodedList", "u" + protocol::Base64UrlEncode(Gzip(bits))}}},
    };
    status_list_json = SignDataIntegrity(std::move(list), ed_key, did_method).dump();
    return status_list_json;
  }

  nlohmann::json Credential(const CredentialOptions& options, const std::string& id) {
    InitDid();
    nlohmann::json identifier = {{"type", "IdentityObject"}, {"identityType", "emailAddress"},
                                 {"hashed", options.hashed}};
    if (options.hashed) {
      identifier["identityHash"] = protocol::HashIdentity(options.email, options.salt);
      if (!options.salt.empty()) identifier["salt"] = options.salt;
    } else {
      identifier["identityHash"] = options.email;
    }
    nlohmann::json c = {
        {"@context",
         {"https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"}},
        {"id", id},
        {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
        {"issuer", {{"id", did}, {"type", {"Profile"}}, {"name", "Test Issuer"}, {"url", base_url}}},
        {"validFrom", IsoTime(options.valid_from)},
        {"name", options.achievement_name},
        {"credentialSubject",
         {{"type", {"AchievementSubject"}},
          {"identifier", {identifier}},
          {"achievement",
           {{"id", base_url + "/achievements/1"},
            {"type", {"Achievement"}},
            {"name", options.achievement_name},
            {"description", "Awarded by the test issuer."},
            {"criteria", {{"narrative", "Be part of a test."}}},
            {"image", {{"id", ImageUrl()}, {"type", "Image"}}}}}}},
    };
    if (options.valid_until) c["validUntil"] = IsoTime(*options.valid_until);
    if (options.with_status) {
      auto [it, added] = status_index.emplace(id, next_status);
      if (added) ++next_status;
      c["credentialStatus"] = {{"id", StatusListUrl() + "#" + std::to_string(it->second)},
                               {"type", "BitstringStatusListEntry"},
                               {"statusPurpose", "revocation"},
                               {"statusListIndex", std::to_string(it->second)},
                               {"statusListCredential", StatusListUrl()}};
    }
    return c;
  }

  OrderedJson Assertion(const AwardOptions& options, const std::string& id, OrderedJson verification) const {
    OrderedJson recipient;
    recipient["type"] = "email";
    recipient["hashed"] = options.hashed;
    if (options.hashed) {
      if (!options.salt.empty()) recipient["salt"] = options.salt;
      recipient["identity"] = protocol::HashIdentity(options.email, options.salt);
    } else {
      recipient["identity"] = options.email;
    }
    OrderedJson a;
    a["@context"] = kContext;
    a["type"] = "Assertion";
    a["id"] = id;
    a["recipient"] = std::move(recipient);
    a["badge"] = BadgeClassUrl();
    a["verification"] = std::move(verification);
    a["issuedOn"] = IsoTime(options.issued_on);
    if (options.expires) a["expires"] = IsoTime(*options.expires);
    OrderedJson extra = OrderedJson::parse(options.extra_json.empty() ? "{}" : options.extra_json, nullptr, false);
    if (!extra.is_object()) Fail("AwardOptions::extra_json is not a JSON object: " + options.extra_json);
    for (auto& [name, value] : extra.items()) a[name] = value;
    return a;
  }

  std::string ProfileJson() const {
    OrderedJson p;
    p["@context"] = kContext;
    p["type"] = "Issuer";
    p["id"] = IssuerUrl();
    p["name"] = "Test Issuer";
    p["url"] = base_url;
    p["email"] = "badges@example.org";
    p["publicKey"] = KeyUrl();
    p["revocationList"] = RevocationListUrl();
    return p.dump();
  }

  std::string BadgeClassJson() const {
    OrderedJson c;
    c["@context"] = kContext;
    c["type"] = "BadgeClass";
    c["id"] = BadgeClassUrl();
    c["name"] = "Test Badge";
    c["description"] = "Awarded by the test issuer.";
    c["image"] = ImageUrl();
    c["criteria"] = {{"narrative", "Be part of a test."}};
    c["issuer"] = IssuerUrl();
    return c.dump();
  }

  std::string KeyJson() const {
    OrderedJson k;
    k["@context"] = kContext;
    k["type"] = "CryptographicKey";
    k["id"] = KeyUrl();
    k["owner"] = IssuerUrl();
    k["publicKeyPem"] = key.public_key().ToPem();
    return k.dump();
  }

  std::string RevocationListJson() const {
    OrderedJson entries = OrderedJson::array();
    for (const auto& [id, reason] : revoked) entries.push_back({{"id", id}, {"revocationReason", reason}});
    OrderedJson l;
    l["@context"] = kContext;
    l["id"] = RevocationListUrl();
    l["type"] = "RevocationList";
    l["issuer"] = IssuerUrl();
    l["revokedAssertions"] = std::move(entries);
    return l.dump();
  }

  // Answers a request for `url` and counts it. Caller holds `mu`.
  Answer Respond(const std::string& url) {
    if (OriginOf(url) != base_url) return {.status = 0};
    ++requests[url];
    Answer a;
    if (down) {
      a.status = 503;
      a.content_type = "text/plain";
      a.body = "the issuer is down";
      return a;
    }
    a.content_type = kJsonLd;
    a.cache_control = kLongLived;
    if (url == IssuerUrl()) {
      a.body = ProfileJson();
    } else if (url == BadgeClassUrl()) {
      a.body = BadgeClassJson();
    } else if (url == KeyUrl()) {
      a.body = KeyJson();
    } else if (url == RevocationListUrl()) {
      a.cache_control = kNoCache;
      a.body = RevocationListJson();
    } else if (url == StatusListUrl()) {
      a.cache_control = kNoCache;
      a.content_type = "application/vc+ld+json";
      a.body = StatusListJson();
    } else if (url == ImageUrl()) {
      a.content_type = "image/png";
      a.body = png;
    } else if (auto it = hosted.find(url); it != hosted.end()) {
      a.cache_control = kNoCache;
      if (auto gone = revoked.find(url); gone != revoked.end()) {
        // What issuers commonly serve for a withdrawn assertion: 410 and the
        // assertion marked as revoked.
        OrderedJson body = OrderedJson::parse(it->second);
        body["revoked"] = true;
        body["revocationReason"] = gone->second;
        a.status = 410;
        a.body = body.dump();
      } else {
        a.body = it->second;
      }
    } else {
      a.status = 404;
      a.content_type = "text/plain";
      a.cache_control.clear();
      a.body = "not found";
    }
    if (max_age && (a.status == 200 || a.status == 410)) a.cache_control = "max-age=" + std::to_string(*max_age);
    if (a.status == 200) a.etag = "\"" + protocol::Sha256Hex(a.body).substr(0, 16) + "\"";
    return a;
  }

  Answer RespondLocked(const std::string& url) {
    std::lock_guard lock(mu);
    return Respond(url);
  }

  // An answer over HTTP: the request target is a path under base_url.
  LocalResponse Serve(const std::string& target) {
    std::lock_guard lock(mu);
    Answer a = Respond(base_url + target);
    LocalResponse response{.status = a.status,
                           .content_type = std::move(a.content_type),
                           .body = std::move(a.body),
                           .etag = std::move(a.etag)};
    if (!a.cache_control.empty()) response.headers.emplace_back("Cache-Control", a.cache_control);
    if (a.status == 503) response.headers.emplace_back("Retry-After", "1");
    return response;
  }
};

TestIssuer::TestIssuer(std::string base_url) : impl_(std::make_unique<Impl>()) {
  impl_->base_url = std::move(base_url);
}

TestIssuer::~TestIssuer() {
  if (impl_->server) impl_->server->Stop();
}

bool TestIssuer::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->server) return false;
  auto server = std::make_unique<LocalHttpServer>(
      [impl = impl_.get()](const std::string& target) { return impl->Serve(target); });
  if (!server->Start()) return false;
  impl_->base_url = server->base_url();
  impl_->server = std::move(server);
  return true;
}

const std::string& TestIssuer::base_url() const { return impl_->base_url; }

std::string TestIssuer::IssuerUrl() const {
  std::lock_guard lock(impl_->mu);
  return impl_->IssuerUrl();
}
std::string TestIssuer::BadgeClassUrl() const {
  std::lock_guard lock(impl_->mu);
  return impl_->BadgeClassUrl();
}
std::string TestIssuer::KeyUrl() const {
  std::lock_guard lock(impl_->mu);
  return impl_->KeyUrl();
}
std::string TestIssuer::RevocationListUrl() const {
  std::lock_guard lock(impl_->mu);
  return impl_->RevocationListUrl();
}

std::string TestIssuer::AwardHosted(const AwardOptions& options) {
  std::lock_guard lock(impl_->mu);
  const std::string url = impl_->base_url + "/assertions/" + std::to_string(impl_->next_assertion++);
  const OrderedJson assertion = impl_->Assertion(options, url, {{"type", "HostedBadge"}});
  impl_->hosted[url] = assertion.dump();
  return url;
}

std::string TestIssuer::HostedJson(const std::string& url) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->hosted.find(url);
  return it == impl_->hosted.end() ? std::string() : it->second;
}

std::string TestIssuer::AwardSigned(const AwardOptions& options) {
  std::string payload;
  std::optional<protocol::PrivateKey> key;
  {
    std::lock_guard lock(impl_->mu);
    payload =
        impl_->Assertion(options, "urn:uuid:" + RandomUuid(), {{"type", "SignedBadge"}, {"creator", impl_->KeyUrl()}})
            .dump();
    key = impl_->key;
  }
  // Signing takes a while: outside the lock, so threads sign in parallel
  // and the server keeps answering.
  Result<std::string> jws = protocol::Sign(*key, payload);
  if (!jws.ok()) Fail("signing failed: " + jws.status().ToString());
  return std::move(jws).value();
}

std::string TestIssuer::BakePng(const std::string& payload, protocol::BadgeKind kind) const {
  return Bake(impl_->png, payload, kind);
}

std::string TestIssuer::BakeSvg(const std::string& payload, protocol::BadgeKind kind) const {
  return Bake(kPlainSvg, payload, kind);
}

std::string TestIssuer::UnbakedPng() const { return impl_->png; }

std::string TestIssuer::UnbakedSvg() const { return kPlainSvg; }

void TestIssuer::Revoke(const std::string& assertion_id) {
  std::lock_guard lock(impl_->mu);
  impl_->revoked[assertion_id] = kRevocationReason;
  if (impl_->status_index.contains(assertion_id)) impl_->status_list_json.clear();
}

std::string TestIssuer::AwardCredential(const CredentialOptions& options, CredentialProofKind proof) {
  nlohmann::json credential;
  std::optional<protocol::PrivateKey> key;
  std::string method;
  {
    std::lock_guard lock(impl_->mu);
    credential = impl_->Credential(options, options.id.empty() ? "urn:uuid:" + RandomUuid() : options.id);
    key = impl_->ed_key;
    method = impl_->did_method;
  }
  if (proof == CredentialProofKind::kDataIntegrity) return SignDataIntegrity(std::move(credential), *key, method).dump();
  // VC-JWT (VC-JOSE): the payload is the credential, with the registered
  // claims OB 3.0 asks for.
  credential["iss"] = credential["issuer"]["id"];
  credential["jti"] = credential["id"];
  credential["nbf"] = options.valid_from;
  if (options.valid_until) credential["exp"] = *options.valid_until;
  protocol::JwsHeaderFields fields;
  fields.key_id = method;
  fields.type = "JWT";
  Result<std::string> jws = protocol::Sign(*key, credential.dump(), fields);
  if (!jws.ok()) Fail("signing a VC-JWT failed: " + jws.status().ToString());
  return std::move(jws).value();
}

std::string TestIssuer::IssuerDid() const {
  std::lock_guard lock(impl_->mu);
  impl_->InitDid();
  return impl_->did;
}

std::string TestIssuer::StatusListUrl() const {
  std::lock_guard lock(impl_->mu);
  return impl_->StatusListUrl();
}

std::string TestIssuer::Tamper(const std::string& credential_json, const std::string& pointer,
                               const std::string& value) {
  nlohmann::json credential = nlohmann::json::parse(credential_json, nullptr, false);
  if (!credential.is_object()) Fail("Tamper: not a JSON credential");
  credential[nlohmann::json::json_pointer(pointer)] = value;
  return credential.dump();
}

void TestIssuer::SetDown(bool down) {
  std::lock_guard lock(impl_->mu);
  impl_->down = down;
}

void TestIssuer::SetMaxAge(int seconds) {
  std::lock_guard lock(impl_->mu);
  impl_->max_age = seconds;
}

void TestIssuer::RotateKey() {
  protocol::PrivateKey fresh = NewKey();  // slow: outside the lock
  std::lock_guard lock(impl_->mu);
  impl_->key = std::move(fresh);
}

int TestIssuer::RequestCount(const std::string& url) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->requests.find(url);
  return it == impl_->requests.end() ? 0 : it->second;
}

Result<FetchResult> TestIssuer::Fetch(const std::string& url) {
  const std::string target = WithoutFragment(url);
  const Answer a = impl_->RespondLocked(target);
  if (a.status == 0) return Unavailable("fetch: cannot resolve the host of " + target);
  if (a.status == 404) return NotFound("fetch: " + target + " answered 404");
  if (a.status == 503) return Unavailable("fetch: " + target + " answered 503");
  FetchResult result;
  result.final_url = target;
  result.status = a.status;
  result.content_type = a.content_type;
  result.body = a.body;
  result.etag = a.etag;
  return result;
}

DocumentFetch TestIssuer::AsFetch() {
  return [this](const std::string& url, FetchFreshness) { return Fetch(url); };
}

}  // namespace backpack::testing
