// Arbitrary bytes through the OB 3.0 credential parser (JSON or VC-JWT) and
// the check: first with no documents, then with the same bytes served for
// every URL the credential asks for (DID documents, issuer documents, status
// lists and their keys), so the key, status-list and gzip paths run on
// hostile input too. Must never crash, and must keep the library's promises:
// the original bytes are kept verbatim (a JSON credential's embedded
// documents are spans of them), reports stay within their cap with exact
// counts, and a check with documents missing is never valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/credential.h"
#include "protocol/did.h"
#include "protocol/status_list.h"
#include "tests/fuzz/fuzz_support.h"

using backpack::Status;
using backpack::protocol::CheckCredential;
using backpack::protocol::CredentialCheckOptions;
using backpack::protocol::CredentialDocumentsToFetch;
using backpack::protocol::CredentialForm;
using backpack::protocol::FetchedDocuments;
using backpack::protocol::MessageLevel;
using backpack::protocol::ParseCredential;
using backpack::protocol::ResolvedKey;
using backpack::protocol::VerificationReport;

using backpack::fuzz::Require;
using backpack::fuzz::RequireConsistent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto parsed = ParseCredential(bytes);
  RequireConsistent(parsed.report);
  Require(parsed.badge.original == bytes);
  if (parsed.details.form == CredentialForm::kJson) {
    for (const std::string* embedded : {&parsed.badge.badge_class.original, &parsed.badge.issuer.original}) {
      Require(bytes.find(*embedded) != std::string_view::npos);
    }
  }

  CredentialCheckOptions options;
  options.now = 1'795'737'600;  // 2026-11-27T00:00:00Z
  options.verified_emails = {"Ada@Issuer.Example", "nobody@example.org"};
  options.max_status_list_bytes = 1 << 20;
  // Every Data Integrity proof with a resolvable key "verifies", so the
  // paths after a proof run as well.
  options.data_integrity_check = [](const nlohmann::json&, const nlohmann::json&, const ResolvedKey&) {
    return Status::Ok();
  };

  FetchedDocuments fetched;
  const auto empty = CheckCredential(parsed, fetched, options);
  RequireConsistent(empty.report);
  Require(empty.missing_documents.empty() || !empty.valid());

  for (int round = 0; round < 4; ++round) {
    const auto urls = CredentialDocumentsToFetch(parsed, fetched, options);
    if (urls.empty()) break;
    Require(urls.size() <= backpack::protocol::kMaxCredentialDocuments);
    for (const auto& url : urls) fetched[url] = {200, std::string(bytes), ""};
  }
  const auto full = CheckCredential(parsed, fetched, options);
  RequireConsistent(full.report);
  Require(full.missing_documents.empty() || !full.valid());

  // The pieces on their own.
  (void)backpack::protocol::ParseDidUrl(bytes.substr(0, 200));
  (void)backpack::protocol::DidWebDocumentUrl(bytes.substr(0, 200));
  (void)backpack::protocol::PublicKeyFromMultikey(bytes.substr(0, 100));
  (void)backpack::protocol::ResolveDidJwk(bytes.substr(0, 400));
  auto decoded = backpack::protocol::DecodeStatusList(bytes, 1 << 20);
  if (decoded.ok()) {
    Require(decoded->size() <= (1u << 20));
    (void)backpack::protocol::StatusListEntry(*decoded, decoded->size() * 8 - 1 + (size % 2));
  }
  return 0;
}
