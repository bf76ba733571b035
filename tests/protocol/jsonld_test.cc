#include "protocol/jsonld.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "protocol/bundled_contexts.h"
#include "protocol/jcs.h"

namespace backpack::protocol::jsonld {
namespace {

using Json = nlohmann::json;

const DocumentLoader kNoLoader = StaticDocumentLoader({});

std::string Canon(const Json& doc, const Options& options = {}, const DocumentLoader& loader = kNoLoader) {
  auto result = CanonicalNQuads(doc, loader, options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : "";
}

Status CanonStatus(const Json& doc, const Options& options, const DocumentLoader& loader = kNoLoader) {
  auto result = CanonicalNQuads(doc, loader, options);
  return result.ok() ? Status::Ok() : result.status();
}

bool HasDrop(const std::vector<Dropped>& dropped, const std::string& kind, const std::string& detail) {
  for (const auto& d : dropped) {
    if (d.kind == kind && d.detail == detail) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Expansion and toRdf on documents of our own. Expected N-Quads are worked
// out from the JSON-LD 1.1 algorithms by hand: sorted in code point order
// ('"' < '<' < '_', "http:" < "https"), blank nodes labelled per RDFC-1.0.

TEST(JsonLd, TermsCoercionAndNativeTypes) {
  const Json doc = Json::parse(R"({
    "@context": {
      "@vocab": "http://ex.org/vocab#",
      "@base": "http://ex.org/base/",
      "xsd": "http://www.w3.org/2001/XMLSchema#",
      "ex": "http://ex.org/ns#",
      "link": {"@id": "ex:link", "@type": "@id"},
      "kind": {"@id": "ex:kind", "@type": "@vocab"},
      "when": {"@id": "ex:when", "@type": "xsd:dateTime"},
      "Thing": "ex:Thing"
    },
    "@id": "item/1",
    "@type": "Thing",
    "link": "../other",
    "kind": "Thing",
    "when": "2024-01-01T00:00:00Z",
    "flag": true,
    "count": 5,
    "ratio": 2.5,
    "whole": 3.0,
    "big": 1e21,
    "tiny": -2.5e-7,
    "sum": 0.30000000000000004,
    "name": "plain",
    "ex:compact": "c"
  })");
  const std::string s = "<http://ex.org/base/item/1> ";
  const std::string xsd = "^^<http://www.w3.org/2001/XMLSchema#";
  EXPECT_EQ(Canon(doc),
            s + "<http://ex.org/ns#compact> \"c\" .\n" +
                s + "<http://ex.org/ns#kind> <http://ex.org/ns#Thing> .\n" +
                s + "<http://ex.org/ns#link> <http://ex.org/other> .\n" +
                s + "<http://ex.org/ns#when> \"2024-01-01T00:00:00Z\"" + xsd + "dateTime> .\n" +
                s + "<http://ex.org/vocab#big> \"1.0E21\"" + xsd + "double> .\n" +
                s + "<http://ex.org/vocab#count> \"5\"" + xsd + "integer> .\n" +
                s + "<http://ex.org/vocab#flag> \"true\"" + xsd + "boolean> .\n" +
                s + "<http://ex.org/vocab#name> \"plain\" .\n" +
                s + "<http://ex.org/vocab#ratio> \"2.5E0\"" + xsd + "double> .\n" +
                s + "<http://ex.org/vocab#sum> \"3.0E-1\"" + xsd + "double> .\n" +
                s + "<http://ex.org/vocab#tiny> \"-2.5E-7\"" + xsd + "double> .\n" +
                s + "<http://ex.org/vocab#whole> \"3\"" + xsd + "integer> .\n" +
                s + "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://ex.org/ns#Thing> .\n");
}

TEST(JsonLd, LanguagesAndDirection) {
  const Json doc = Json::parse(R"({
    "@context": {
      "@vocab": "http://ex.org/v#",
      "@language": "EN",
      "label": {"@id": "http://ex.org/v#label", "@language": null},
      "title": {"@id": "http://ex.org/v#title", "@language": "de"},
      "names": {"@id": "http://ex.org/v#names", "@container": "@language"}
    },
    "@id": "http://ex.org/x",
    "desc": "hello",
    "label": "raw",
    "title": "Titel",
    "names": {"fr": "bonjour", "@none": "none", "es": ["hola", "buenas"]},
    "rtl": {"@value": "abc", "@direction": "rtl"}
  })");
  const std::string s = "<http://ex.org/x> <http://ex.org/v#";
  EXPECT_EQ(Canon(doc), s + "desc> \"hello\"@en .\n" +
                            s + "label> \"raw\" .\n" +
                            s + "names> \"bonjour\"@fr .\n" +
                            s + "names> \"buenas\"@es .\n" +
                            s + "names> \"hola\"@es .\n" +
                            s + "names> \"none\" .\n" +
                            s + "rtl> \"abc\" .\n" +
                            s + "title> \"Titel\"@de .\n");
}

TEST(JsonLd, ListsAndJsonLiterals) {
  const Json doc = Json::parse(R"({
    "@context": {
      "@vocab": "http://ex.org/v#",
      "seq": {"@id": "http://ex.org/v#seq", "@container": "@list"},
      "data": {"@id": "http://ex.org/v#data", "@type": "@json"}
    },
    "@id": "http://ex.org/x",
    "seq": ["a", 1],
    "empty": {"@list": []},
    "data": {"b": [1, 2.5, true, null], "a": "\u00e9\n"}
  })");
  // The list head's first-degree hash (30035c27...) sorts before the tail's
  // (3ca362ba...), so the head is c14n0.
  const std::string rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
  EXPECT_EQ(Canon(doc),
            "<http://ex.org/x> <http://ex.org/v#data> \"{\\\"a\\\":\\\"\xc3\xa9\\\\n\\\",\\\"b\\\":[1,2.5,true,null]}\"^^<" +
                rdf + "JSON> .\n" +
                "<http://ex.org/x> <http://ex.org/v#empty> <" + rdf + "nil> .\n" +
                "<http://ex.org/x> <http://ex.org/v#seq> _:c14n0 .\n" +
                "_:c14n0 <" + rdf + "first> \"a\" .\n" +
                "_:c14n0 <" + rdf + "rest> _:c14n1 .\n" +
                "_:c14n1 <" + rdf + "first> \"1\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n" +
                "_:c14n1 <" + rdf + "rest> <" + rdf + "nil> .\n");
}

TEST(JsonLd, TypeScopedContextsDoNotPropagatePropertyScopedOnesDo) {
  const Json doc = Json::parse(R"({
    "@context": {
      "@vocab": "http://ex.org/v#",
      "Person": {"@id": "http://ex.org/v#Person", "@context": {"name": "http://schema.org/name"}},
      "address": {"@id": "http://ex.org/v#address", "@context": {"city": "http://schema.org/addressLocality"}}
    },
    "@id": "http://ex.org/p",
    "@type": "Person",
    "name": "Ada",
    "friend": {"@id": "http://ex.org/q", "name": "Bob"},
    "address": {"@id": "http://ex.org/a", "city": "London", "name": "Home"}
  })");
  EXPECT_EQ(Canon(doc),
            "<http://ex.org/a> <http://ex.org/v#name> \"Home\" .\n"
            "<http://ex.org/a> <http://schema.org/addressLocality> \"London\" .\n"
            "<http://ex.org/p> <http://ex.org/v#address> <http://ex.org/a> .\n"
            "<http://ex.org/p> <http://ex.org/v#friend> <http://ex.org/q> .\n"
            "<http://ex.org/p> <http://schema.org/name> \"Ada\" .\n"
            "<http://ex.org/p> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://ex.org/v#Person> .\n"
            "<http://ex.org/q> <http://ex.org/v#name> \"Bob\" .\n");
}

TEST(JsonLd, ContainersNestReverseAndIncluded) {
  const Json doc = Json::parse(R"({
    "@context": {
      "@vocab": "http://ex.org/v#",
      "byIndex": {"@id": "http://ex.org/v#byIndex", "@container": "@index"},
      "byId": {"@id": "http://ex.org/v#byId", "@container": "@id"},
      "byType": {"@id": "http://ex.org/v#byType", "@container": "@type"},
      "claims": {"@id": "http://ex.org/v#claims", "@container": "@graph"},
      "parentOf": {"@reverse": "http://ex.org/v#childOf"},
      "meta": "@nest"
    },
    "@id": "http://ex.org/x",
    "byIndex": {"one": "first", "two": {"@id": "http://ex.org/y"}},
    "byId": {"http://ex.org/z": {"label": "zed"}},
    "byType": {"Widget": {"@id": "http://ex.org/w"}},
    "claims": {"@id": "http://ex.org/c", "says": "hi"},
    "parentOf": {"@id": "http://ex.org/kid"},
    "meta": {"note": "nested"},
    "@included": [{"@id": "http://ex.org/inc", "label": "included"}]
  })");
  EXPECT_EQ(Canon(doc),
            "<http://ex.org/c> <http://ex.org/v#says> \"hi\" _:c14n0 .\n"
            "<http://ex.org/inc> <http://ex.org/v#label> \"included\" .\n"
            "<http://ex.org/kid> <http://ex.org/v#childOf> <http://ex.org/x> .\n"
            "<http://ex.org/w> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://ex.org/v#Widget> .\n"
            "<http://ex.org/x> <http://ex.org/v#byId> <http://ex.org/z> .\n"
            "<http://ex.org/x> <http://ex.org/v#byIndex> \"first\" .\n"
            "<http://ex.org/x> <http://ex.org/v#byIndex> <http://ex.org/y> .\n"
            "<http://ex.org/x> <http://ex.org/v#byType> <http://ex.org/w> .\n"
            "<http://ex.org/x> <http://ex.org/v#claims> _:c14n0 .\n"
            "<http://ex.org/x> <http://ex.org/v#note> \"nested\" .\n"
            "<http://ex.org/z> <http://ex.org/v#label> \"zed\" .\n");
}

TEST(JsonLd, ExpandedForm) {
  const Json doc = Json::parse(R"({
    "@context": {"name": "http://schema.org/name", "knows": {"@id": "http://schema.org/knows", "@type": "@id"}},
    "@id": "http://ex.org/a", "name": "A", "knows": "http://ex.org/b"
  })");
  auto expanded = Expand(doc, kNoLoader, {});
  ASSERT_TRUE(expanded.ok());
  EXPECT_EQ(*expanded, Json::parse(R"([{"@id": "http://ex.org/a",
    "http://schema.org/name": [{"@value": "A"}],
    "http://schema.org/knows": [{"@id": "http://ex.org/b"}]}])"));
}

TEST(JsonLd, BlankNodeLabelsInTheDocumentAreRenamed) {
  const Json doc = Json::parse(R"({
    "@context": {"@vocab": "http://ex.org/v#"},
    "@id": "_:me", "knows": {"@id": "_:you", "knows": {"@id": "_:me"}}
  })");
  auto dataset = ToRdf(doc, kNoLoader, {});
  ASSERT_TRUE(dataset.ok());
  std::sort(dataset->begin(), dataset->end());
  EXPECT_EQ(rdf::ToNQuads(*dataset),
            "_:b0 <http://ex.org/v#knows> _:b1 .\n"
            "_:b1 <http://ex.org/v#knows> _:b0 .\n");
}

// ---------------------------------------------------------------------------
// Protection

TEST(JsonLd, ProtectedTerms) {
  Json doc = Json::parse(R"({
    "@context": [
      {"@protected": true, "name": "http://schema.org/name"},
      {"name": "http://ex.org/other#name"}
    ],
    "@id": "http://ex.org/x", "name": "A"
  })");
  Status st = CanonStatus(doc, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("protected term redefinition: name"), std::string::npos) << st.message();

  // The same definition again is allowed.
  doc["@context"][1] = Json{{"name", "http://schema.org/name"}};
  EXPECT_TRUE(CanonStatus(doc, {}).ok());

  // A property-scoped context may override a protected term.
  doc = Json::parse(R"({
    "@context": {"@protected": true, "name": "http://schema.org/name",
                 "inner": {"@id": "http://ex.org/inner", "@context": {"name": "http://ex.org/other#name"}}},
    "@id": "http://ex.org/x", "inner": {"@id": "http://ex.org/y", "name": "B"}
  })");
  EXPECT_EQ(Canon(doc),
            "<http://ex.org/x> <http://ex.org/inner> <http://ex.org/y> .\n"
            "<http://ex.org/y> <http://ex.org/other#name> \"B\" .\n");

  // Nor can the protected terms be wiped with a null context.
  doc = Json::parse(R"({"@context": [{"@protected": true, "name": "http://schema.org/name"}, null],
                        "@id": "http://ex.org/x"})");
  st = CanonStatus(doc, {});
  EXPECT_NE(st.message().find("invalid context nullification"), std::string::npos) << st.message();
}

TEST(JsonLd, ErrorsAreInvalidArgumentWithTheSpecCode) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"@context": {"a": {"@id": "http://x/a", "@type": "not-an-iri"}}, "a": 1})", "invalid type mapping"},
      {R"({"@context": {"a": {"@id": "http://x/a", "@container": "@bogus"}}, "a": 1})", "invalid container mapping"},
      {R"({"@context": {"a": "b:x", "b": "a:y"}, "a": 1})", "cyclic IRI mapping"},
      {R"({"@context": {"@id": "http://x/"}})", "keyword redefinition"},
      {R"({"@id": 5})", "invalid @id value"},
      {R"({"@context": {"@vocab": "http://x/"}, "@type": 5})", "invalid type value"},
      {R"({"@context": {"@vocab": "http://x/"}, "v": {"@value": "x", "@language": "en", "@type": "http://t"}})",
       "invalid value object"},
      {R"({"@context": {"@vocab": "http://x/"}, "v": {"@value": 1, "@language": "en"}})",
       "invalid language-tagged value"},
      {R"({"@context": {"@vocab": "http://x/"}, "v": {"@value": "x", "@type": "bad type"}})", "invalid typed value"},
      {R"({"@context": 5})", "invalid local context"},
      {R"({"@context": {"@version": 1.0}})", "invalid @version value"},
      {R"({"@context": {"@vocab": "http://x/"}, "v": {"@value": "x", "other": 1}})", "invalid value object"},
  };
  for (const auto& [text, code] : cases) {
    const Status st = CanonStatus(Json::parse(text), {});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(st.message().find(code), std::string::npos) << text << " -> " << st.message();
  }
}

// ---------------------------------------------------------------------------
// Safe mode: what expansion drops

TEST(JsonLd, DroppedDataIsReportedOrRefused) {
  const Json doc = Json::parse(R"({
    "@context": {"name": "http://schema.org/name"},
    "@id": "http://ex.org/x", "@type": "Relative", "name": "A", "undefinedTerm": "B"
  })");
  std::vector<Dropped> dropped;
  auto lenient = CanonicalNQuads(doc, kNoLoader, {}, &dropped);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(*lenient, "<http://ex.org/x> <http://schema.org/name> \"A\" .\n");
  EXPECT_TRUE(HasDrop(dropped, "invalid property", "undefinedTerm"));
  EXPECT_TRUE(HasDrop(dropped, "relative @type reference", "Relative"));
  EXPECT_TRUE(HasDrop(dropped, "relative type reference", "Relative"));

  Options safe;
  safe.safe_mode = true;
  const Status st = CanonStatus(doc, safe);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("safe mode"), std::string::npos);

  Json only_undefined = doc;
  only_undefined.erase("@type");
  const Status undefined = CanonStatus(only_undefined, safe);
  EXPECT_NE(undefined.message().find("invalid property: undefinedTerm"), std::string::npos) << undefined.message();

  const Json relative_id = Json::parse(R"({"@context": {"name": "http://schema.org/name"}, "@id": "x", "name": "A"})");
  EXPECT_NE(CanonStatus(relative_id, safe).message().find("relative @id reference"), std::string::npos);
  // With a base the same document is fine.
  safe.base = "https://issuer.example/credentials/";
  EXPECT_EQ(Canon(relative_id, safe), "<https://issuer.example/credentials/x> <http://schema.org/name> \"A\" .\n");
}

TEST(JsonLd, SafeModeRefusesAnUndefinedTermInAVerifiableCredential) {
  // VCDM 1.1 has no @vocab: a term missing from the contexts is dropped by
  // plain JSON-LD, so a signature would not cover it.
  Json credential = Json::parse(R"({
    "@context": ["https://www.w3.org/2018/credentials/v1"],
    "type": ["VerifiableCredential"],
    "issuer": "did:example:issuer",
    "issuanceDate": "2020-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:subject", "degree": "BSc"}
  })");
  Options safe;
  safe.safe_mode = true;
  const Status st = CanonStatus(credential, safe, BundledContextLoader());
  EXPECT_NE(st.message().find("invalid property: degree"), std::string::npos) << st.message();
  credential["credentialSubject"].erase("degree");
  EXPECT_TRUE(CanonStatus(credential, safe, BundledContextLoader()).ok());
}

// ---------------------------------------------------------------------------
// Bundled contexts

TEST(JsonLd, VerifiableCredential20WithBundledContexts) {
  const Json credential = Json::parse(R"({
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": "urn:uuid:1",
    "type": ["VerifiableCredential"],
    "issuer": "did:example:issuer",
    "validFrom": "2024-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:subject"}
  })");
  Options safe;
  safe.safe_mode = true;
  EXPECT_EQ(Canon(credential, safe, BundledContextLoader()),
            "<urn:uuid:1> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
            "<https://www.w3.org/2018/credentials#VerifiableCredential> .\n"
            "<urn:uuid:1> <https://www.w3.org/2018/credentials#credentialSubject> <did:example:subject> .\n"
            "<urn:uuid:1> <https://www.w3.org/2018/credentials#issuer> <did:example:issuer> .\n"
            "<urn:uuid:1> <https://www.w3.org/2018/credentials#validFrom> "
            "\"2024-01-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n");
}

TEST(JsonLd, EveryBundledContextProcesses) {
  const auto urls = BundledContextUrls();
  EXPECT_GE(urls.size(), 15u);
  ContextCache cache;
  Options options;
  options.cache = &cache;
  for (const auto& url : urls) {
    const Json doc = {{"@context", Json::array({std::string(url)})}, {"@id", "urn:x"}, {"urn:p", "v"}};
    auto result = CanonicalNQuads(doc, BundledContextLoader(), options);
    EXPECT_TRUE(result.ok()) << url << ": " << result.status().ToString();
    if (result.ok()) {
      EXPECT_EQ(*result, "<urn:x> <urn:p> \"v\" .\n") << url;
    }
  }
  // The usual Open Badges 3.0 pair.
  const Json ob = {{"@context", {"https://www.w3.org/ns/credentials/v2",
                                 "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"}},
                   {"@id", "urn:x"}};
  EXPECT_TRUE(Expand(ob, BundledContextLoader(), options).ok());
  // VCDM 1.1 then 2.0 redefine protected terms differently.
  const Json clash = {{"@context", {"https://www.w3.org/2018/credentials/v1", "https://www.w3.org/ns/credentials/v2"}},
                      {"@id", "urn:x"}};
  auto refused = Expand(clash, BundledContextLoader(), options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("protected term redefinition"), std::string::npos);

  auto missing = Expand(Json{{"@context", "https://example.org/unknown-context"}}, BundledContextLoader(), options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("https://example.org/unknown-context"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Hostile input

TEST(JsonLd, ContextLoopsEndInAnError) {
  const auto loader = StaticDocumentLoader({
      {"https://ex.org/a", R"({"@context": ["https://ex.org/b", {"x": "http://x/"}]})"},
      {"https://ex.org/b", R"({"@context": "https://ex.org/a"})"},
      {"https://ex.org/self", R"({"@context": {"t": {"@id": "http://x/t", "@context": "https://ex.org/self"}}})"},
  });
  const Status loop = CanonStatus(Json{{"@context", "https://ex.org/a"}, {"@id", "http://x/1"}}, {}, loader);
  EXPECT_EQ(loop.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loop.message().find("context overflow"), std::string::npos) << loop.message();
  // A scoped context that includes its own document is legitimate: it is
  // applied one level at a time, as deep as the document goes.
  Json nested = Json{{"@id", "http://x/leaf"}};
  for (int i = 0; i < 40; ++i) nested = Json{{"t", nested}};
  nested["@context"] = "https://ex.org/self";
  EXPECT_TRUE(CanonStatus(nested, {}, loader).ok());
}

TEST(JsonLd, RemoteDocumentsAreChecked) {
  Options options;
  options.limits.max_context_bytes = 100;
  const auto loader = StaticDocumentLoader({
      {"https://ex.org/big", R"({"@context": {"a": "http://x/a"}, "padding": ")" + std::string(200, 'x') + "\"}"},
      {"https://ex.org/notjson", "{"},
      {"https://ex.org/nocontext", "{}"},
      {"https://ex.org/deep", std::string(100, '[') + std::string(100, ']')},
  });
  for (const char* url : {"https://ex.org/big", "https://ex.org/notjson", "https://ex.org/nocontext",
                          "https://ex.org/deep"}) {
    const Status st = CanonStatus(Json{{"@context", url}, {"@id", "http://x/1"}}, options, loader);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << url;
    EXPECT_NE(st.message().find(url), std::string::npos) << st.message();
  }
  // Relative context URLs need a base.
  EXPECT_FALSE(CanonStatus(Json{{"@context", "ctx.json"}}, {}, loader).ok());
}

TEST(JsonLd, SizeAndDepthLimits) {
  Json deep = "leaf";
  for (int i = 0; i < 100; ++i) deep = Json{{"http://x/p", deep}};
  EXPECT_NE(CanonStatus(deep, {}).message().find("too deep"), std::string::npos);

  Json many = Json::array();
  for (int i = 0; i < 300; ++i) many.push_back(Json{{"@id", "http://x/n" + std::to_string(i)}, {"http://x/p", i}});
  Options options;
  options.limits.max_nodes = 200;
  EXPECT_NE(CanonStatus(Json{{"@graph", many}}, options).message().find("nodes"), std::string::npos);
  options = {};
  options.limits.max_quads = 100;
  EXPECT_NE(CanonStatus(Json{{"@graph", many}}, options).message().find("quads"), std::string::npos);

  // Many blank nodes: the canonicaliser's own cap.
  Json blanks = Json::array();
  for (int i = 0; i < 300; ++i) blanks.push_back(Json{{"http://x/p", i}});
  options = {};
  options.canon.max_blank_nodes = 100;
  EXPECT_NE(CanonStatus(Json{{"@graph", blanks}}, options).message().find("blank nodes"), std::string::npos);

  // Each node brings its own inline context: every one is processed.
  Json chain = Json{{"@id", "http://x/end"}};
  for (int i = 0; i < 60; ++i) {
    chain = Json{{"@context", {{"p" + std::to_string(i), "http://x/p" + std::to_string(i)}}},
                 {"p" + std::to_string(i), chain}};
  }
  options = {};
  options.limits.max_context_steps = 30;
  EXPECT_NE(CanonStatus(chain, options).message().find("context overflow"), std::string::npos);
  EXPECT_TRUE(CanonStatus(chain, {}).ok());
}

// Eight terms whose scoped contexts are `levels` levels of the same again:
// each definition checks its scoped context when defined, so processing it
// takes 8^levels steps.
Json NestedScopedContexts(int levels) {
  Json ctx = Json::object();
  for (int i = 0; i < 8; ++i) {
    Json def = {{"@id", "http://x/t" + std::to_string(i)}};
    if (levels > 0) def["@context"] = NestedScopedContexts(levels - 1);
    ctx["t" + std::to_string(i)] = def;
  }
  return ctx;
}

TEST(JsonLd, ScopedContextAmplificationIsBounded) {
  Json doc = {{"@context", NestedScopedContexts(4)}, {"@id", "http://x/1"}, {"t0", {{"t1", "v"}}}};
  Options options;
  options.limits.max_context_steps = 200;  // 8^4 needed
  const Status st = CanonStatus(doc, options);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("context overflow"), std::string::npos) << st.message();
  doc["@context"] = NestedScopedContexts(2);
  EXPECT_EQ(Canon(doc), "<http://x/1> <http://x/t0> _:c14n0 .\n_:c14n0 <http://x/t1> \"v\" .\n");
}

// ---------------------------------------------------------------------------
// The context cache

TEST(JsonLd, CacheGivesTheSameAnswerAcrossThreads) {
  const Json credential = Json::parse(R"({
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    "id": "urn:uuid:2", "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "issuer": {"id": "https://issuer.example/", "type": ["Profile"], "name": "Issuer"},
    "validFrom": "2024-01-01T00:00:00Z",
    "credentialSubject": {"type": ["AchievementSubject"],
      "achievement": {"id": "https://issuer.example/a/1", "type": ["Achievement"], "name": "A",
                      "criteria": {"narrative": "Do it."}}}
  })");
  Options uncached;
  uncached.safe_mode = true;
  const std::string reference = Canon(credential, uncached, BundledContextLoader());
  ASSERT_FALSE(reference.empty());
  EXPECT_NE(reference.find("<https://purl.imsglobal.org/spec/vc/ob/vocab.html#Criteria> _:c14n"), std::string::npos);

  ContextCache cache;
  Options cached = uncached;
  cached.cache = &cache;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const auto loader = BundledContextLoader();
      for (int i = 0; i < 50; ++i) {
        auto result = CanonicalNQuads(credential, loader, cached);
        if (!result.ok() || *result != reference) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(cache.size(), 0u);
}

TEST(JsonLd, CachedContextsStillReportWhatTheyDrop) {
  // A remote context with a reserved term: reported when processed, and
  // again when the processed context comes from the cache.
  const auto loader = StaticDocumentLoader({{"https://ex.org/ctx", R"({"@context": {"@reserved": "http://x/r",
                                                                                     "name": "http://x/name"}})"}});
  const Json doc = {{"@context", "https://ex.org/ctx"}, {"@id", "http://x/1"}, {"name", "n"}};
  ContextCache cache;
  Options options;
  options.cache = &cache;
  std::vector<Dropped> first, second;
  ASSERT_TRUE(CanonicalNQuads(doc, loader, options, &first).ok());
  ASSERT_TRUE(CanonicalNQuads(doc, loader, options, &second).ok());
  EXPECT_TRUE(HasDrop(first, "reserved term", "@reserved"));
  EXPECT_TRUE(HasDrop(second, "reserved term", "@reserved"));
  options.safe_mode = true;
  EXPECT_FALSE(CanonStatus(doc, options, loader).ok());
}

// ---------------------------------------------------------------------------
// JCS

TEST(JsonLd, IrisWithUnicodeWhiteSpaceAreNotIris) {
  // JavaScript processors refuse an IRI holding any white space \s knows;
  // other non-ASCII characters are fine, wherever they stand.
  auto quads = [](const std::string& id) {
    return Canon({{"@id", id}, {"http://example.org/p", "v"}});
  };
  EXPECT_NE(quads("http://example.org/caf\u00e9").find("<http://example.org/caf\u00e9>"), std::string::npos);
  EXPECT_NE(quads("http://example.org/\u00e9\u00e8x").find("\u00e9\u00e8x>"), std::string::npos);
  for (const char* space : {"\u00a0", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
                            "\ufeff", " ", "\t"}) {
    // At the start of the non-ASCII part, after other non-ASCII characters, and after ASCII only.
    for (const std::string& id : {"http://example.org/a" + std::string(space) + "b",
                                  "http://example.org/\u00e9" + std::string(space) + "b"}) {
      EXPECT_EQ(quads(id).find("example.org/"), std::string::npos) << id;
    }
  }
}

TEST(Jcs, CanonicalJson) {
  const Json value = Json::parse(R"({"b": 1, "a": [1.5, 1e21, 1e-7, 123456789012345678901234567890, -0.0,
                                     "\u2028\u0001\"\\"], "\ud83d\ude00": 0, "\ue000": 1, "n": null, "t": true})");
  // Members ordered by UTF-16 code units: U+1F600 (D83D DE00) before U+E000.
  EXPECT_EQ(CanonicalJson(value),
            "{\"a\":[1.5,1e+21,1e-7,1.2345678901234568e+29,0,\"\xe2\x80\xa8\\u0001\\\"\\\\\"],\"b\":1,\"n\":null,"
            "\"t\":true,\"\xf0\x9f\x98\x80\":0,\"\xee\x80\x80\":1}");
  EXPECT_EQ(EcmaScriptNumber(0.000001), "0.000001");
  EXPECT_EQ(EcmaScriptNumber(1e-7), "1e-7");
  EXPECT_EQ(EcmaScriptNumber(123e18), "123000000000000000000");
  EXPECT_EQ(EcmaScriptNumber(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(EcmaScriptNumber(5e-324), "5e-324");
  EXPECT_EQ(EcmaScriptNumber(-1.7976931348623157e308), "-1.7976931348623157e+308");
  EXPECT_EQ(CanonicalJson(Json(uint64_t{9007199254740993})), "9007199254740992");
}

}  // namespace
}  // namespace backpack::protocol::jsonld
