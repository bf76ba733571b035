#include "protocol/credential.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "base/time.h"
#include "protocol/email_address.h"
#include "protocol/encoding.h"
#include "protocol/json_depth.h"
#include "protocol/jws.h"
#include "protocol/recipient.h"

namespace backpack::protocol {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kVcdm11Context = "https://www.w3.org/2018/credentials/v1";
constexpr std::string_view kVcdm20Context = "https://www.w3.org/ns/credentials/v2";
constexpr std::string_view kOb30ContextPrefix = "https://purl.imsglobal.org/spec/ob/v3p0/context";

// ---------------------------------------------------------------------------
// Text helpers

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool HasSpaceOrControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

// At most `max` bytes of `text`, cut on a UTF-8 character boundary.
std::string Abbreviate(std::string_view text, size_t max = 60) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

std::string Quote(std::string_view text) { return "\"" + Abbreviate(text) + "\""; }

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 10; ++i) out += (i > 0 ? ", " : "") + Abbreviate(names[i], 40);
  if (names.size() > 10) out += ", ...";
  return out;
}

// An absolute URI (RFC 3986): a scheme, ':', then something, no spaces.
bool IsUri(std::string_view text) {
  if (text.empty() || text.size() > 4096 || HasSpaceOrControl(text) || !IsAlpha(text[0])) return false;
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return false;
  return std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(colon),
                     [](char c) { return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.'; });
}

bool IsHttpsUrl(std::string_view text) {
  return text.size() > 8 && text.starts_with("https://") && !HasSpaceOrControl(text);
}

std::string WithoutFragment(std::string_view url) { return std::string(url.substr(0, url.find('#'))); }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n' ||
                           text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

std::string_view WithoutBom(std::string_view bytes) {
  return bytes.starts_with("\xEF\xBB\xBF") ? bytes.substr(3) : bytes;
}

// ---------------------------------------------------------------------------
// JSON intake and verbatim spans

bool ReadJsonObject(std::string_view bytes, const ParseLimits& limits, VerificationReport& report, Json* out,
                    std::string_view what = "the document") {
  if (bytes.size() > limits.max_document_bytes) {
    report.Error(check::kDocumentLimits, std::string(what) + " is " + std::to_string(bytes.size()) +
                                             " bytes, over the limit of " + std::to_string(limits.max_document_bytes));
    return false;
  }
  const std::string_view text = WithoutBom(bytes);
  if (JsonNestingDepth(text, limits.max_depth) > limits.max_depth) {
    report.Error(check::kDocumentLimits,
                 std::string(what) + " nests deeper than " + std::to_string(limits.max_depth) + " levels");
    return false;
  }
  try {
    *out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    *out = Json(Json::value_t::discarded);
  }
  if (out->is_discarded()) {
    report.Error(check::kJsonParse, std::string(what) + " is not valid JSON (RFC 8259, UTF-8)");
    return false;
  }
  if (!out->is_object()) {
    report.Error(check::kJsonParse, std::string(what) + " is not a JSON object");
    return false;
  }
  return true;
}

// The spans of the elements of a JSON array given as validated text.
std::vector<std::string_view> RawElements(std::string_view array) {
  std::vector<std::string_view> out;
  size_t i = 0;
  auto skip_space = [&array](size_t at) {
    while (at < array.size() && (array[at] == ' ' || array[at] == '\t' || array[at] == '\n' || array[at] == '\r')) ++at;
    return at;
  };
  i = skip_space(i);
  if (i >= array.size() || array[i] != '[') return out;
  i = skip_space(i + 1);
  while (i < array.size() && array[i] != ']') {
    const size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < array.size(); ++i) {
      const char c = array[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    size_t end = i;
    while (end > start && (array[end - 1] == ' ' || array[end - 1] == '\t' || array[end - 1] == '\n' ||
                           array[end - 1] == '\r')) {
      --end;
    }
    out.emplace_back(array.substr(start, end - start));
    if (i < array.size() && array[i] == ',') i = skip_space(i + 1);
  }
  return out;
}

std::string RawOf(std::string_view parent, std::string_view key) {
  std::optional<std::string_view> raw = RawJsonMember(parent, key);
  return raw ? std::string(*raw) : std::string();
}

// The i-th element's span when `member` of `parent` is an array, else the
// member's own span (a single value where an array is allowed).
std::string RawElementOf(std::string_view parent, std::string_view member, size_t index, bool is_array) {
  std::optional<std::string_view> raw = RawJsonMember(parent, member);
  if (!raw) return {};
  if (!is_array) return std::string(*raw);
  std::vector<std::string_view> elements = RawElements(*raw);
  return index < elements.size() ? std::string(elements[index]) : std::string();
}

const Json* Get(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const std::string* GetString(const Json& object, std::string_view key) {
  const Json* value = Get(object, key);
  return value != nullptr && value->is_string() ? &value->get_ref<const std::string&>() : nullptr;
}

// An array member as a list of elements; a single value counts as one.
std::vector<const Json*> AsList(const Json* value) {
  std::vector<const Json*> out;
  if (value == nullptr) return out;
  if (value->is_array()) {
    for (const Json& element : *value) out.push_back(&element);
  } else {
    out.push_back(value);
  }
  return out;
}

std::vector<std::string> TypeValues(const Json& object) {
  std::vector<std::string> out;
  for (const Json* entry : AsList(Get(object, "type"))) {
    if (entry->is_string()) out.push_back(entry->get<std::string>());
  }
  return out;
}

bool HasType(const std::vector<std::string>& types, std::initializer_list<std::string_view> wanted) {
  return std::any_of(types.begin(), types.end(), [&wanted](const std::string& type) {
    return std::find(wanted.begin(), wanted.end(), type) != wanted.end();
  });
}

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string Indexed(const std::string& path, size_t index, bool is_array) {
  return is_array ? path + "[" + std::to_string(index) + "]" : path;
}

// ---------------------------------------------------------------------------
// Reading the credential

// Reads the members of one object, reporting under a dotted path.
class Fields {
 public:
  Fields(const Json& object, std::string path, VerificationReport& report)
      : object_(object), path_(std::move(path)), report_(report) {}

  const Json& object() const { return object_; }
  const std::string& path() const { return path_; }
  std::string At(std::string_view name) const { return Join(path_, name); }

  // A string member. Missing: an error when required. Another JSON type: an error.
  std::string String(std::string_view name, bool required = false) const {
    const Json* value = Get(object_, name);
    if (value == nullptr) {
      if (required) report_.Error(check::kValidateProperty, At(name) + " is missing", At(name));
      return {};
    }
    if (!value->is_string()) {
      report_.Error(check::kValidateProperty, At(name) + " must be a string", At(name));
      return {};
    }
    return value->get<std::string>();
  }

  std::string Uri(std::string_view name, bool required = false) const {
    std::string value = String(name, required);
    if (!value.empty() && !IsUri(value)) {
      report_.Error(check::kValidateProperty, At(name) + " " + Quote(value) + " is not a URI", At(name));
    }
    return value;
  }

  std::optional<int64_t> DateTime(std::string_view name, bool required = false) const {
    const std::string text = String(name, required);
    if (text.empty()) return std::nullopt;
    const std::optional<BadgeTime> time = ParseBadgeTime(text);
    if (!time || !time->has_time || !time->has_zone || time->from_unix) {
      report_.Error(check::kValidateProperty,
                    At(name) + " " + Quote(text) + " is not a date-time with a zone (2010-01-01T00:00:00Z)", At(name));
      return std::nullopt;
    }
    return time->unix_seconds;
  }

  // An image: a URL string or an Image object {id, type: Image}.
  std::string Image(std::string_view name) const {
    const Json* value = Get(object_, name);
    if (value == nullptr) return {};
    if (value->is_string()) return value->get<std::string>();
    if (!value->is_object()) {
      report_.Error(check::kValidateProperty, At(name) + " must be a URL or an Image object", At(name));
      return {};
    }
    Fields image(*value, At(name), report_);
    image.RequireType({"Image"});
    return image.Uri("id", true);
  }

  // `type` must include one of `expected` (string or array of strings).
  void RequireType(std::initializer_list<std::string_view> expected, bool required = true) const {
    const Json* type = Get(object_, "type");
    if (type == nullptr) {
      if (required) report_.Error(check::kTypeProperty, At("type") + " is missing", At("type"));
      return;
    }
    const bool well_formed =
        type->is_string() ||
        (type->is_array() && !type->empty() && std::all_of(type->begin(), type->end(), [](const Json& t) {
           return t.is_string();
         }));
    if (!well_formed) {
      report_.Error(check::kTypeProperty, At("type") + " must be a string or an array of strings", At("type"));
      return;
    }
    if (!HasType(TypeValues(object_), expected)) {
      std::vector<std::string> names(expected.begin(), expected.end());
      report_.Error(check::kTypeProperty, At("type") + " does not include " + JoinNames(names), At("type"));
    }
  }

  // Each element of an array member (a single object is accepted as one).
  template <typename F>
  void Each(std::string_view name, F&& read) const {
    const Json* value = Get(object_, name);
    if (value == nullptr) return;
    const bool is_array = value->is_array();
    size_t index = 0;
    for (const Json* element : AsList(value)) {
      const std::string path = Indexed(At(name), index, is_array);
      if (!element->is_object()) {
        report_.Error(check::kValidateProperty, path + " must be an object", path);
      } else {
        read(Fields(*element, path, report_), index, is_array);
      }
      ++index;
    }
  }

  std::vector<std::string> Strings(std::string_view name) const {
    std::vector<std::string> out;
    const Json* value = Get(object_, name);
    if (value == nullptr) return out;
    for (const Json* element : AsList(value)) {
      if (element->is_string()) {
        out.push_back(element->get<std::string>());
      } else {
        report_.Error(check::kValidateProperty, At(name) + " must hold strings", At(name));
        break;
      }
    }
    return out;
  }

  // Names of members outside `known`: compact or absolute IRIs as
  // extensions, the rest as unknown.
  KeptProperties Kept(std::initializer_list<std::string_view> known) const {
    KeptProperties kept;
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      const std::string& key = it.key();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      (key.find(':') != std::string::npos ? kept.extensions : kept.unknown).push_back(key);
    }
    return kept;
  }

  VerificationReport& report() const { return report_; }

 private:
  const Json& object_;
  std::string path_;
  VerificationReport& report_;
};

void NoteKept(const KeptProperties& kept, const std::string& path, VerificationReport& report) {
  if (!kept.extensions.empty()) {
    report.Info(check::kExtensions, "extension properties kept verbatim: " + JoinNames(kept.extensions), path);
  }
  if (!kept.unknown.empty()) {
    report.Info(check::kUnknownProperties,
                "properties outside the OB 3.0 vocabulary kept verbatim: " + JoinNames(kept.unknown), path);
  }
}

void ReadIdentifierEntries(const Fields& f, std::string_view name) {
  f.Each(name, [](const Fields& entry, size_t, bool) {
    entry.RequireType({"IdentifierEntry"});
    entry.String("identifier", true);
    entry.String("identifierType", true);
  });
}

void ReadAlignments(const Fields& f, std::vector<Alignment>* out) {
  f.Each("alignment", [out](const Fields& a, size_t, bool) {
    a.RequireType({"Alignment"});
    Alignment alignment;
    alignment.target_name = a.String("targetName", true);
    alignment.target_url = a.Uri("targetUrl", true);
    alignment.target_description = a.String("targetDescription");
    alignment.target_framework = a.String("targetFramework");
    alignment.target_code = a.String("targetCode");
    if (out != nullptr) out->push_back(std::move(alignment));
  });
}

// A Profile written inline (issuer, achievement creator, subject source,
// parentOrg). Returns the id.
void ReadProfile(const Fields& f, Issuer* out, int depth = 0) {
  f.RequireType({"Profile"});
  const std::string id = f.Uri("id", out != nullptr);
  ReadIdentifierEntries(f, "otherIdentifier");
  if (const Json* parent = Get(f.object(), "parentOrg"); parent != nullptr && depth < 4) {
    if (parent->is_object()) {
      ReadProfile(Fields(*parent, f.At("parentOrg"), f.report()), nullptr, depth + 1);
    } else if (!parent->is_string()) {
      f.report().Error(check::kValidateProperty, f.At("parentOrg") + " must be a Profile", f.At("parentOrg"));
    }
  }
  if (out == nullptr) return;
  out->id = id;
  out->name = f.String("name");
  out->url = f.Uri("url");
  out->email = f.String("email");
  out->telephone = f.String("phone");
  out->description = f.String("description");
  out->image = f.Image("image");
  out->kept = f.Kept({"@context", "id", "type", "name", "url", "phone", "description", "endorsement",
                      "endorsementJwt", "image", "email", "address", "otherIdentifier", "official", "parentOrg",
                      "familyName", "givenName", "additionalName", "patronymicName", "honorificPrefix",
                      "honorificSuffix", "familyNamePrefix", "dateOfBirth"});
  NoteKept(out->kept, f.path(), f.report());
}

void ReadAchievement(const Fields& f, std::string_view raw, Badge& badge, CredentialDetails& details) {
  BadgeClass& achievement = badge.badge_class;
  f.RequireType({"Achievement"});
  achievement.id = f.Uri("id", true);
  achievement.name = f.String("name", true);
  achievement.description = f.String("description", true);
  achievement.image = f.Image("image");
  if (const Json* criteria = Get(f.object(), "criteria"); criteria == nullptr) {
    f.report().Error(check::kValidateProperty, f.At("criteria") + " is missing", f.At("criteria"));
  } else if (!criteria->is_object()) {
    f.report().Error(check::kValidateProperty, f.At("criteria") + " must be a Criteria object", f.At("criteria"));
  } else {
    Fields c(*criteria, f.At("criteria"), f.report());
    achievement.criteria.url = c.Uri("id");
    achievement.criteria.narrative = c.String("narrative");
  }
  ReadAlignments(f, &achievement.alignment);
  achievement.tags = f.Strings("tag");
  achievement.version = f.String("version");
  achievement.language = f.String("inLanguage");
  details.achievement_type = f.String("achievementType");
  if (const Json* creator = Get(f.object(), "creator"); creator != nullptr) {
    if (creator->is_object()) {
      Fields profile(*creator, f.At("creator"), f.report());
      ReadProfile(profile, nullptr);
      details.achievement_creator = profile.String("id");
    } else {
      f.report().Error(check::kValidateProperty, f.At("creator") + " must be a Profile", f.At("creator"));
    }
  }
  ReadIdentifierEntries(f, "otherIdentifier");
  f.Each("related", [&badge](const Fields& related, size_t, bool) {
    related.RequireType({"Related"});
    const std::string id = related.Uri("id", true);
    if (!id.empty()) badge.related.push_back(id);
  });
  f.Each("resultDescription", [](const Fields& rd, size_t, bool) {
    rd.RequireType({"ResultDescription"});
    rd.Uri("id", true);
    rd.String("name", true);
    rd.String("resultType", true);
    ReadAlignments(rd, nullptr);
    rd.Each("rubricCriterionLevel", [](const Fields& level, size_t, bool) {
      level.RequireType({"RubricCriterionLevel"});
      level.Uri("id", true);
      level.String("name", true);
      ReadAlignments(level, nullptr);
    });
  });
  achievement.issuer_id = badge.issuer.id;
  achievement.embedded = true;
  achievement.original = std::string(raw);
  achievement.kept = f.Kept({"id", "type", "alignment", "achievementType", "creator", "creditsAvailable", "criteria",
                             "description", "endorsement", "endorsementJwt", "fieldOfStudy", "humanCode", "image",
                             "inLanguage", "name", "otherIdentifier", "related", "resultDescription",
                             "specialization", "tag", "version", "@language"});
  NoteKept(achievement.kept, f.path(), f.report());
}

IdentityType IdentityTypeFor(std::string_view identity_type) {
  if (identity_type == "emailAddress") return IdentityType::kEmail;
  if (identity_type == "url") return IdentityType::kUrl;
  if (identity_type == "phone" || identity_type == "telephone") return IdentityType::kTelephone;
  return IdentityType::kId;
}

void ReadIdentifiers(const Fields& subject, CredentialDetails& details) {
  subject.Each("identifier", [&details](const Fields& f, size_t index, bool) {
    if (index >= kMaxRecipientIdentifiers) return;
    f.RequireType({"IdentityObject"});
    CredentialIdentifier identifier;
    identifier.identity_type = f.String("identityType", true);
    identifier.identity.type = IdentityTypeFor(identifier.identity_type);
    identifier.identity.identity = f.String("identityHash", true);
    if (const Json* hashed = Get(f.object(), "hashed"); hashed == nullptr) {
      f.report().Error(check::kValidateProperty, f.At("hashed") + " is missing", f.At("hashed"));
    } else if (!hashed->is_boolean()) {
      f.report().Error(check::kValidateProperty, f.At("hashed") + " must be a boolean", f.At("hashed"));
    } else {
      identifier.identity.hashed = hashed->get<bool>();
    }
    if (Get(f.object(), "salt") != nullptr) identifier.identity.salt = f.String("salt");
    details.identifiers.push_back(std::move(identifier));
  });
}

void ReadEvidence(const Fields& f, Badge& badge) {
  f.Each("evidence", [&badge](const Fields& e, size_t, bool) {
    e.RequireType({"Evidence"});
    Evidence evidence;
    evidence.id = e.Uri("id");
    evidence.narrative = e.String("narrative");
    evidence.name = e.String("name");
    evidence.description = e.String("description");
    badge.evidence.push_back(std::move(evidence));
  });
}

void ReadSubject(const Fields& f, std::string_view raw, Badge& badge, CredentialDetails& details) {
  details.subject_id = f.Uri("id", details.kind == CredentialKind::kEndorsement);
  details.subject_types = TypeValues(f.object());
  if (details.kind == CredentialKind::kEndorsement) {
    f.RequireType({"EndorsementSubject"});
    details.endorsement_comment = f.String("endorsementComment");
    return;
  }
  f.RequireType({"AchievementSubject"});
  ReadIdentifiers(f, details);
  badge.narrative = f.String("narrative");
  f.Image("image");
  f.Each("result", [&details, raw](const Fields& r, size_t index, bool is_array) {
    r.RequireType({"Result"});
    ReadAlignments(r, nullptr);
    details.results.push_back(RawElementOf(raw, "result", index, is_array));
  });
  if (const Json* source = Get(f.object(), "source"); source != nullptr) {
    if (source->is_object()) {
      ReadProfile(Fields(*source, f.At("source"), f.report()), nullptr);
    } else {
      f.report().Error(check::kValidateProperty, f.At("source") + " must be a Profile", f.At("source"));
    }
  }
  if (const Json* achievement = Get(f.object(), "achievement"); achievement == nullptr) {
    f.report().Error(check::kValidateProperty, f.At("achievement") + " is missing", f.At("achievement"));
  } else if (!achievement->is_object()) {
    f.report().Error(check::kValidateProperty, f.At("achievement") + " must be an Achievement object",
                     f.At("achievement"));
  } else {
    ReadAchievement(Fields(*achievement, f.At("achievement"), f.report()), RawOf(raw, "achievement"), badge, details);
  }
  // The recipient for display and the old single-recipient model: the first
  // email identifier, else the first identifier of any kind.
  for (const CredentialIdentifier& identifier : details.identifiers) {
    if (identifier.identity.type == IdentityType::kEmail) {
      badge.recipient = identifier.identity;
      return;
    }
  }
  if (!details.identifiers.empty()) {
    badge.recipient = details.identifiers.front().identity;
  } else if (details.subject_id.starts_with("mailto:")) {
    badge.recipient = RecipientIdentity{IdentityType::kEmail, false, std::nullopt, details.subject_id.substr(7)};
  } else if (!details.subject_id.empty()) {
    badge.recipient = RecipientIdentity{IdentityType::kId, false, std::nullopt, details.subject_id};
  }
}

StatusMethod StatusMethodFor(std::string_view type) {
  if (type == "1EdTechRevocationList") return StatusMethod::kRevocationList;
  if (type == "BitstringStatusListEntry") return StatusMethod::kBitstring;
  if (type == "StatusList2021Entry") return StatusMethod::kStatusList2021;
  return StatusMethod::kUnknown;
}

void ReadStatuses(const Fields& f, CredentialDetails& details) {
  f.Each("credentialStatus", [&details](const Fields& s, size_t index, bool) {
    if (index >= kMaxCredentialStatuses) return;
    CredentialStatusEntry entry;
    entry.type = s.String("type", true);
    entry.method = StatusMethodFor(entry.type);
    entry.id = s.String("id");
    if (entry.method == StatusMethod::kRevocationList) {
      entry.list_url = s.Uri("id", true);
      entry.purpose = "revocation";
    } else if (entry.method != StatusMethod::kUnknown) {
      entry.list_url = s.Uri("statusListCredential", true);
      entry.purpose = s.String("statusPurpose", true);
      const Json* index_value = Get(s.object(), "statusListIndex");
      std::string digits;
      if (index_value != nullptr && index_value->is_string()) digits = index_value->get<std::string>();
      if (index_value != nullptr && index_value->is_number_unsigned()) digits = std::to_string(index_value->get<uint64_t>());
      if (index_value == nullptr) {
        s.report().Error(check::kValidateProperty, s.At("statusListIndex") + " is missing", s.At("statusListIndex"));
      } else if (digits.empty() || digits.size() > 15 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
        s.report().Error(check::kValidateProperty, s.At("statusListIndex") + " must be a non-negative integer",
                         s.At("statusListIndex"));
      } else {
        entry.index = std::stoull(digits);
      }
      if (const Json* size = Get(s.object(), "statusSize"); size != nullptr) {
        if (!size->is_number_integer() || size->get<int64_t>() < 1 || size->get<int64_t>() > 8) {
          s.report().Error(check::kValidateProperty, s.At("statusSize") + " must be an integer from 1 to 8",
                           s.At("statusSize"));
        } else {
          entry.size = static_cast<int>(size->get<int64_t>());
        }
      }
    }
    details.statuses.push_back(std::move(entry));
  });
}

void ReadProofs(const Fields& f, std::string_view raw, CredentialDetails& details) {
  f.Each("proof", [&details, raw](const Fields& p, size_t index, bool is_array) {
    if (index >= kMaxCredentialProofs) return;
    CredentialProof proof;
    proof.type = p.String("type", true);
    proof.cryptosuite = p.String("cryptosuite");
    proof.verification_method = p.String("verificationMethod");
    proof.proof_purpose = p.String("proofPurpose");
    proof.original = RawElementOf(raw, "proof", index, is_array);
    details.proofs.push_back(std::move(proof));
  });
}

void ReadContext(const Json& document, CredentialKind kind, CredentialDetails& details, Badge& badge,
                 VerificationReport& report) {
  const Json* context = Get(document, "@context");
  if (context == nullptr) {
    report.Error(check::kContextProperty, "@context is missing", "@context");
    return;
  }
  std::vector<std::string> urls;
  for (const Json* entry : AsList(context)) {
    if (entry->is_string()) {
      urls.push_back(entry->get<std::string>());
    } else if (entry->is_object()) {
      if (const std::string* language = GetString(*entry, "@language"); language != nullptr) badge.language = *language;
    }
  }
  const std::string first = urls.empty() ? "" : urls.front();
  const bool first_is_string = !AsList(context).empty() && AsList(context).front()->is_string();
  if (first_is_string && first == kVcdm20Context) {
    details.data_model = DataModel::kV2_0;
  } else if (first_is_string && first == kVcdm11Context) {
    details.data_model = DataModel::kV1_1;
    report.Warning(check::kContextProperty,
                   "the credential uses the VCDM 1.1 context; OB 3.0 credentials are now issued with VCDM 2.0",
                   "@context");
  } else {
    report.Error(check::kContextProperty,
                 "the first @context must be " + std::string(kVcdm20Context) + " (or, VCDM 1.1, " +
                     std::string(kVcdm11Context) + ")",
                 "@context");
  }
  if (kind == CredentialKind::kAchievement || kind == CredentialKind::kEndorsement) {
    const bool has_ob = std::any_of(urls.begin(), urls.end(),
                                    [](const std::string& url) { return url.starts_with(kOb30ContextPrefix); });
    if (!has_ob) {
      report.Error(check::kContextProperty,
                   "@context names no Open Badges 3.0 context (" + std::string(kOb30ContextPrefix) + "...)",
                   "@context");
    }
  }
}

CredentialKind KindOf(const std::vector<std::string>& types) {
  if (HasType(types, {"OpenBadgeCredential", "AchievementCredential"})) return CredentialKind::kAchievement;
  if (HasType(types, {"EndorsementCredential"})) return CredentialKind::kEndorsement;
  if (HasType(types, {"VerifiableCredential"})) return CredentialKind::kOther;
  return CredentialKind::kUnknown;
}

// Reads a verifiable credential object. With `badge_only`, a credential
// that is not an Open Badge is a TYPE_PROPERTY error; status lists are read
// without it.
void ReadCredential(const Json& doc, std::string_view raw, bool badge_only, ParsedCredential& out) {
  Badge& badge = out.badge;
  CredentialDetails& details = out.details;
  VerificationReport& report = out.report;
  const Fields f(doc, "", report);

  details.types = TypeValues(doc);
  details.kind = KindOf(details.types);
  if (badge_only) {
    f.RequireType({"VerifiableCredential"});
    if (details.kind == CredentialKind::kOther || details.kind == CredentialKind::kUnknown) {
      if (Get(doc, "type") != nullptr) {
        report.Error(check::kTypeProperty,
                     "type includes none of OpenBadgeCredential, AchievementCredential, EndorsementCredential: "
                     "not an Open Badges credential",
                     "type");
      }
    } else {
      report.Info(check::kDetectVersion,
                  details.kind == CredentialKind::kEndorsement ? "an OB 3.0 EndorsementCredential"
                                                                : "an OB 3.0 OpenBadgeCredential");
    }
  }
  ReadContext(doc, details.kind, details, badge, report);

  badge.id = f.Uri("id", badge_only);
  details.name = f.String("name", badge_only && details.kind == CredentialKind::kEndorsement);
  details.description = f.String("description");
  badge.image = f.Image("image");
  details.awarded_date = f.DateTime("awardedDate");

  if (const Json* issuer = Get(doc, "issuer"); issuer == nullptr) {
    report.Error(check::kValidateProperty, "issuer is missing", "issuer");
  } else if (issuer->is_string()) {
    badge.issuer.id = f.Uri("issuer", true);
  } else if (issuer->is_object()) {
    ReadProfile(Fields(*issuer, "issuer", report), &badge.issuer);
    badge.issuer.embedded = true;
    badge.issuer.original = RawOf(raw, "issuer");
  } else {
    report.Error(check::kValidateProperty, "issuer must be a URI or a Profile", "issuer");
  }

  // Validity: VCDM 2.0 validFrom/validUntil, VCDM 1.1 issuanceDate/expirationDate.
  const bool v11 = details.data_model == DataModel::kV1_1;
  const std::optional<int64_t> valid_from = f.DateTime("validFrom");
  const std::optional<int64_t> issuance = f.DateTime("issuanceDate");
  const std::optional<int64_t> valid_until = f.DateTime("validUntil");
  const std::optional<int64_t> expiration = f.DateTime("expirationDate");
  badge.issued_on = valid_from ? valid_from : issuance;
  badge.expires = valid_until ? valid_until : expiration;
  const bool has_from = Get(doc, "validFrom") != nullptr;
  const bool has_issuance = Get(doc, "issuanceDate") != nullptr;
  if (badge_only && !has_from && !has_issuance) {
    report.Error(check::kValidateProperty, std::string(v11 ? "issuanceDate" : "validFrom") + " is missing",
                 v11 ? "issuanceDate" : "validFrom");
  } else if (!v11 && !has_from && has_issuance) {
    report.Warning(check::kValidateProperty, "a VCDM 2.0 credential gives issuanceDate instead of validFrom",
                   "issuanceDate");
  }

  if (const Json* subject = Get(doc, "credentialSubject"); subject == nullptr) {
    report.Error(check::kValidateProperty, "credentialSubject is missing", "credentialSubject");
  } else if (!subject->is_object()) {
    report.Error(check::kValidateProperty, "credentialSubject must be one object", "credentialSubject");
  } else if (badge_only && details.kind != CredentialKind::kOther && details.kind != CredentialKind::kUnknown) {
    ReadSubject(Fields(*subject, "credentialSubject", report), RawOf(raw, "credentialSubject"), badge, details);
  }
  if (badge.badge_class.issuer_id.empty()) badge.badge_class.issuer_id = badge.issuer.id;

  ReadEvidence(f, badge);
  for (std::string_view name : {"endorsement", "endorsementJwt"}) {
    const Json* value = Get(doc, name);
    if (value == nullptr) continue;
    const std::optional<std::string_view> list = RawJsonMember(raw, name);
    if (!value->is_array() || !list) {
      report.Error(check::kValidateProperty, std::string(name) + " must be an array", std::string(name));
      continue;
    }
    for (std::string_view element : RawElements(*list)) badge.endorsements.emplace_back(element);
  }
  ReadStatuses(f, details);
  ReadProofs(f, raw, details);
  details.credential_schema = RawOf(raw, "credentialSchema");
  details.refresh_service = RawOf(raw, "refreshService");
  details.terms_of_use = RawOf(raw, "termsOfUse");
  f.Each("credentialSchema", [](const Fields& s, size_t, bool) {
    s.Uri("id", true);
    s.String("type", true);
  });
  f.Each("refreshService", [](const Fields& s, size_t, bool) {
    s.Uri("id", true);
    s.String("type", true);
  });
  f.Each("termsOfUse", [](const Fields& s, size_t, bool) { s.String("type", true); });

  badge.kept = f.Kept({"@context", "id", "type", "name", "description", "image", "awardedDate", "credentialSubject",
                       "endorsement", "endorsementJwt", "evidence", "issuer", "validFrom", "validUntil",
                       "issuanceDate", "expirationDate", "proof", "credentialStatus"});
  // Understood but not acted on: kept like properties outside the vocabulary.
  NoteKept(badge.kept, "", report);
}

// VC-JWT registered claims: in the VCDM 1.1 encoding they stand for
// credential properties the "vc" claim may leave out; in either encoding,
// when both are given they must agree.
void ReadJwtClaims(const Json& payload, Json& credential, ParsedCredential& out) {
  CredentialDetails& details = out.details;
  VerificationReport& report = out.report;
  const bool vc_form = details.form == CredentialForm::kJwtVc;
  auto claim_string = [&payload, &report](const char* name) -> std::string {
    const Json* value = Get(payload, name);
    if (value == nullptr) return {};
    if (!value->is_string()) {
      report.Error(check::kValidateProperty, std::string("the JWT claim ") + name + " must be a string", name);
      return {};
    }
    return value->get<std::string>();
  };
  auto claim_time = [&payload, &report](const char* name) -> std::optional<int64_t> {
    const Json* value = Get(payload, name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number() || !(value->get<double>() >= 0 && value->get<double>() < 253402300800.0)) {
      report.Error(check::kValidateProperty, std::string("the JWT claim ") + name + " must be a NumericDate", name);
      return std::nullopt;
    }
    return static_cast<int64_t>(value->get<double>());
  };
  details.jwt_iss = claim_string("iss");
  details.jwt_jti = claim_string("jti");
  details.jwt_sub = claim_string("sub");
  details.jwt_nbf = claim_time("nbf");
  details.jwt_exp = claim_time("exp");
  if (!vc_form) return;
  // VCDM 1.1 VC-JWT: fill what the "vc" claim leaves out.
  if (!details.jwt_iss.empty() && Get(credential, "issuer") == nullptr) credential["issuer"] = details.jwt_iss;
  if (!details.jwt_jti.empty() && Get(credential, "id") == nullptr) credential["id"] = details.jwt_jti;
  if (!details.jwt_sub.empty()) {
    Json* subject = credential.contains("credentialSubject") ? &credential["credentialSubject"] : nullptr;
    if (subject != nullptr && subject->is_object() && Get(*subject, "id") == nullptr) (*subject)["id"] = details.jwt_sub;
  }
  if (details.jwt_nbf && Get(credential, "issuanceDate") == nullptr && Get(credential, "validFrom") == nullptr) {
    credential["issuanceDate"] = FormatRfc3339(*details.jwt_nbf);
  }
  if (details.jwt_exp && Get(credential, "expirationDate") == nullptr && Get(credential, "validUntil") == nullptr) {
    credential["expirationDate"] = FormatRfc3339(*details.jwt_exp);
  }
}

void CheckJwtClaims(ParsedCredential& out) {
  const CredentialDetails& details = out.details;
  const Badge& badge = out.badge;
  VerificationReport& report = out.report;
  const bool vc_form = details.form == CredentialForm::kJwtVc;
  if (vc_form && details.jwt_iss.empty()) report.Error(check::kValidateProperty, "the JWT has no iss claim", "iss");
  if (!details.jwt_iss.empty() && !badge.issuer.id.empty() && details.jwt_iss != badge.issuer.id) {
    report.Error(check::kValidateProperty,
                 "the JWT claim iss " + Quote(details.jwt_iss) + " is not the issuer " + Quote(badge.issuer.id), "iss");
  }
  if (!details.jwt_jti.empty() && !badge.id.empty() && details.jwt_jti != badge.id) {
    report.Error(check::kValidateProperty,
                 "the JWT claim jti " + Quote(details.jwt_jti) + " is not the credential id " + Quote(badge.id), "jti");
  }
  if (!details.jwt_sub.empty() && !details.subject_id.empty() && details.jwt_sub != details.subject_id) {
    report.Error(check::kValidateProperty,
                 "the JWT claim sub " + Quote(details.jwt_sub) + " is not credentialSubject.id " +
                     Quote(details.subject_id),
                 "sub");
  }
  if (vc_form && details.jwt_nbf && badge.issued_on && *details.jwt_nbf != *badge.issued_on) {
    report.Error(check::kValidateProperty, "the JWT claim nbf is not the credential's issuanceDate", "nbf");
  }
  if (vc_form && details.jwt_exp && badge.expires && *details.jwt_exp != *badge.expires) {
    report.Error(check::kValidateProperty, "the JWT claim exp is not the credential's expirationDate", "exp");
  }
}

// Parses bytes as a credential. `badge_only`: an Open Badge is expected
// (false for status list credentials).
ParsedCredential Parse(std::string_view bytes, const ParseLimits& limits, bool badge_only) {
  ParsedCredential out{Badge{}, CredentialDetails{}, VerificationReport(limits.max_messages), nullptr, nullptr};
  out.badge.spec_version = SpecVersion::kV3_0;
  out.badge.original = std::string(bytes);
  if (bytes.size() > limits.max_document_bytes) {
    out.report.Error(check::kDocumentLimits, "the credential is " + std::to_string(bytes.size()) +
                                                 " bytes, over the limit of " +
                                                 std::to_string(limits.max_document_bytes));
    return out;
  }
  const std::string_view text = Trim(WithoutBom(bytes));
  auto document = std::make_shared<Json>();
  std::string credential_text;  // the credential object's JSON text
  if (!text.empty() && text.front() == '{') {
    out.details.form = CredentialForm::kJson;
    if (!ReadJsonObject(text, limits, out.report, document.get(), "the credential")) return out;
    credential_text = std::string(text);
  } else {
    Result<Jws> jws = Jws::Parse(text);
    if (!jws.ok()) {
      out.report.Error(check::kJwsParse, "neither credential JSON nor a compact VC-JWT: " + jws.status().message());
      return out;
    }
    auto shared = std::make_shared<const Jws>(std::move(*jws));
    Json payload;
    if (!ReadJsonObject(shared->payload(), limits, out.report, &payload, "the VC-JWT payload")) return out;
    const Json* vc = Get(payload, "vc");
    if (vc != nullptr && vc->is_object()) {
      out.details.form = CredentialForm::kJwtVc;
      *document = *vc;
      credential_text = RawOf(shared->payload(), "vc");
    } else {
      out.details.form = CredentialForm::kJwtDoc;
      *document = payload;
      credential_text = shared->payload();
    }
    if (const std::optional<std::string>& typ = shared->type(); typ && *typ != "JWT" && *typ != "vc+jwt" &&
                                                               *typ != "application/vc+jwt" &&
                                                               *typ != "vc+ld+jwt") {
      out.report.Warning(check::kValidateProperty, "the JOSE header typ " + Quote(*typ) + " is not JWT or vc+jwt",
                         "typ");
    }
    out.jws = shared;
    ReadJwtClaims(payload, *document, out);
    CredentialProof proof;
    proof.jwt = true;
    proof.type = "JWT";
    proof.cryptosuite = shared->algorithm();
    proof.verification_method = shared->key_id().value_or("");
    out.details.proofs.push_back(std::move(proof));
  }
  out.document = document;
  ReadCredential(*document, credential_text, badge_only, out);
  if (out.details.form != CredentialForm::kJson) {
    // The JWS signature is the first proof; embedded ones follow.
    CheckJwtClaims(out);
  }
  if (!out.details.proofs.empty()) {
    out.badge.verification.type = VerificationType::kSigned;
    out.badge.verification.creator = out.details.proofs.front().verification_method;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Resolving documents and keys

class Resolver {
 public:
  Resolver(const FetchedDocuments& fetched, const CredentialCheckOptions& options)
      : fetched_(fetched), options_(options) {}

  // The fetched document at `url`: nullptr and `pending` when not fetched yet
  // (it is asked for), nullptr and `error` when it failed.
  const FetchedDocument* Raw(const std::string& url, std::string* error, bool* pending) {
    *pending = false;
    auto it = fetched_.find(url);
    if (it == fetched_.end()) {
      if (std::find(missing_.begin(), missing_.end(), url) == missing_.end()) {
        if (missing_.size() + asked_fetched_.size() >= kMaxCredentialDocuments) {
          *error = "more than " + std::to_string(kMaxCredentialDocuments) + " documents would be needed";
          return nullptr;
        }
        missing_.push_back(url);
      }
      *pending = true;
      return nullptr;
    }
    asked_fetched_.insert(url);
    const FetchedDocument& doc = it->second;
    if (doc.status < 200 || doc.status > 299) {
      *error = doc.status == 0 ? "it could not be fetched" : "it answered HTTP " + std::to_string(doc.status);
      failed_[url] = *error;
      return nullptr;
    }
    return &doc;
  }

  // The fetched document at `url` parsed as a JSON object.
  const Json* JsonDocument(const std::string& url, std::string* error, bool* pending) {
    const FetchedDocument* raw = Raw(url, error, pending);
    if (raw == nullptr) return nullptr;
    auto cached = parsed_.find(url);
    if (cached == parsed_.end()) {
      Json doc;
      VerificationReport scratch;
      if (!ReadJsonObject(raw->body, options_.limits, scratch, &doc)) {
        doc = Json(Json::value_t::discarded);
      }
      cached = parsed_.emplace(url, std::move(doc)).first;
    }
    if (cached->second.is_discarded()) {
      *error = "it is not a JSON object within the size and depth limits";
      failed_[url] = *error;
      return nullptr;
    }
    return &cached->second;
  }

  struct KeyLookup {
    enum State { kFound, kPending, kFailed } state = kFailed;
    std::vector<ResolvedKey> keys;
    std::string error;
    bool not_issuers = false;  // failed because the key is not the issuer's
  };

  // The controller document of `controller_id` (a did:web DID or the
  // issuer's HTTPS id); nullptr with `lookup` set when absent.
  const Json* ControllerDocument(const std::string& controller_id, KeyLookup& lookup) {
    std::string url;
    if (controller_id.starts_with("did:web:")) {
      Result<std::string> mapped = DidWebDocumentUrl(controller_id);
      if (!mapped.ok()) return Fail(lookup, mapped.status().message());
      url = *mapped;
    } else if (IsHttpsUrl(controller_id)) {
      url = controller_id;
    } else {
      return Fail(lookup, "the issuer " + Quote(controller_id) + " has no document to hold keys (not did:web or HTTPS)");
    }
    key_documents_.insert(url);
    std::string error;
    bool pending = false;
    const Json* doc = JsonDocument(url, &error, &pending);
    if (pending) {
      lookup.state = KeyLookup::kPending;
      lookup.error = "the document " + Abbreviate(url) + " has not been fetched";
      return nullptr;
    }
    if (doc == nullptr) return Fail(lookup, "the document " + Abbreviate(url) + " of " + Quote(controller_id) + ": " + error);
    return doc;
  }

  // The key a verification method reference names, if it is the issuer's.
  KeyLookup ResolveMethod(std::string reference, const std::string& issuer_id, bool fetch) {
    KeyLookup lookup;
    if (reference.starts_with("#") && !issuer_id.empty()) reference = issuer_id + reference;
    if (issuer_id.empty()) return Failed("the credential names no issuer to tie a key to");
    if (reference.starts_with("did:")) {
      Result<DidUrl> did = ParseDidUrl(reference);
      if (!did.ok()) return Failed(did.status().message());
      if (did->did != issuer_id) {
        return NotIssuers("verification method " + Quote(reference) + " belongs to " + Quote(did->did) +
                          ", not to the issuer " + Quote(issuer_id));
      }
      Result<ResolvedKey> key = InvalidArgument("");
      if (did->method == "key") {
        key = ResolveDidKey(reference);
      } else if (did->method == "jwk") {
        key = ResolveDidJwk(reference);
      } else if (did->method == "web") {
        if (!fetch) return Deferred();
        const Json* doc = ControllerDocument(did->did, lookup);
        if (doc == nullptr) return lookup;
        key = FindAssertionMethod(*doc, did->did, reference);
      } else {
        return Failed("the DID method " + Quote(did->method) + " is not supported (did:key, did:jwk, did:web are)");
      }
      if (!key.ok()) return Failed(key.status().message());
      return Found(std::move(*key));
    }
    if (reference.starts_with("https://")) {
      const std::string controller = WithoutFragment(reference);
      if (controller == reference) {
        return Failed("key URL " + Quote(reference) + " names no verification method (no #fragment)");
      }
      if (controller != issuer_id) {
        return NotIssuers("verification method " + Quote(reference) + " is not in the issuer " + Quote(issuer_id) +
                          "'s own document");
      }
      if (!fetch) return Deferred();
      const Json* doc = ControllerDocument(controller, lookup);
      if (doc == nullptr) return lookup;
      Result<ResolvedKey> key = FindAssertionMethod(*doc, controller, reference);
      if (!key.ok()) return Failed(key.status().message());
      return Found(std::move(*key));
    }
    if (!IsUri(reference)) return Failed("verification method " + Quote(reference) + " is not a URL or DID");
    return Failed("verification method " + Quote(reference) + " has an unsupported scheme (https and did are)");
  }

  // Every assertion key the issuer's own identifier names.
  KeyLookup IssuerKeys(const std::string& issuer_id) {
    KeyLookup lookup;
    if (issuer_id.starts_with("did:key:") || issuer_id.starts_with("did:jwk:")) {
      Result<ResolvedKey> key = issuer_id.starts_with("did:key:") ? ResolveDidKey(issuer_id) : ResolveDidJwk(issuer_id);
      if (!key.ok()) return Failed(key.status().message());
      return Found(std::move(*key));
    }
    const Json* doc = ControllerDocument(issuer_id, lookup);
    if (doc == nullptr) return lookup;
    Result<std::vector<ResolvedKey>> keys = AssertionMethods(*doc, issuer_id);
    if (!keys.ok()) return Failed(keys.status().message());
    lookup.state = KeyLookup::kFound;
    lookup.keys = std::move(*keys);
    return lookup;
  }

  const std::vector<std::string>& missing() const { return missing_; }
  const std::map<std::string, std::string>& failed() const { return failed_; }
  bool IsKeyDocument(const std::string& url) const { return key_documents_.count(url) > 0; }
  const CredentialCheckOptions& options() const { return options_; }

 private:
  static KeyLookup Failed(std::string error) {
    KeyLookup lookup;
    lookup.error = std::move(error);
    return lookup;
  }
  static KeyLookup NotIssuers(std::string error) {
    KeyLookup lookup = Failed(std::move(error));
    lookup.not_issuers = true;
    return lookup;
  }
  static KeyLookup Deferred() {
    KeyLookup lookup;
    lookup.state = KeyLookup::kPending;
    lookup.error = "not resolved";
    return lookup;
  }
  static KeyLookup Found(ResolvedKey key) {
    KeyLookup lookup;
    lookup.state = KeyLookup::kFound;
    lookup.keys.push_back(std::move(key));
    return lookup;
  }
  static const Json* Fail(KeyLookup& lookup, std::string error) {
    lookup.state = KeyLookup::kFailed;
    lookup.error = std::move(error);
    return nullptr;
  }

  const FetchedDocuments& fetched_;
  const CredentialCheckOptions& options_;
  std::vector<std::string> missing_;
  std::set<std::string> asked_fetched_;
  std::map<std::string, std::string> failed_;
  std::map<std::string, Json> parsed_;
  std::set<std::string> key_documents_;
};

// ---------------------------------------------------------------------------
// Proofs

std::string ProofLabel(const CredentialProof& proof, size_t index) {
  std::string label = "proof " + std::to_string(index + 1) + " (" + (proof.type.empty() ? "untyped" : proof.type);
  if (!proof.cryptosuite.empty()) label += " " + proof.cryptosuite;
  return label + ")";
}

bool SameKey(const PublicKey& a, const PublicKey& b) { return a.ToJwk() == b.ToJwk(); }

ProofResult CheckJwtProof(const ParsedCredential& parsed, const std::string& issuer_id, Resolver& resolver) {
  ProofResult result;
  result.proof = parsed.details.proofs.front();
  const Jws& jws = *parsed.jws;
  std::optional<PublicKey> embedded;
  if (jws.has_embedded_jwk()) {
    if (jws.header().at("jwk").is_object() && jws.header().at("jwk").contains("d")) {
      result.outcome = ProofOutcome::kMalformed;
      result.message = "the JOSE header's jwk holds a private key (\"d\")";
      return result;
    }
    Result<PublicKey> key = jws.EmbeddedJwk();
    if (!key.ok()) {
      result.outcome = ProofOutcome::kMalformed;
      result.message = "the JOSE header's jwk is not a usable key: " + key.status().message();
      return result;
    }
    embedded = std::move(*key);
  }
  std::optional<ResolvedKey> chosen;
  if (jws.key_id() && !jws.key_id()->empty()) {
    Resolver::KeyLookup lookup = resolver.ResolveMethod(*jws.key_id(), issuer_id, true);
    if (lookup.state == Resolver::KeyLookup::kPending) {
      result.outcome = ProofOutcome::kKeyUnresolved;
      result.message = "kid " + Quote(*jws.key_id()) + ": " + lookup.error;
      return result;
    }
    if (lookup.state == Resolver::KeyLookup::kFailed) {
      result.outcome = lookup.not_issuers ? ProofOutcome::kKeyNotIssuers : ProofOutcome::kKeyUnresolved;
      result.message = "kid " + Quote(*jws.key_id()) + ": " + lookup.error;
      if (lookup.not_issuers && embedded) result.signature_valid = Verify(jws, *embedded).ok();
      return result;
    }
    chosen = std::move(lookup.keys.front());
    if (embedded && !SameKey(*embedded, chosen->key)) {
      result.outcome = ProofOutcome::kMalformed;
      result.message = "the JOSE header's jwk is not the key its kid names";
      return result;
    }
  } else if (embedded) {
    // A key carried in the token proves nothing until the issuer's own
    // identifier names the same key.
    Resolver::KeyLookup lookup = resolver.IssuerKeys(issuer_id);
    if (lookup.state == Resolver::KeyLookup::kPending) {
      result.outcome = ProofOutcome::kKeyUnresolved;
      result.message = "the issuer's keys: " + lookup.error;
      return result;
    }
    if (lookup.state == Resolver::KeyLookup::kFound) {
      for (ResolvedKey& key : lookup.keys) {
        if (SameKey(key.key, *embedded)) {
          chosen = std::move(key);
          break;
        }
      }
    }
    if (!chosen) {
      result.outcome = ProofOutcome::kKeyNotIssuers;
      result.signature_valid = Verify(jws, *embedded).ok();
      result.message = "the key in the JOSE header (jwk) cannot be tied to the issuer " + Quote(issuer_id) + ": " +
                       (lookup.state == Resolver::KeyLookup::kFailed
                            ? lookup.error
                            : "its document lists no such key under assertionMethod");
      return result;
    }
  } else {
    result.outcome = ProofOutcome::kMalformed;
    result.message = "the JOSE header has neither kid nor jwk";
    return result;
  }
  result.key_id = chosen->id;
  const Status verified = Verify(jws, chosen->key);
  result.signature_valid = verified.ok();
  if (verified.ok()) {
    result.outcome = ProofOutcome::kVerified;
    result.message = "the VC-JWT signature (" + jws.algorithm() + ") verifies with " + Abbreviate(chosen->id, 100);
  } else {
    result.outcome = ProofOutcome::kSignatureInvalid;
    result.message = "the VC-JWT signature does not verify with " + Abbreviate(chosen->id, 100) + ": " +
                     verified.message();
  }
  return result;
}

ProofResult CheckEmbeddedProof(const ParsedCredential& parsed, const CredentialProof& proof, size_t index,
                               const std::string& issuer_id, Resolver& resolver) {
  ProofResult result;
  result.proof = proof;
  if (proof.type.empty()) {
    result.outcome = ProofOutcome::kMalformed;
    result.message = "the proof has no type";
    return result;
  }
  if (proof.proof_purpose != "assertionMethod") {
    result.outcome = ProofOutcome::kMalformed;
    result.message = "proofPurpose is " + Quote(proof.proof_purpose) + "; a credential's proof must be assertionMethod";
    return result;
  }
  if (proof.verification_method.empty()) {
    result.outcome = ProofOutcome::kMalformed;
    result.message = "the proof has no verificationMethod";
    return result;
  }
  const bool hook = static_cast<bool>(resolver.options().data_integrity_check);
  // Without a way to check the proof, keys that need a fetch are not looked up.
  Resolver::KeyLookup lookup = resolver.ResolveMethod(proof.verification_method, issuer_id, hook);
  if (lookup.state == Resolver::KeyLookup::kFailed) {
    result.outcome = lookup.not_issuers ? ProofOutcome::kKeyNotIssuers : ProofOutcome::kKeyUnresolved;
    result.message = lookup.error;
    return result;
  }
  if (!hook) {
    result.outcome = ProofOutcome::kNotChecked;
    result.message = "Data Integrity proofs are not checked here (no data_integrity_check given)";
    if (lookup.state == Resolver::KeyLookup::kFound) result.key_id = lookup.keys.front().id;
    return result;
  }
  if (lookup.state == Resolver::KeyLookup::kPending) {
    result.outcome = ProofOutcome::kKeyUnresolved;
    result.message = lookup.error;
    return result;
  }
  const ResolvedKey& key = lookup.keys.front();
  result.key_id = key.id;
  const Json* proof_json = nullptr;
  const Json* proofs = Get(*parsed.document, "proof");
  if (proofs != nullptr) {
    std::vector<const Json*> list = AsList(proofs);
    if (index < list.size()) proof_json = list[index];
  }
  if (proof_json == nullptr) {
    result.outcome = ProofOutcome::kMalformed;
    result.message = "the proof object could not be read";
    return result;
  }
  Status checked = Internal("the proof check threw");
  try {
    checked = resolver.options().data_integrity_check(*parsed.document, *proof_json, key);
  } catch (...) {
    // The contract says the hook does not throw; a check that breaks it still
    // must not pass.
  }
  if (checked.ok()) {
    result.outcome = ProofOutcome::kVerified;
    result.message = "the proof verifies with " + Abbreviate(key.id, 100);
  } else if (checked.code() == StatusCode::kFailedPrecondition) {
    result.outcome = ProofOutcome::kNotChecked;
    result.message = checked.message();
  } else {
    result.outcome = ProofOutcome::kSignatureInvalid;
    result.message = "the proof does not verify with " + Abbreviate(key.id, 100) + ": " + checked.message();
  }
  return result;
}

std::vector<ProofResult> CheckProofs(const ParsedCredential& parsed, Resolver& resolver) {
  std::vector<ProofResult> results;
  const std::string& issuer_id = parsed.badge.issuer.id;
  for (size_t i = 0; i < parsed.details.proofs.size(); ++i) {
    const CredentialProof& proof = parsed.details.proofs[i];
    if (proof.jwt) {
      results.push_back(CheckJwtProof(parsed, issuer_id, resolver));
    } else {
      const size_t embedded_index = parsed.details.form == CredentialForm::kJson ? i : i - 1;
      results.push_back(CheckEmbeddedProof(parsed, proof, embedded_index, issuer_id, resolver));
    }
  }
  return results;
}

bool AnyVerified(const std::vector<ProofResult>& results) {
  return std::any_of(results.begin(), results.end(),
                     [](const ProofResult& r) { return r.outcome == ProofOutcome::kVerified; });
}

void ReportProofs(const std::vector<ProofResult>& results, VerificationReport& report) {
  if (results.empty()) {
    report.Error(check::kVerifyProof, "the credential has no proof: nothing shows that its issuer wrote it", "proof");
    return;
  }
  std::string reasons;
  for (size_t i = 0; i < results.size(); ++i) {
    reasons += (reasons.empty() ? "" : "; ") + ProofLabel(results[i].proof, i) + ": " + results[i].message;
  }
  if (AnyVerified(results)) {
    for (size_t i = 0; i < results.size(); ++i) {
      const std::string text = ProofLabel(results[i].proof, i) + ": " + results[i].message;
      report.Info(check::kVerifyProof, results[i].outcome == ProofOutcome::kVerified ? text : "not used: " + text,
                  "proof");
    }
    return;
  }
  const bool all_unchecked = std::all_of(results.begin(), results.end(), [](const ProofResult& r) {
    return r.outcome == ProofOutcome::kNotChecked;
  });
  report.Error(check::kVerifyProof,
               std::string(all_unchecked ? "no proof could be checked: " : "no proof verifies: ") + reasons, "proof");
}

// ---------------------------------------------------------------------------
// Status

std::optional<int64_t> ValidFrom(const ParsedCredential& c) {
  if (c.badge.issued_on) return c.badge.issued_on;
  return c.details.jwt_nbf;
}

std::optional<int64_t> ValidUntil(const ParsedCredential& c) {
  if (c.badge.expires && c.details.jwt_exp) return std::min(*c.badge.expires, *c.details.jwt_exp);
  if (c.badge.expires) return c.badge.expires;
  return c.details.jwt_exp;
}

StatusResult CheckRevocationList(const ParsedCredential& parsed, const CredentialStatusEntry& entry,
                                 Resolver& resolver, CredentialCheckResult& result) {
  StatusResult status;
  status.entry = entry;
  std::string error;
  bool pending = false;
  const Json* list = resolver.JsonDocument(entry.list_url, &error, &pending);
  if (pending) {
    status.message = "the revocation list has not been fetched";
    return status;
  }
  if (list == nullptr) {
    status.message = "the revocation list " + Abbreviate(entry.list_url) + " cannot be read: " + error;
    return status;
  }
  const Json* revoked = Get(*list, "revokedCredentials");
  if (revoked == nullptr || !revoked->is_array()) {
    status.message = "the revocation list " + Abbreviate(entry.list_url) + " has no revokedCredentials array";
    return status;
  }
  status.outcome = StatusOutcome::kClear;
  status.message = "not on the issuer's revocation list";
  if (parsed.badge.id.empty()) return status;
  for (const Json& item : *revoked) {
    const std::string* id = GetString(item, "id");
    if (id == nullptr || *id != parsed.badge.id) continue;
    const Json* flag = Get(item, "revoked");
    if (flag != nullptr && flag->is_boolean() && !flag->get<bool>()) continue;
    status.outcome = StatusOutcome::kRevoked;
    if (const std::string* reason = GetString(item, "revocationReason"); reason != nullptr) {
      result.badge.revocation_reason = *reason;
    }
    status.message = "the issuer's revocation list revokes the credential";
    return status;
  }
  return status;
}

StatusResult CheckStatusList(const CredentialStatusEntry& entry, Resolver& resolver, int64_t now) {
  StatusResult status;
  status.entry = entry;
  const CredentialCheckOptions& options = resolver.options();
  if (!entry.index) {
    status.message = "the status entry has no usable statusListIndex";
    return status;
  }
  std::string error;
  bool pending = false;
  const FetchedDocument* raw = resolver.Raw(entry.list_url, &error, &pending);
  if (pending) {
    status.message = "the status list credential has not been fetched";
    return status;
  }
  if (raw == nullptr) {
    status.message = "the status list credential " + Abbreviate(entry.list_url) + " cannot be read: " + error;
    return status;
  }
  const ParsedCredential list = Parse(raw->body, options.limits, /*badge_only=*/false);
  if (list.document == nullptr || !list.report.valid()) {
    std::string first;
    for (const ReportMessage& m : list.report.messages()) {
      if (m.level == MessageLevel::kError) {
        first = m.message;
        break;
      }
    }
    status.message = "the status list credential " + Abbreviate(entry.list_url) + " is malformed: " + first;
    return status;
  }
  const bool bitstring = entry.method == StatusMethod::kBitstring;
  const std::string_view list_type = bitstring ? "BitstringStatusListCredential" : "StatusList2021Credential";
  const std::string_view subject_type = bitstring ? "BitstringStatusList" : "StatusList2021";
  if (std::find(list.details.types.begin(), list.details.types.end(), list_type) == list.details.types.end()) {
    status.message = "the status list credential's type does not include " + std::string(list_type);
    return status;
  }
  const Json* subject = Get(*list.document, "credentialSubject");
  if (subject == nullptr || !subject->is_object() ||
      !HasType(TypeValues(*subject), {subject_type})) {
    status.message = "the status list's credentialSubject is not a " + std::string(subject_type);
    return status;
  }
  // The list's own validity window.
  const std::optional<int64_t> from = ValidFrom(list);
  const std::optional<int64_t> until = ValidUntil(list);
  if (from && *from > now + options.clock_skew_seconds) {
    status.message = "the status list credential is not valid yet";
    return status;
  }
  if (until && *until <= now) {
    status.message = "the status list credential has expired";
    return status;
  }
  // Its purpose must be the entry's.
  std::vector<std::string> purposes;
  for (const Json* p : AsList(Get(*subject, "statusPurpose"))) {
    if (p->is_string()) purposes.push_back(p->get<std::string>());
  }
  if (std::find(purposes.begin(), purposes.end(), entry.purpose) == purposes.end()) {
    status.message = "the status list's statusPurpose is not " + Quote(entry.purpose);
    return status;
  }
  // Its proof, through the same machinery as the credential's.
  const std::vector<ProofResult> proofs = CheckProofs(list, resolver);
  const bool key_pending = std::any_of(proofs.begin(), proofs.end(), [](const ProofResult& r) {
    return r.outcome == ProofOutcome::kKeyUnresolved && r.message.find("has not been fetched") != std::string::npos;
  });
  if (AnyVerified(proofs)) {
    status.list_proof = ProofOutcome::kVerified;
  } else if (key_pending) {
    status.message = "the status list's key has not been fetched";
    return status;
  } else if (!proofs.empty() && std::all_of(proofs.begin(), proofs.end(), [](const ProofResult& r) {
               return r.outcome == ProofOutcome::kNotChecked;
             })) {
    status.list_proof = ProofOutcome::kNotChecked;
  } else {
    status.list_proof = proofs.empty() ? ProofOutcome::kMalformed : proofs.front().outcome;
  }
  const std::string* encoded = GetString(*subject, "encodedList");
  if (encoded == nullptr) {
    status.message = "the status list has no encodedList";
    return status;
  }
  Result<std::string> bits = DecodeStatusList(*encoded, options.max_status_list_bytes);
  if (!bits.ok()) {
    status.message = "the status list cannot be decoded: " + bits.status().message();
    return status;
  }
  Result<uint32_t> value = StatusListEntry(*bits, *entry.index, entry.size);
  if (!value.ok()) {
    status.message = value.status().message();
    return status;
  }
  const std::string at = " (index " + std::to_string(*entry.index) + ")";
  if (*value != 0 && (entry.purpose == "revocation" || entry.purpose == "suspension")) {
    // Believed even when the list's proof cannot be checked: a list can only
    // take validity away, and the credential's issuer chose where it lives.
    const bool revocation = entry.purpose == "revocation";
    status.outcome = revocation ? StatusOutcome::kRevoked : StatusOutcome::kSuspended;
    status.message = std::string("the issuer's status list marks the credential ") +
                     (revocation ? "revoked" : "suspended") + at;
    if (status.list_proof != ProofOutcome::kVerified) status.message += "; the list's own proof was not verified";
    return status;
  }
  if (status.list_proof != ProofOutcome::kVerified && status.list_proof != ProofOutcome::kNotChecked) {
    status.message = "the status list credential's proof does not verify: " +
                     (proofs.empty() ? std::string("it has none") : proofs.front().message);
    return status;
  }
  if (*value == 0) {
    status.outcome = StatusOutcome::kClear;
    status.message = "status " + entry.purpose + " not set" + at;
  } else {
    status.outcome = StatusOutcome::kOtherPurpose;
    status.message = "status " + Quote(entry.purpose) + " is " + std::to_string(*value) + at;
  }
  if (bits->size() * 8 < kMinStatusListBits) {
    status.message += "; the list is shorter than the 131072 entries the specification asks for";
  }
  return status;
}

// Status messages go to `report`; the outcomes to `result`.
void CheckStatuses(const ParsedCredential& parsed, Resolver& resolver, VerificationReport& report,
                   CredentialCheckResult& result) {
  const int64_t now = resolver.options().now;
  for (size_t i = 0; i < parsed.details.statuses.size(); ++i) {
    const CredentialStatusEntry& entry = parsed.details.statuses[i];
    const std::string property = parsed.details.statuses.size() > 1 ? "credentialStatus[" + std::to_string(i) + "]"
                                                                    : "credentialStatus";
    StatusResult status;
    if (entry.method == StatusMethod::kUnknown) {
      status.entry = entry;
      status.outcome = StatusOutcome::kUnknown;
      status.message = "status method " + Quote(entry.type) + " is not supported; the credential's status is unknown";
      report.Warning(check::kCredentialStatus, status.message, property);
      result.statuses.push_back(std::move(status));
      continue;
    }
    if (entry.list_url.empty()) {
      status.entry = entry;
      status.message = "the status entry names no list";
    } else if (entry.method == StatusMethod::kRevocationList) {
      status = CheckRevocationList(parsed, entry, resolver, result);
    } else {
      status = CheckStatusList(entry, resolver, now);
    }
    switch (status.outcome) {
      case StatusOutcome::kClear:
      case StatusOutcome::kOtherPurpose:
        if (status.list_proof == ProofOutcome::kNotChecked) {
          report.Warning(check::kCredentialStatus,
                                status.message + "; the status list's own proof was not checked", property);
        } else {
          report.Info(check::kCredentialStatus, status.message, property);
        }
        break;
      case StatusOutcome::kRevoked:
        result.badge.revoked = true;
        report.Error(check::kRevoked, status.message, property);
        break;
      case StatusOutcome::kSuspended:
        result.suspended = true;
        report.Error(check::kCredentialStatus, status.message, property);
        break;
      case StatusOutcome::kUnknown:
        report.Error(check::kCredentialStatus, status.message, property);
        break;
    }
    result.statuses.push_back(std::move(status));
  }
}

// ---------------------------------------------------------------------------
// Validity and recipient

void CheckValidity(const ParsedCredential& parsed, const CredentialCheckOptions& options, VerificationReport& report) {
  const bool v11 = parsed.details.data_model == DataModel::kV1_1 && !parsed.badge.issued_on;
  const std::optional<int64_t> from = ValidFrom(parsed);
  const std::optional<int64_t> until = ValidUntil(parsed);
  const std::string from_name = v11 ? "issuanceDate" : "validFrom";
  if (from && *from > options.now + options.clock_skew_seconds) {
    report.Error(check::kIssuedOnInFuture, "the credential is not valid before " + FormatRfc3339(*from), from_name);
  }
  if (until) {
    if (from && *until < *from) {
      report.Error(check::kExpiresBeforeIssued, "the credential's validity ends before it begins", "validUntil");
    }
    if (*until <= options.now) {
      report.Error(check::kExpired, "the credential expired at " + FormatRfc3339(*until), "validUntil");
    }
  }
}

// OB 3.0 allows md5 identity hashes (IdentityHash), as OB 0.5-1.1 did;
// MatchRecipient accepts them for the legacy versions only.
SpecVersion HashRulesFor(const RecipientIdentity& identity) {
  return identity.hashed && identity.identity.size() >= 4 &&
                 (identity.identity.compare(0, 4, "md5$") == 0 || identity.identity.compare(0, 4, "MD5$") == 0)
             ? SpecVersion::kV1_1
             : SpecVersion::kV2_0;
}

void CheckRecipient(const ParsedCredential& parsed, const CredentialCheckOptions& options,
                    CredentialCheckResult& result) {
  if (parsed.details.kind != CredentialKind::kAchievement) return;
  std::vector<RecipientIdentity> emails;
  for (size_t i = 0; i < parsed.details.identifiers.size(); ++i) {
    const RecipientIdentity& identity = parsed.details.identifiers[i].identity;
    if (identity.identity.empty()) continue;  // the parse has reported it
    const Status form = ValidateRecipientIdentity(identity, HashRulesFor(identity));
    const std::string property = "credentialSubject.identifier[" + std::to_string(i) + "]";
    if (!form.ok()) {
      result.report.Error(check::kValidateRecipient, form.message(), property);
      continue;
    }
    if (identity.type == IdentityType::kEmail) emails.push_back(identity);
  }
  if (parsed.details.subject_id.starts_with("mailto:")) {
    emails.push_back(RecipientIdentity{IdentityType::kEmail, false, std::nullopt, parsed.details.subject_id.substr(7)});
  }
  if (!options.check_recipient) return;
  if (emails.empty()) {
    result.report.Error(check::kValidateRecipient,
                        "the credential names its recipient by no email address (an emailAddress identifier or a "
                        "mailto: credentialSubject.id)",
                        "credentialSubject");
    return;
  }
  std::string last_error;
  for (const RecipientIdentity& identity : emails) {
    Result<std::string> match = MatchRecipient(identity, options.verified_emails, HashRulesFor(identity));
    if (match.ok()) {
      result.matched_email = *match;
      result.report.Info(check::kValidateRecipient, "awarded to the verified address " + Abbreviate(*match),
                         "credentialSubject");
      return;
    }
    last_error = match.status().message();
  }
  result.report.Error(check::kValidateRecipient, last_error, "credentialSubject");
}

bool Unreadable(const ParsedCredential& parsed) {
  return parsed.document == nullptr || parsed.report.HasError(check::kJsonParse) ||
         parsed.report.HasError(check::kDocumentLimits) || parsed.report.HasError(check::kJwsParse);
}

}  // namespace

ParsedCredential ParseCredential(std::string_view bytes, const ParseLimits& limits) {
  return Parse(bytes, limits, /*badge_only=*/true);
}

std::string CredentialIdentity(const Badge& credential) {
  if (credential.issuer.id.empty() || credential.id.empty()) return {};
  return credential.issuer.id + " " + credential.id;
}

int CompareValidFrom(const Badge& a, const Badge& b) {
  const int64_t left = a.issued_on.value_or(INT64_MIN);
  const int64_t right = b.issued_on.value_or(INT64_MIN);
  return left > right ? 1 : left < right ? -1 : 0;
}

std::string_view ProofOutcomeName(ProofOutcome outcome) {
  switch (outcome) {
    case ProofOutcome::kVerified:
      return "verified";
    case ProofOutcome::kSignatureInvalid:
      return "signature_invalid";
    case ProofOutcome::kKeyNotIssuers:
      return "key_not_issuers";
    case ProofOutcome::kKeyUnresolved:
      return "key_unresolved";
    case ProofOutcome::kNotChecked:
      return "not_checked";
    case ProofOutcome::kMalformed:
      return "malformed";
  }
  return "malformed";
}

std::vector<std::string> CredentialDocumentsToFetch(const ParsedCredential& parsed, const FetchedDocuments& fetched,
                                                    const CredentialCheckOptions& options) {
  if (Unreadable(parsed)) return {};
  Resolver resolver(fetched, options);
  CredentialCheckResult scratch;
  VerificationReport status_report(options.limits.max_messages);
  scratch.proofs = CheckProofs(parsed, resolver);
  CheckStatuses(parsed, resolver, status_report, scratch);
  return resolver.missing();
}

CredentialCheckResult CheckCredential(const ParsedCredential& parsed, const FetchedDocuments& fetched,
                                      const CredentialCheckOptions& options) {
  CredentialCheckResult result;
  result.badge = parsed.badge;
  result.details = parsed.details;
  result.report = parsed.report;
  if (Unreadable(parsed)) return result;
  Resolver resolver(fetched, options);
  result.proofs = CheckProofs(parsed, resolver);
  VerificationReport status_report(options.limits.max_messages);
  CheckStatuses(parsed, resolver, status_report, result);
  // Every document the checks needed is known now.
  result.missing_documents = resolver.missing();
  for (const std::string& url : result.missing_documents) {
    result.report.Error(check::kFetchDocument, "needed document " + Abbreviate(url) + " was not fetched",
                        resolver.IsKeyDocument(url) ? "proof" : "credentialStatus");
  }
  for (const auto& [url, reason] : resolver.failed()) {
    result.report.Error(check::kFetchDocument, "document " + Abbreviate(url) + " failed: " + reason,
                        resolver.IsKeyDocument(url) ? "proof" : "credentialStatus");
  }
  ReportProofs(result.proofs, result.report);
  result.report.Merge(status_report, "");
  CheckValidity(parsed, options, result.report);
  CheckRecipient(parsed, options, result);
  return result;
}

}  // namespace backpack::protocol
