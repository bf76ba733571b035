#include "protocol/rdf_canon.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace backpack::protocol::rdf {
namespace {

Dataset Parse(std::string_view text) {
  auto parsed = ParseNQuads(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : Dataset{};
}

std::string Canon(std::string_view text, const CanonOptions& options = {}) {
  auto result = CanonicalNQuads(Parse(text), options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : "";
}

// The same dataset with its blank nodes renamed by `rename` and its quads
// shuffled.
Dataset Relabel(Dataset dataset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> labels;
  for (const auto& q : dataset) {
    for (const Term* t : {&q.subject, &q.object, &q.graph}) {
      if (t->is_blank() && std::find(labels.begin(), labels.end(), t->value) == labels.end()) labels.push_back(t->value);
    }
  }
  std::vector<std::string> renamed = labels;
  std::shuffle(renamed.begin(), renamed.end(), rng);
  auto rename = [&](Term& t) {
    if (!t.is_blank()) return;
    const auto i = std::find(labels.begin(), labels.end(), t.value) - labels.begin();
    t.value = "n" + renamed[static_cast<size_t>(i)];
  };
  for (auto& q : dataset) {
    rename(q.subject);
    rename(q.object);
    rename(q.graph);
  }
  std::shuffle(dataset.begin(), dataset.end(), rng);
  return dataset;
}

// Canonical form is the same for every relabelling and order of the input.
void ExpectInvariant(std::string_view text) {
  const Dataset dataset = Parse(text);
  auto reference = CanonicalNQuads(dataset);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  for (uint32_t seed = 1; seed <= 24; ++seed) {
    auto other = CanonicalNQuads(Relabel(dataset, seed));
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(*other, *reference) << "seed " << seed;
  }
}

// ---------------------------------------------------------------------------
// Canonical N-Quads serialisation

TEST(CanonicalNQuads, EscapesLiteralsExactly) {
  const Quad q{Term::Iri("http://ex/s"), Term::Iri("http://ex/p"),
               Term::Literal(std::string("tab\t bs\b nl\n cr\r ff\f quote\" backslash\\ nul") + '\0' +
                                 " bell\x07 vt\x0b esc\x1b del\x7f e\xcc\x81 \xef\xbf\xbe \xef\xbf\xbf \xe2\x82\xac",
                             std::string(kXsdString)),
               Term::DefaultGraph()};
  EXPECT_EQ(ToNQuad(q),
            "<http://ex/s> <http://ex/p> \"tab\\t bs\\b nl\\n cr\\r ff\\f quote\\\" backslash\\\\ nul\\u0000"
            " bell\\u0007 vt\\u000B esc\\u001B del\\u007F e\xcc\x81 \\uFFFE \\uFFFF \xe2\x82\xac\" .\n");
}

TEST(CanonicalNQuads, LegacyUrdna2015Escaping) {
  // What JavaScript processors wrote before and after RDFC-1.0 (jsonld 8 with
  // URDNA2015, jsonld 9 with RDFC-1.0) for the same literal.
  const Dataset dataset = {{Term::Iri("http://ex.org/x"), Term::Iri("http://ex.org/p"),
                            Term::Literal("a\x7f" "b\x01" "c\ttab\n\"q\"\\", std::string(kXsdString)),
                            Term::DefaultGraph()}};
  EXPECT_EQ(*CanonicalNQuads(dataset),
            "<http://ex.org/x> <http://ex.org/p> \"a\\u007Fb\\u0001c\\ttab\\n\\\"q\\\"\\\\\" .\n");
  CanonOptions legacy;
  legacy.legacy_urdna2015_escaping = true;
  EXPECT_EQ(*CanonicalNQuads(dataset, legacy),
            "<http://ex.org/x> <http://ex.org/p> \"a\x7f" "b\x01" "c\ttab\\n\\\"q\\\"\\\\\" .\n");
}

TEST(CanonicalNQuads, DatatypesLanguagesAndGraphs) {
  EXPECT_EQ(ToNQuad({Term::Iri("http://ex/s"), Term::Iri("http://ex/p"), Term::Literal("x", std::string(kXsdString)),
                     Term::Iri("http://ex/g")}),
            "<http://ex/s> <http://ex/p> \"x\" <http://ex/g> .\n");
  EXPECT_EQ(ToNQuad({Term::BlankNode("b0"), Term::Iri("http://ex/p"),
                     Term::Literal("chat", std::string(kRdfLangString), "fr"), Term::BlankNode("g1")}),
            "_:b0 <http://ex/p> \"chat\"@fr _:g1 .\n");
  EXPECT_EQ(ToNQuad({Term::Iri("http://ex/s"), Term::Iri("http://ex/p"), Term::Literal("5", std::string(kXsdInteger)),
                     Term::DefaultGraph()}),
            "<http://ex/s> <http://ex/p> \"5\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n");
}

TEST(NQuadsParser, ParsesWhatItSerialises) {
  const std::string text =
      "# a comment\n"
      "<http://ex/s> <http://ex/p> \"a\\tb\\u00E9\\U0001F600\\\"\" .\n"
      "_:x <http://ex/p> \"chat\"@fr-CA <http://ex/g> .   # trailing comment\n"
      "\n"
      "<http://ex/s> <http://ex/p> \"1\"^^<http://www.w3.org/2001/XMLSchema#integer> _:g .\n"
      "<http://ex/\\u0073> <http://ex/p> _:y.\n";
  auto parsed = ParseNQuads(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 4u);
  EXPECT_EQ((*parsed)[0].object.value, "a\tb\xc3\xa9\xf0\x9f\x98\x80\"");
  EXPECT_EQ((*parsed)[1].object.language, "fr-CA");
  EXPECT_EQ((*parsed)[1].graph, Term::Iri("http://ex/g"));
  EXPECT_EQ((*parsed)[2].graph, Term::BlankNode("g"));
  EXPECT_EQ((*parsed)[3].subject, Term::Iri("http://ex/s"));
  EXPECT_EQ((*parsed)[3].object, Term::BlankNode("y"));
  EXPECT_EQ(ToNQuads(*parsed),
            "<http://ex/s> <http://ex/p> \"a\\tb\xc3\xa9\xf0\x9f\x98\x80\\\"\" .\n"
            "_:x <http://ex/p> \"chat\"@fr-CA <http://ex/g> .\n"
            "<http://ex/s> <http://ex/p> \"1\"^^<http://www.w3.org/2001/XMLSchema#integer> _:g .\n"
            "<http://ex/s> <http://ex/p> _:y .\n");
}

TEST(NQuadsParser, RefusesMalformedInput) {
  for (const char* bad : {
           "<s> <http://ex/p> <http://ex/o> .\n",                   // relative IRI
           "<http://ex/s> <http://ex/p> \"open .\n",                // unterminated string
           "<http://ex/s> <http://ex/p> <http://ex/o>\n",           // no dot
           "<http://ex/s> _:p <http://ex/o> .\n",                   // blank predicate
           "<http://ex/s> <http://ex/p> \"\\q\" .\n",               // bad escape
           "<http://ex/s> <http://ex/p> \"\\uD800\" .\n",           // surrogate
           "<http://ex/s> <http://ex/p> \"\xff\" .\n",              // not UTF-8
           "<http://ex/s> <http://ex/p> <http://ex/o> . extra\n",   // junk after the dot
           "<http://ex/ s> <http://ex/p> <http://ex/o> .\n",        // space in IRI
       }) {
    EXPECT_FALSE(ParseNQuads(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseNQuads("<http://ex/s> <http://ex/p> <http://ex/o> .\n"
                           "<http://ex/s> <http://ex/p> <http://ex/o2> .\n",
                           1)
                   .ok());
}

// ---------------------------------------------------------------------------
// RDFC-1.0

TEST(Rdfc10, GroundDatasetIsSortedAndDeduplicated) {
  EXPECT_EQ(Canon("<http://ex/s> <http://ex/q> \"2\" .\n"
                  "<http://ex/s> <http://ex/p> \"1\" .\n"
                  "<http://ex/s> <http://ex/q> \"2\" .\n"),
            "<http://ex/s> <http://ex/p> \"1\" .\n"
            "<http://ex/s> <http://ex/q> \"2\" .\n");
  EXPECT_EQ(Canon(""), "");
}

TEST(Rdfc10, UniqueFirstDegreeHashesDecideTheOrder) {
  // First-degree hashes (SHA-256 of the quads with the node written _:a):
  //   y: "_:a <http://ex/p> \"a\" .\n" -> 438fb26e...
  //   x: "_:a <http://ex/p> \"b\" .\n" -> 88a62956...
  // so y is labelled first.
  auto result = Canonicalize(Parse("_:x <http://ex/p> \"b\" .\n_:y <http://ex/p> \"a\" .\n"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->nquads, "_:c14n0 <http://ex/p> \"a\" .\n_:c14n1 <http://ex/p> \"b\" .\n");
  EXPECT_EQ(result->labels.at("y"), "c14n0");
  EXPECT_EQ(result->labels.at("x"), "c14n1");
}

TEST(Rdfc10, DuplicateQuadsWithBlankNodesCountOnce) {
  const std::string once = "_:x <http://ex/p> _:y .\n_:y <http://ex/q> \"v\" .\n";
  const std::string twice = once + "_:x <http://ex/p> _:y .\n_:y <http://ex/q> \"v\" .\n";
  const std::string out = Canon(twice);
  EXPECT_EQ(out, Canon(once));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
}

TEST(Rdfc10, BlankNodeCycleIsInvariantUnderRelabelling) {
  // Every node of the cycle has the same first-degree hash: only the N-degree
  // search tells them apart.
  const std::string cycle = "_:a <http://ex/p> _:b .\n_:b <http://ex/p> _:c .\n_:c <http://ex/p> _:a .\n";
  ExpectInvariant(cycle);
  const std::string out = Canon(cycle);
  // Still a 3-cycle over c14n0..2.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3);
  for (const char* label : {"_:c14n0 ", "_:c14n1 ", "_:c14n2 "}) EXPECT_NE(out.find(label), std::string::npos);
}

TEST(Rdfc10, TellsApartGraphsFirstDegreeHashesCannot) {
  // A 6-cycle and two 3-cycles: every node has one p-edge in and one out, so
  // all first-degree hashes are equal; the outputs must still differ.
  const std::string six =
      "_:a <http://ex/p> _:b .\n_:b <http://ex/p> _:c .\n_:c <http://ex/p> _:d .\n"
      "_:d <http://ex/p> _:e .\n_:e <http://ex/p> _:f .\n_:f <http://ex/p> _:a .\n";
  const std::string two_threes =
      "_:a <http://ex/p> _:b .\n_:b <http://ex/p> _:c .\n_:c <http://ex/p> _:a .\n"
      "_:d <http://ex/p> _:e .\n_:e <http://ex/p> _:f .\n_:f <http://ex/p> _:d .\n";
  EXPECT_NE(Canon(six), Canon(two_threes));
  ExpectInvariant(six);
  ExpectInvariant(two_threes);
}

TEST(Rdfc10, AutomorphicAndNamedGraphCases) {
  // Two identical components; a symmetric pair; blank nodes as graph names
  // shared with the default graph.
  ExpectInvariant("_:a <http://ex/p> _:b .\n_:b <http://ex/p> _:a .\n_:c <http://ex/p> _:d .\n_:d <http://ex/p> _:c .\n");
  ExpectInvariant("_:a <http://ex/knows> _:b .\n_:b <http://ex/knows> _:a .\n_:a <http://ex/name> \"x\" .\n"
                  "_:b <http://ex/name> \"x\" .\n");
  ExpectInvariant("_:s <http://ex/p> _:o _:g .\n_:o <http://ex/p> _:s _:g .\n_:g <http://ex/in> _:s .\n"
                  "_:x <http://ex/p> _:y _:h .\n_:y <http://ex/p> _:x _:h .\n");
  // A star of interchangeable leaves around a distinct centre.
  ExpectInvariant("_:c <http://ex/type> <http://ex/Centre> .\n_:c <http://ex/p> _:l1 .\n_:c <http://ex/p> _:l2 .\n"
                  "_:c <http://ex/p> _:l3 .\n_:c <http://ex/p> _:l4 .\n");
}

std::string Clique(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i != j) text += "_:n" + std::to_string(i) + " <http://ex/p> _:n" + std::to_string(j) + " .\n";
    }
  }
  return text;
}

TEST(Rdfc10, PoisonGraphFailsWithinTheWorkBudget) {
  // A clique of interchangeable blank nodes: factorial permutation search.
  ExpectInvariant(Clique(4));
  CanonOptions options;
  options.max_work = 5'000;
  auto result = CanonicalNQuads(Parse(Clique(10)), options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("interchangeable blank nodes"), std::string::npos)
      << result.status().message();
  // The default budget also ends it, in bounded time.
  EXPECT_FALSE(CanonicalNQuads(Parse(Clique(10))).ok());
}

TEST(Rdfc10, SizeLimits) {
  std::string many;
  for (int i = 0; i < 50; ++i) many += "_:b" + std::to_string(i) + " <http://ex/p> \"" + std::to_string(i) + "\" .\n";
  CanonOptions options;
  options.max_blank_nodes = 49;
  auto result = CanonicalNQuads(Parse(many), options);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("blank nodes"), std::string::npos);
  options = {};
  options.max_quads = 10;
  EXPECT_FALSE(CanonicalNQuads(Parse(many), options).ok());

  // A long chain of look-alike nodes recurses once per node.
  std::string chain;
  for (int i = 0; i < 40; ++i) chain += "_:c" + std::to_string(i) + " <http://ex/next> _:c" + std::to_string(i + 1) + " .\n";
  options = {};
  options.max_recursion_depth = 5;
  auto deep = CanonicalNQuads(Parse(chain), options);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("deeper"), std::string::npos);
  ExpectInvariant(chain);
}

}  // namespace
}  // namespace backpack::protocol::rdf
