// Unsigned Open Badges 3.0 credentials of the shapes issuers send, for the
// DCC cross-check and the Data Integrity benchmark. Each takes the issuer's
// DID (the credential's issuer and, where there is one, the achievement's
// creator). Every term is defined by the contexts named, so the credentials
// canonicalise in JSON-LD safe mode.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace backpack::testing {

inline constexpr const char* kVcV1Context = "https://www.w3.org/2018/credentials/v1";
inline constexpr const char* kVcV2Context = "https://www.w3.org/ns/credentials/v2";
inline constexpr const char* kOb303Context = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
inline constexpr const char* kObExtensionsContext = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json";
inline constexpr const char* kDataIntegrityV2Context = "https://w3id.org/security/data-integrity/v2";

// The smallest useful badge (VCDM 2.0): issuer profile, validFrom, and an
// achievement with criteria. About 15 quads.
inline nlohmann::json MinimalOpenBadgeCredential(const std::string& issuer_did) {
  return {
      {"@context", {kVcV2Context, kOb303Context}},
      {"id", "urn:uuid:2f4b3a4e-5d1c-4a0e-9b6f-0c7d8e9f1a2b"},
      {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
      {"issuer", {{"id", issuer_did}, {"type", {"Profile"}}, {"name", "Example University"}}},
      {"validFrom", "2026-01-01T00:00:00Z"},
      {"name", "Teamwork"},
      {"credentialSubject",
       {{"type", {"AchievementSubject"}},
        {"achievement",
         {{"id", "https://example.edu/achievements/teamwork"},
          {"type", {"Achievement"}},
          {"name", "Teamwork"},
          {"description", "Works well with others."},
          {"criteria", {{"narrative", "Completed the course."}}}}}}},
  };
}

// The same badge in VCDM 1.1: issuanceDate, the VC v1 context, and the Data
// Integrity context that defines DataIntegrityProof there.
inline nlohmann::json V11OpenBadgeCredential(const std::string& issuer_did) {
  nlohmann::json credential = MinimalOpenBadgeCredential(issuer_did);
  credential["@context"] = {kVcV1Context, kOb303Context, kDataIntegrityV2Context};
  credential["id"] = "urn:uuid:7b1d3c52-0f6e-4e8a-a1d9-3c5b7e9f2d41";
  credential.erase("validFrom");
  credential["issuanceDate"] = "2026-01-01T00:00:00Z";
  credential["credentialSubject"]["id"] = "did:example:ebfeb1f712ebc6f1c276e12ec21";
  return credential;
}

// A course badge as a registrar issues it: hashed email identifier, a
// result against a result description, alignment, evidence, images, credit
// numbers (one integral, one not: both xsd:float in the context), a VCDM
// 2.0 JsonSchema and an expiry. About 85 quads.
inline nlohmann::json CourseOpenBadgeCredential(const std::string& issuer_did) {
  const nlohmann::json issuer_profile = {
      {"id", issuer_did},
      {"type", {"Profile"}},
      {"name", "Example University"},
      {"url", "https://example.edu"},
      {"email", "registrar@example.edu"},
      {"image", {{"id", "https://example.edu/logo.png"}, {"type", "Image"}, {"caption", "Example University logo"}}}};
  return {
      {"@context", {kVcV2Context, kOb303Context}},
      {"id", "urn:uuid:9c4e2a10-6b7d-4f3e-8a21-5d0c9e8b7a64"},
      {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
      {"name", "Data Analysis Fundamentals"},
      {"description", "Awarded for completing Data Analysis Fundamentals (STAT 101) with a passing grade."},
      {"image",
       {{"id", "https://badges.example.edu/images/stat-101.png"},
        {"type", "Image"},
        {"caption", "Data Analysis Fundamentals badge"}}},
      {"issuer", issuer_profile},
      {"validFrom", "2026-03-01T09:00:00Z"},
      {"validUntil", "2031-03-01T09:00:00Z"},
      {"credentialSubject",
       {{"type", {"AchievementSubject"}},
        {"identifier",
         {{{"type", "IdentityObject"},
           {"identityHash", "sha256$5f2c41d0e3b5d1a7c9e8f6b4a2d0c8e6f4b2a0d8c6e4f2b0a8d6c4e2f0b8a6d4"},
           {"identityType", "emailAddress"},
           {"hashed", true},
           {"salt", "x7Qm2Lr9"}}}},
        {"activityStartDate", "2026-01-12T08:00:00Z"},
        {"activityEndDate", "2026-02-20T17:00:00Z"},
        {"creditsEarned", 3},
        {"term", "Spring 2026"},
        {"result",
         {{{"type", {"Result"}},
           {"resultDescription", "urn:uuid:f3a9b2c1-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
           {"value", "A-"}}}},
        {"achievement",
         {{"id", "https://example.edu/achievements/stat-101"},
          {"type", {"Achievement"}},
          {"achievementType", "Course"},
          {"name", "Data Analysis Fundamentals"},
          {"description", "Descriptive statistics, sampling, hypothesis tests and regression with real data sets."},
          {"criteria",
           {{"id", "https://example.edu/achievements/stat-101/criteria"},
            {"narrative", "Complete all twelve problem sets and the final project with a grade of C or better."}}},
          {"image", {{"id", "https://badges.example.edu/images/stat-101.png"}, {"type", "Image"}}},
          {"creator", {{"id", issuer_did}, {"type", {"Profile"}}, {"name", "Example University"}}},
          {"creditsAvailable", 3.5},
          {"fieldOfStudy", "Statistics"},
          {"humanCode", "STAT 101"},
          {"inLanguage", "en"},
          {"tag", {"statistics", "data analysis", "quantitative reasoning"}},
          {"alignment",
           {{{"type", {"Alignment"}},
             {"targetName", "Analyse quantitative data"},
             {"targetUrl", "https://example.edu/frameworks/quantitative/analyse-data"},
             {"targetFramework", "Example University Learning Outcomes"},
             {"targetCode", "QR-3"},
             {"targetType", "CFItem"}}}},
          {"resultDescription",
           {{{"id", "urn:uuid:f3a9b2c1-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
             {"type", {"ResultDescription"}},
             {"name", "Final grade"},
             {"resultType", "LetterGrade"},
             {"allowedValue", {"A", "A-", "B+", "B", "B-", "C+", "C", "D", "F"}},
             {"requiredValue", "C"}}}}}}}},
      {"evidence",
       {{{"id", "https://portfolio.example.edu/learners/8d2a/stat-101-project"},
         {"type", {"Evidence"}},
         {"name", "Final project: housing prices in three cities"},
         {"narrative", "A regression analysis of 2,400 sales, with a written report and its code."},
         {"genre", "Project"}}}},
      {"credentialSchema",
       {{{"id", "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"},
         {"type", "JsonSchema"}}}},
  };
}

// A degree with the optional parts issuers fill in: the creator's full
// profile (address with coordinates, other identifiers, parent
// organisation), a signed endorsement of the achievement embedded with its
// own proof (a named graph), two identifiers, results, related
// achievements, and a schema of the 1EdTech type the OB extensions context
// defines. About 160 quads.
inline nlohmann::json DegreeOpenBadgeCredential(const std::string& issuer_did) {
  nlohmann::json endorsement = {
      {"@context", {kVcV2Context, kOb303Context}},
      {"id", "urn:uuid:0d6c8e2a-4b1f-4c3d-9e5a-7f8b6a4c2e10"},
      {"type", {"VerifiableCredential", "EndorsementCredential"}},
      {"name", "Accreditation of the BSc in Statistics"},
      {"issuer",
       {{"id", "did:example:accreditor-5f1c"}, {"type", {"Profile"}}, {"name", "Example Accrediting Agency"}}},
      {"validFrom", "2025-06-01T00:00:00Z"},
      {"validUntil", "2030-06-01T00:00:00Z"},
      {"credentialSubject",
       {{"id", "https://example.edu/achievements/bsc-statistics"},
        {"type", {"EndorsementSubject"}},
        {"endorsementComment", "The programme meets the agency's standards for undergraduate statistics degrees."}}},
      {"proof",
       {{"type", "DataIntegrityProof"},
        {"cryptosuite", "eddsa-rdfc-2022"},
        {"created", "2025-06-01T10:00:00Z"},
        {"verificationMethod", "did:example:accreditor-5f1c#key-1"},
        {"proofPurpose", "assertionMethod"},
        {"proofValue", "z3FXQjecWufY46yg5abdVZsXqLhxhueuSoZgNSARiKBk9czhSePTFehP8c3PGfb6a22gkfUKKiW7ZYNvJBRv5kmrV"}}}};
  const nlohmann::json creator = {
      {"id", issuer_did},
      {"type", {"Profile"}},
      {"name", "Example University"},
      {"url", "https://example.edu"},
      {"phone", "+1-555-0100"},
      {"description", "A public research university."},
      {"email", "registrar@example.edu"},
      {"image", {{"id", "https://example.edu/logo.png"}, {"type", "Image"}, {"caption", "Example University logo"}}},
      {"address",
       {{"type", {"Address"}},
        {"addressCountry", "United States"},
        {"addressCountryCode", "US"},
        {"addressRegion", "TX"},
        {"addressLocality", "Austin"},
        {"streetAddress", "123 University Avenue"},
        {"postalCode", "78701"},
        {"geo", {{"type", "GeoCoordinates"}, {"latitude", 30.2849}, {"longitude", -97.7341}}}}},
      {"otherIdentifier",
       {{{"type", "IdentifierEntry"}, {"identifier", "US-TX-0042"}, {"identifierType", "sourcedId"}},
        {{"type", "IdentifierEntry"}, {"identifier", "228778"}, {"identifierType", "systemId"}}}},
      {"official", "Dr. Jane Registrar"},
      {"parentOrg", {{"id", "did:example:university-system"}, {"type", {"Profile"}}, {"name", "Example System"}}}};
  return {
      {"@context", {kVcV2Context, kOb303Context, kObExtensionsContext}},
      {"id", "urn:uuid:4a8d1e6c-2b3f-4e5a-9c7d-1f0e2d3c4b5a"},
      {"type", {"VerifiableCredential", "OpenBadgeCredential"}},
      {"name", "Bachelor of Science in Statistics"},
      {"description", "Conferred on completion of the four-year BSc programme in Statistics."},
      {"image",
       {{"id", "https://badges.example.edu/images/bsc-statistics.png"},
        {"type", "Image"},
        {"caption", "BSc in Statistics"}}},
      {"issuer", creator},
      {"validFrom", "2026-05-20T12:00:00Z"},
      {"awardedDate", "2026-05-20T12:00:00Z"},
      {"credentialSubject",
       {{"id", "did:example:learner-8d2a"},
        {"type", {"AchievementSubject"}},
        {"identifier",
         {{{"type", "IdentityObject"},
           {"identityHash", "sha256$0c8e6f4b2a0d8c6e4f2b0a8d6c4e2f0b8a6d45f2c41d0e3b5d1a7c9e8f6b4a2d"},
           {"identityType", "emailAddress"},
           {"hashed", true},
           {"salt", "k3Vt8Pz1"}},
          {{"type", "IdentityObject"},
           {"identityHash", "S-2022-00481"},
           {"identityType", "studentId"},
           {"hashed", false}}}},
        {"activityStartDate", "2022-09-01T00:00:00Z"},
        {"activityEndDate", "2026-05-15T00:00:00Z"},
        {"creditsEarned", 120},
        {"licenseNumber", "BSC-2026-00481"},
        {"role", "Student"},
        {"term", "Spring 2026"},
        {"source",
         {{"id", "https://example.edu/colleges/natural-sciences"},
          {"type", {"Profile"}},
          {"name", "College of Natural Sciences"}}},
        {"result",
         {{{"type", {"Result"}},
           {"resultDescription", "urn:uuid:a1b2c3d4-0001-4000-8000-000000000001"},
           {"value", "3.71"}},
          {{"type", {"Result"}},
           {"resultDescription", "urn:uuid:a1b2c3d4-0002-4000-8000-000000000002"},
           {"achievedLevel", "urn:uuid:a1b2c3d4-0003-4000-8000-000000000003"},
           {"status", "Completed"}}}},
        {"achievement",
         {{"id", "https://example.edu/achievements/bsc-statistics"},
          {"type", {"Achievement"}},
          {"achievementType", "BachelorDegree"},
          {"name", "Bachelor of Science in Statistics"},
          {"description", "A four-year programme in probability, inference, computing and applied statistics."},
          {"criteria",
           {{"id", "https://example.edu/achievements/bsc-statistics/criteria"},
            {"narrative", "# Requirements\n120 credits, including 60 in statistics, and a capstone project."}}},
          {"creator", creator},
          {"creditsAvailable", 120},
          {"fieldOfStudy", "Statistics"},
          {"specialization", "Applied statistics"},
          {"humanCode", "BSC-STAT"},
          {"version", "2024"},
          {"inLanguage", "en-US"},
          {"tag", {"statistics", "bachelor"}},
          {"endorsement", {endorsement}},
          {"alignment",
           {{{"type", {"Alignment"}},
             {"targetName", "Bachelor's degree"},
             {"targetUrl", "https://credentialengineregistry.org/resources/ce-98cb027b-95ef-4494-908d-6f7790ec6b6b"},
             {"targetFramework", "Credential Engine Registry"},
             {"targetType", "CTDL"}}}},
          {"related",
           {{{"id", "https://example.edu/achievements/bsc-statistics-2019"},
             {"type", {"Related"}},
             {"inLanguage", "en-US"},
             {"version", "2019"}}}},
          {"resultDescription",
           {{{"id", "urn:uuid:a1b2c3d4-0001-4000-8000-000000000001"},
             {"type", {"ResultDescription"}},
             {"name", "Grade point average"},
             {"resultType", "GradePointAverage"},
             {"valueMin", "0.00"},
             {"valueMax", "4.00"}},
            {{"id", "urn:uuid:a1b2c3d4-0002-4000-8000-000000000002"},
             {"type", {"ResultDescription"}},
             {"name", "Honours"},
             {"resultType", "RubricCriterionLevel"},
             {"rubricCriterionLevel",
              {{{"id", "urn:uuid:a1b2c3d4-0003-4000-8000-000000000003"},
                {"type", {"RubricCriterionLevel"}},
                {"name", "Cum laude"},
                {"points", "3.5"}}}}}}}}}}},
      {"evidence",
       {{{"id", "https://portfolio.example.edu/learners/8d2a/capstone"},
         {"type", {"Evidence"}},
         {"name", "Capstone project"},
         {"description", "Forecasting regional water demand"},
         {"genre", "Project"},
         {"audience", "Faculty panel"}}}},
      {"credentialSchema",
       {{{"id", "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"},
         {"type", "1EdTechJsonSchemaValidator2019"}}}},
  };
}

}  // namespace backpack::testing
