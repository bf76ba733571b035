// eddsa-rdfc-2022 verifications per second on one core: our
// VerifyDataIntegrityProof next to the Digital Credentials Consortium's
// JavaScript verifier (@digitalcredentials/vc, through tests/dcc/dcc.js),
// on the same credentials in the same run.
//
//   build/tests/di_bench [SECONDS] [DCC_SECONDS] [ROUNDS]
//
// Signs four OB 3.0 credentials (tests/dcc/sample_credentials.h: minimal
// VCDM 2.0, VCDM 1.1, a course badge, a degree) with a fresh Ed25519 key,
// then for each credential, and for the four in turn, ROUNDS times
// (default 3), alternating:
//   ours    resolves the did:key verification method and verifies the proof,
//           in a loop on this thread for SECONDS (default 2), after a warm-up
//           call (contexts processed once, as in a running node);
//   DCC     `node tests/dcc/dcc.js bench N FILE`: verifyCredential with the
//           DataIntegrityProof suite, after a one-second warm-up, N rounds
//           sized from a calibration run to last about DCC_SECONDS (default 2).
// Each side's figure is its best round: other work on the machine only ever
// slows a round down, and alternating spreads it over both sides. Every
// verification of either side must succeed. Prints both rates and their
// ratio (target: ours at least 20 times DCC's). Needs node and
// `npm ci --prefix tests/dcc`; exits 1 without them. DCC_SECONDS 0 measures
// ours alone (for profiling: `perf record -g build/tests/di_bench 10 0 1`).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/bundled_contexts.h"
#include "protocol/data_integrity.h"
#include "protocol/did.h"
#include "protocol/jsonld.h"
#include "protocol/jws.h"
#include "tests/dcc/dcc_runner.h"
#include "tests/dcc/sample_credentials.h"
#include "tests/support/data_integrity_signer.h"

namespace {

namespace protocol = backpack::protocol;
namespace testing = backpack::testing;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

struct Sample {
  std::string name;
  std::vector<Json> credentials;  // signed
  size_t quads = 0;               // canonical quads of the document(s) and proof configuration(s)
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "di_bench: %s\n", message.c_str());
  std::exit(1);
}

// One verification as a verifier does it: the key from the did:key URL,
// then the proof.
bool VerifyOnce(const Json& credential, const protocol::DataIntegrityOptions& options) {
  const Json& proof = credential["proof"];
  auto key = protocol::ResolveDidKey(proof["verificationMethod"].get<std::string>());
  if (!key.ok()) return false;
  return protocol::VerifyDataIntegrityProof(credential, proof, *key, options).ok();
}

double OursPerSecond(const Sample& sample, double seconds) {
  const protocol::DataIntegrityOptions options;  // bundled contexts, process-wide cache
  for (const Json& credential : sample.credentials) {
    if (!VerifyOnce(credential, options)) Die(sample.name + ": our verifier refuses the credential");
  }
  long verifications = 0;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto now = start;
  while (now < until) {
    for (const Json& credential : sample.credentials) {
      if (!VerifyOnce(credential, options)) Die(sample.name + ": verification failed during the run");
      ++verifications;
    }
    now = Clock::now();
  }
  return verifications / std::chrono::duration<double>(now - start).count();
}

// {"verifications", "seconds", "per_second"} of one dcc.js bench run.
Json DccBench(const testing::DccRunner& dcc, const std::string& file, long rounds) {
  const testing::DccRun run = dcc.Run({"bench", std::to_string(rounds), file});
  if (run.exit_code != 0) Die("dcc.js bench failed: " + run.err);
  Json result = Json::parse(run.out, nullptr, false);
  if (!result.is_object() || !result["per_second"].is_number()) Die("dcc.js bench printed " + run.out);
  return result;
}

// How many rounds over `sample` DCC verifies in about `seconds`.
long DccRounds(const testing::DccRunner& dcc, const std::string& file, const Sample& sample, double seconds) {
  const Json probe = DccBench(dcc, file, 20);
  const double rounds_per_second = probe["per_second"].get<double>() / sample.credentials.size();
  return std::max(20L, static_cast<long>(rounds_per_second * seconds));
}

size_t CanonicalQuads(const Json& signed_credential) {
  protocol::jsonld::Options options;
  options.safe_mode = true;
  const auto loader = protocol::BundledContextLoader();
  Json document = signed_credential;
  document.erase("proof");
  Json proof = signed_credential["proof"];
  proof.erase("proofValue");
  proof["@context"] = signed_credential["@context"];
  size_t quads = 0;
  for (const Json* part : {&document, &proof}) {
    auto nquads = protocol::jsonld::CanonicalNQuads(*part, loader, options);
    if (!nquads.ok()) Die("cannot canonicalise: " + nquads.status().ToString());
    for (char c : *nquads) quads += c == '\n';
  }
  return quads;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const double dcc_seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  if (seconds <= 0 || dcc_seconds < 0 || rounds < 1) Die("usage: di_bench [SECONDS] [DCC_SECONDS] [ROUNDS]");
  const bool with_dcc = dcc_seconds > 0;

  const std::string node = BACKPACK_NODE;
  if (with_dcc && node.empty()) {
    Die("node not found at configure time; install nodejs and npm, then run npm ci in tests/dcc");
  }
  testing::DccRunner dcc(node, BACKPACK_DCC_DIR);
  if (with_dcc && !dcc.modules_installed()) {
    Die("the DCC packages are not installed: run npm ci in " + dcc.dir().string());
  }

  auto key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
  if (!key.ok()) Die(key.status().ToString());
  auto multikey = protocol::Ed25519Multikey(key->public_key());
  if (!multikey.ok()) Die(multikey.status().ToString());
  const std::string did = "did:key:" + *multikey;
  const Json proof_options = testing::EddsaRdfc2022ProofOptions(did + "#" + *multikey, "2026-06-01T12:00:00Z");

  std::vector<Sample> samples;
  const std::pair<const char*, Json> unsigned_credentials[] = {
      {"minimal (VCDM 2.0)", testing::MinimalOpenBadgeCredential(did)},
      {"minimal (VCDM 1.1)", testing::V11OpenBadgeCredential(did)},
      {"course badge", testing::CourseOpenBadgeCredential(did)},
      {"degree", testing::DegreeOpenBadgeCredential(did)},
  };
  Sample all{"all four in turn", {}, 0};
  for (const auto& [name, credential] : unsigned_credentials) {
    auto signed_credential = testing::SignDataIntegrity(credential, proof_options, *key);
    if (!signed_credential.ok()) Die(std::string(name) + ": " + signed_credential.status().ToString());
    const size_t quads = CanonicalQuads(*signed_credential);
    samples.push_back({name, {*signed_credential}, quads});
    all.credentials.push_back(*signed_credential);
    all.quads += quads;
  }
  samples.push_back(all);

  fmt::print(
      "eddsa-rdfc-2022 verifications per second, one core, best of {} rounds "
      "(ours: {} s a round; DCC: about {} s)\n\n",
      rounds, seconds, dcc_seconds);
  fmt::print("{:<20} {:>6} {:>12} {:>10} {:>8}\n", "credential", "quads", "ours/s", "DCC/s", "ratio");
  double worst = 0;
  for (const Sample& sample : samples) {
    const std::string file = with_dcc ? dcc.WriteFile("bench.json", Json(sample.credentials).dump()) : "";
    const long dcc_rounds = with_dcc ? DccRounds(dcc, file, sample, dcc_seconds) : 0;
    double ours = 0, theirs = 0;
    for (int round = 0; round < rounds; ++round) {
      ours = std::max(ours, OursPerSecond(sample, seconds));
      if (with_dcc) theirs = std::max(theirs, DccBench(dcc, file, dcc_rounds)["per_second"].get<double>());
    }
    if (!with_dcc) {
      fmt::print("{:<20} {:>6} {:>12.0f}\n", sample.name, sample.quads, ours);
      continue;
    }
    const double ratio = ours / theirs;
    if (worst == 0 || ratio < worst) worst = ratio;
    fmt::print("{:<20} {:>6} {:>12.0f} {:>10.1f} {:>8.1f}\n", sample.name, sample.quads, ours, theirs, ratio);
    std::fflush(stdout);
  }
  if (with_dcc) fmt::print("\nlowest ratio {:.1f} (target: at least 20)\n", worst);
  return 0;
}
