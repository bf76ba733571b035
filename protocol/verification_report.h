// The report every Open Badges parse and check produces.
//
// Problems found in issuer documents are data, not failures of the call:
// they are collected here as messages named after the check that found them,
// in the shape of the 1EdTech validators' reports:
//
//   {"valid": false, "errorCount": 1, "warningCount": 0,
//    "messages": [{"name": "EXPIRED", "result": false, "messageLevel": "ERROR",
//                  "message": "...", "property": "expires"}]}
//
// `valid` is true when there is no ERROR. `result` is true for INFO notes of
// checks that passed, false for every ERROR and WARNING. `property` (a dotted
// path such as "badge.issuer.url") appears only when a property is concerned.
// The names below are the stable vocabulary; docs/badges.md says what each
// one means. The message text is for people and may change.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backpack::protocol {

namespace check {
// Reading a document.
inline constexpr std::string_view kJsonParse = "JSON_PARSE";
inline constexpr std::string_view kDocumentLimits = "DOCUMENT_LIMITS";
inline constexpr std::string_view kDetectVersion = "DETECT_VERSION";
inline constexpr std::string_view kContextProperty = "CONTEXT_PROPERTY";
inline constexpr std::string_view kTypeProperty = "TYPE_PROPERTY";
inline constexpr std::string_view kValidateProperty = "VALIDATE_PROPERTY";
inline constexpr std::string_view kVerificationObject = "VERIFICATION_OBJECT";
inline constexpr std::string_view kIssuerPropertyDependencies = "ISSUER_PROPERTY_DEPENDENCIES";
inline constexpr std::string_view kExtensions = "EXTENSIONS";
inline constexpr std::string_view kUnknownProperties = "UNKNOWN_PROPERTIES";
// Reading what an earner hands in (daemon/badge_verifier.h).
inline constexpr std::string_view kBakedImage = "BAKED_IMAGE";
inline constexpr std::string_view kJwsParse = "JWS_PARSE";
// Checking an assertion against its linked documents, the clock and the earner.
inline constexpr std::string_view kFetchDocument = "FETCH_DOCUMENT";
inline constexpr std::string_view kDocumentIdMismatch = "DOCUMENT_ID_MISMATCH";
inline constexpr std::string_view kHostedAssertion = "HOSTED_ASSERTION";
inline constexpr std::string_view kIssuerOrigin = "ISSUER_ORIGIN";
inline constexpr std::string_view kIssuedOnInFuture = "ISSUED_ON_IN_FUTURE";
inline constexpr std::string_view kExpired = "EXPIRED";
inline constexpr std::string_view kExpiresBeforeIssued = "EXPIRES_BEFORE_ISSUED";
inline constexpr std::string_view kRevoked = "REVOKED";
inline constexpr std::string_view kRevocationList = "REVOCATION_LIST";
inline constexpr std::string_view kValidateRecipient = "VALIDATE_RECIPIENT";
inline constexpr std::string_view kSigningKey = "SIGNING_KEY";
inline constexpr std::string_view kVerifySignature = "VERIFY_SIGNATURE";
// Checking an OB 3.0 credential (protocol/credential.h; docs/credentials.md).
inline constexpr std::string_view kVerifyProof = "VERIFY_PROOF";
inline constexpr std::string_view kCredentialStatus = "CREDENTIAL_STATUS";
// The report itself.
inline constexpr std::string_view kReportTruncated = "REPORT_TRUNCATED";
}  // namespace check

enum class MessageLevel { kError, kWarning, kInfo };

inline std::string_view MessageLevelName(MessageLevel level) {
  switch (level) {
    case MessageLevel::kError:
      return "ERROR";
    case MessageLevel::kWarning:
      return "WARNING";
    case MessageLevel::kInfo:
      return "INFO";
  }
  return "ERROR";
}

struct ReportMessage {
  std::string name;
  bool result = false;
  MessageLevel level = MessageLevel::kError;
  std::string message;
  std::string property;
};

// Collects messages up to a cap, so that a hostile document with thousands of
// bad entries cannot grow a report without bound. The counts stay exact past
// the cap; one REPORT_TRUNCATED note says that messages were dropped.
class VerificationReport {
 public:
  static constexpr size_t kDefaultMaxMessages = 100;

  explicit VerificationReport(size_t max_messages = kDefaultMaxMessages)
      : max_messages_(max_messages < 2 ? 2 : max_messages) {}

  void Error(std::string_view name, std::string message, std::string property = {}) {
    Add({std::string(name), false, MessageLevel::kError, std::move(message), std::move(property)});
  }
  void Warning(std::string_view name, std::string message, std::string property = {}) {
    Add({std::string(name), false, MessageLevel::kWarning, std::move(message), std::move(property)});
  }
  void Info(std::string_view name, std::string message, std::string property = {}) {
    Add({std::string(name), true, MessageLevel::kInfo, std::move(message), std::move(property)});
  }

  void Add(ReportMessage message) {
    if (message.level == MessageLevel::kError) ++error_count_;
    if (message.level == MessageLevel::kWarning) ++warning_count_;
    if (messages_.size() + 1 < max_messages_) {
      messages_.push_back(std::move(message));
    } else if (!truncated_) {
      truncated_ = true;
      messages_.push_back({std::string(check::kReportTruncated),
                           true,
                           MessageLevel::kInfo,
                           "further messages were left out; the counts include them",
                           {}});
    }
  }

  // Appends `other`'s messages, prefixing each property path with `prefix`
  // (for a linked document: "badge." for its BadgeClass, and so on).
  void Merge(const VerificationReport& other, std::string_view prefix) {
    for (const ReportMessage& m : other.messages_) {
      if (m.name == check::kReportTruncated) continue;
      ReportMessage copy = m;
      if (!copy.property.empty()) copy.property = std::string(prefix) + copy.property;
      Add(std::move(copy));
    }
    // Messages the other report dropped still count.
    error_count_ += other.error_count_ - other.CountKept(MessageLevel::kError);
    warning_count_ += other.warning_count_ - other.CountKept(MessageLevel::kWarning);
  }

  bool valid() const { return error_count_ == 0; }
  int error_count() const { return error_count_; }
  int warning_count() const { return warning_count_; }
  const std::vector<ReportMessage>& messages() const { return messages_; }

  bool Has(std::string_view name) const { return Find(name, nullptr); }
  bool HasError(std::string_view name) const {
    const MessageLevel level = MessageLevel::kError;
    return Find(name, &level);
  }
  bool HasWarning(std::string_view name) const {
    const MessageLevel level = MessageLevel::kWarning;
    return Find(name, &level);
  }

  // The report as one JSON object (shape in the comment at the top).
  std::string ToJson() const;

 private:
  bool Find(std::string_view name, const MessageLevel* level) const {
    for (const ReportMessage& m : messages_) {
      if (m.name == name && (level == nullptr || m.level == *level)) return true;
    }
    return false;
  }
  int CountKept(MessageLevel level) const {
    int n = 0;
    for (const ReportMessage& m : messages_) n += m.level == level ? 1 : 0;
    return n;
  }

  size_t max_messages_;
  std::vector<ReportMessage> messages_;
  int error_count_ = 0;
  int warning_count_ = 0;
  bool truncated_ = false;
};

}  // namespace backpack::protocol
