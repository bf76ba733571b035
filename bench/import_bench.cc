// Signed-badge imports per second through the badge API, with durable
// writes, next to the machine's RSA-2048 verify rate measured in the same run.
//
//   build/tests/import_bench [BADGES] [CONNECTIONS]
//
// Starts our own issuer (RSA-2048 key, documents served on 127.0.0.1), signs
// BADGES distinct OB 2.0 assertions, starts a backpackd node, signs up and
// verifies an earner, then posts every JWS to POST /api/v1/badges over
// CONNECTIONS keep-alive connections and times the whole run. Every import
// is verified (JWS signature, issuer, BadgeClass, key, revocation list) and
// written with a synced WAL before its 201. Then runs `openssl speed rsa2048`
// for the verify rate of one core.
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// "rsa 2048 bits 0.000690s 0.000020s 1449.3 49805.3" -> 49805.3
double OpensslRsaVerifiesPerSecond() {
  FILE* p = ::popen("openssl speed -seconds 3 -multi 1 rsa2048 2>/dev/null", "r");
  if (p == nullptr) return 0;
  char line[512];
  double verifies = 0;
  while (std::fgets(line, sizeof line, p) != nullptr) {
    double sign_s = 0, verify_s = 0, signs = 0, v = 0;
    if (std::sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &sign_s, &verify_s, &signs, &v) == 4) verifies = v;
  }
  ::pclose(p);
  return verifies;
}

}  // namespace

int main(int argc, char** argv) {
  const int badges = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int connections = argc > 2 ? std::atoi(argv[2]) : 64;
  using backpack::testing::TestIssuer;

  TestIssuer issuer;
  if (!issuer.Start()) {
    std::fprintf(stderr, "cannot start the issuer\n");
    return 1;
  }
  // A static issuer: documents may be reused for a minute, as web hosts serve them.
  issuer.SetMaxAge(60);

  std::vector<std::string> jws(static_cast<size_t>(badges));
  const auto sign_start = Clock::now();
  {
    std::vector<std::thread> signers;
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned t = 0; t < n; ++t) {
      signers.emplace_back([&, t] {
        for (size_t i = t; i < jws.size(); i += n) jws[i] = issuer.AwardSigned({.email = "bench@example.org"});
      });
    }
    for (auto& s : signers) s.join();
  }
  std::fprintf(stderr, "signed %d badges in %.1f s\n", badges, Seconds(Clock::now() - sign_start));

  backpack::testing::TempDir dir;
  backpack::testing::NodeProcess node(dir.path() + "/data",
                                      "[server]\nworker_threads = 64\nmax_pending_requests = 100000\n"
                                      "[fetch]\nallow_private = true\n"
                                      "[badges]\nmax_per_account = 1000000\nimports_per_minute = 1000000\n"
                                      "[log]\nlevel = \"warn\"\n");
  if (!node.Start()) {
    std::fprintf(stderr, "cannot start backpackd:\n%s\n", node.ReadLog().c_str());
    return 1;
  }
  const std::string token =
      backpack::testing::SignUpVerified(node, dir.path() + "/data/outbox", "bench@example.org");
  if (token.empty()) {
    std::fprintf(stderr, "cannot sign up:\n%s\n", node.ReadLog().c_str());
    return 1;
  }
  const std::string host = node.address().substr(0, node.address().rfind(':'));
  const std::string port = node.address().substr(node.address().rfind(':') + 1);

  // One warm-up import fills the fetch cache with the issuer's documents.
  {
    const std::string warm = issuer.AwardSigned({.email = "bench@example.org"});
    backpack::testing::Reply r = node.Call({"POST", "/api/v1/badges", "{\"jws\":\"" + warm + "\"}",
                                            "application/json", token, {}});
    if (r.status != 201) {
      std::fprintf(stderr, "warm-up import failed: %d %s\n", r.status, r.body.c_str());
      return 1;
    }
  }

  std::atomic<int> created{0};
  std::atomic<int> failed{0};
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c) {
    clients.emplace_back([&] {
      net::io_context ioc;
      net::ip::tcp::socket socket(ioc);
      net::ip::tcp::resolver resolver(ioc);
      net::connect(socket, resolver.resolve(host, port));
      boost::beast::flat_buffer buffer;
      for (size_t i = next++; i < jws.size(); i = next++) {
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/api/v1/badges", 11};
        req.set(bhttp::field::host, node.address());
        req.set(bhttp::field::content_type, "application/json");
        req.set(bhttp::field::authorization, "Bearer " + token);
        req.body() = "{\"jws\":\"" + jws[i] + "\"}";
        req.prepare_payload();
        boost::system::error_code ec;
        bhttp::write(socket, req, ec);
        bhttp::response<bhttp::string_body> res;
        if (!ec) bhttp::read(socket, buffer, res, ec);
        if (ec) {
          ++failed;
          return;
        }
        if (res.result_int() == 201) {
          ++created;
        } else {
          if (failed++ == 0) std::fprintf(stderr, "import answered %d: %s\n", res.result_int(), res.body().c_str());
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  const double elapsed = Seconds(Clock::now() - start);
  const double rate = created / elapsed;

  const double verifies = OpensslRsaVerifiesPerSecond();
  std::printf("signed-badge imports: %d created, %d failed, %.2f s, %.0f imports/s over %d connections\n",
              created.load(), failed.load(), elapsed, rate, connections);
  std::printf("issuer document requests during the run: %d (revocation list)\n",
              issuer.RequestCount(issuer.RevocationListUrl()));
  std::printf("openssl speed rsa2048 (one core): %.0f verifies/s\n", verifies);
  if (verifies > 0) {
    std::printf("ratio imports/s : rsa2048 verifies/s (one core) = %.3f\n", rate / verifies);
  }
  std::printf("target 5000 imports/s: %s\n", rate >= 5000 ? "met" : "NOT met");
  node.StopWith(SIGTERM);
  return failed == 0 ? 0 : 1;
}
