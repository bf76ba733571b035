// Replication throughput and lag between two backpackd nodes, next to the
// source's own badge import rate measured in the same run.
//
//   build/tests/replication_bench [RECORDS] [STEADY_PER_SECOND] [STEADY_SECONDS]
//
// 1. Import: our own issuer (tests/support/test_issuer.h; RSA-2048 key,
//    documents on 127.0.0.1) signs RECORDS (default 100000) distinct OB 2.0
//    assertions for 4 earners. A starts (B's port is reserved first, so B's
//    node name is known); each earner signs up, verifies the address and
//    sets {"mirrors": [B], "mirror_all": true}. Then every JWS is posted to
//    A's POST /api/v1/badges over 64 keep-alive connections, as import_bench
//    does: each import is fully verified, accepted, written with a synced WAL
//    and publishes one signed `badge` record in A's change log for the
//    mirror. The time from the first post to the last 201 is A's import rate.
// 2. Catch-up: B starts empty with A as its peer. B's /metrics is read every
//    20 ms until its cursor in A's log reaches the log's length; the rate
//    counts the records B applied from the first page applied.
// 3. Steady lag: the earners import STEADY_PER_SECOND (default 20) more
//    signed badges a second for STEADY_SECONDS (default 10); a sampler reads
//    B's cursor every 5 ms, and each badge record's lag is the time from the
//    201 that committed it on A to the first sample at which B holds it.
//
// Both nodes run on 127.0.0.1 with log level warn, [fetch] allow_private and
// default federation settings (pages of 500 records, long polls).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
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
#include <nlohmann/json.hpp>

#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;
using backpack::testing::NodeProcess;
using backpack::testing::Reply;
using backpack::testing::TestIssuer;
using nlohmann::json;

constexpr int kEarners = 4;
constexpr int kConnections = 64;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Email(int earner) { return fmt::format("earner{}@example.org", earner); }

// A port nothing listens on now (the kernel's pick), so the node name is
// known before the node starts.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "cannot find a free port\n");
    std::exit(1);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// `name{peer="<peer>"}` (or `name` alone) from the node's /metrics; -1 when absent.
int64_t Metric(const NodeProcess& node, const std::string& name, const std::string& peer = {}) {
  Reply r = node.Call({"GET", "/metrics", "", "", "", {}});
  if (r.status != 200) return -1;
  const std::string series = peer.empty() ? name + " " : name + "{peer=\"" + peer + "\"} ";
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series)) return std::stoll(line.substr(series.size()));
  }
  return -1;
}

// Posts `jws[i]` (earner i % kEarners, whose session is tokens[i % kEarners])
// to `node`'s POST /api/v1/badges over `connections` keep-alive connections.
// Returns the seconds from the first post to the last answer; `created`
// counts the 201s.
double Import(const NodeProcess& node, const std::vector<std::string>& jws, const std::vector<std::string>& tokens,
              int connections, std::atomic<int>& created, std::atomic<int>& failed) {
  const std::string host = node.address().substr(0, node.address().rfind(':'));
  const std::string port = node.address().substr(node.address().rfind(':') + 1);
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < connections; ++c) {
    clients.emplace_back([&] {
      net::io_context ioc;
      net::ip::tcp::socket socket(ioc);
      net::ip::tcp::resolver resolver(ioc);
      boost::system::error_code ec;
      net::connect(socket, resolver.resolve(host, port), ec);
      if (ec) {
        ++failed;
        return;
      }
      boost::beast::flat_buffer buffer;
      for (size_t i = next++; i < jws.size(); i = next++) {
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/api/v1/badges", 11};
        req.set(bhttp::field::host, node.address());
        req.set(bhttp::field::content_type, "application/json");
        req.set(bhttp::field::authorization, "Bearer " + tokens[i % tokens.size()]);
        req.body() = "{\"jws\":\"" + jws[i] + "\"}";
        req.prepare_payload();
        bhttp::write(socket, req, ec);
        bhttp::response<bhttp::string_body> res;
        if (!ec) bhttp::read(socket, buffer, res, ec);
        if (ec) {
          ++failed;
          return;
        }
        if (res.result_int() == 201) {
          ++created;
        } else if (failed++ == 0) {
          std::fprintf(stderr, "import answered %d: %s\n", res.result_int(), res.body().c_str());
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  return Seconds(Clock::now() - start);
}

std::string Toml(const std::string& federation) {
  // The first lines land in the [accounts] table NodeProcess opens.
  return "signups_per_hour = 100000\nmail_requests_per_hour = 10000\nlogin_attempts_per_minute = 10000\n"
         "[server]\nworker_threads = 64\nmax_pending_requests = 100000\n"
         "[badges]\nmax_per_account = 1000000\nimports_per_minute = 1000000\n"
         "[log]\nlevel = \"warn\"\n"
         "[fetch]\nallow_private = true\n[federation]\n" +
         federation;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t at = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[at];
}

// Signs `count` assertions, the i-th for earner (i + offset) % kEarners, on every core.
std::vector<std::string> Sign(TestIssuer& issuer, int count, int offset = 0) {
  std::vector<std::string> jws(static_cast<size_t>(count));
  std::vector<std::thread> signers;
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned t = 0; t < n; ++t) {
    signers.emplace_back([&, t] {
      for (size_t i = t; i < jws.size(); i += n) {
        jws[i] = issuer.AwardSigned({.email = Email(static_cast<int>((i + offset) % kEarners))});
      }
    });
  }
  for (auto& s : signers) s.join();
  return jws;
}

// Waits until `done()` or `limit` passes; false on timeout.
template <typename F>
bool WaitFor(F done, std::chrono::seconds limit) {
  const auto until = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int records = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int steady_rate = argc > 2 ? std::atoi(argv[2]) : 20;
  const int steady_seconds = argc > 3 ? std::atoi(argv[3]) : 10;
  if (records <= 0 || steady_rate < 0 || steady_seconds < 0) {
    std::fprintf(stderr, "usage: replication_bench [RECORDS] [STEADY_PER_SECOND] [STEADY_SECONDS]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const int steady_total = steady_rate * steady_seconds;

  TestIssuer issuer;
  if (!issuer.Start()) {
    std::fprintf(stderr, "cannot start the issuer\n");
    return 1;
  }
  // A static issuer: documents may be reused for a minute, as web hosts serve them.
  issuer.SetMaxAge(60);
  std::printf("signing %d + %d assertions for %d earners...\n", records, steady_total, kEarners);
  std::fflush(stdout);
  const auto sign_start = Clock::now();
  const std::vector<std::string> jws = Sign(issuer, records);
  const std::vector<std::string> steady_jws = Sign(issuer, steady_total);
  std::printf("  signed in %.1f s\n", Seconds(Clock::now() - sign_start));

  backpack::testing::TempDir dir;
  // B's port is reserved now so that the earners can name B as their mirror.
  const std::string b_name = fmt::format("127.0.0.1:{}", FreePort());
  const std::string a_data = dir.MakeSubdir("a") + "/data";
  NodeProcess a(a_data, Toml(""));
  if (!a.Start()) {
    std::fprintf(stderr, "A did not start:\n%s\n", a.ReadLog().c_str());
    return 1;
  }
  const std::string a_name = a.address();
  std::vector<std::string> tokens;
  for (int e = 0; e < kEarners; ++e) {
    const std::string token = backpack::testing::SignUpVerified(a, a_data + "/outbox", Email(e));
    if (token.empty()) {
      std::fprintf(stderr, "cannot sign up earner %d:\n%s\n", e, a.ReadLog().c_str());
      return 1;
    }
    const Reply chose = a.Call({"PUT", "/api/v1/account/federation",
                                json{{"mirrors", {b_name}}, {"mirror_all", true}}.dump(), "application/json", token,
                                {}});
    if (chose.status != 200) {
      std::fprintf(stderr, "mirror choice %d: %d %s\n", e, chose.status, chose.body.c_str());
      return 1;
    }
    // One warm-up import each fills the fetch cache with the issuer's documents.
    const Reply warm = a.Call({"POST", "/api/v1/badges",
                               json{{"jws", issuer.AwardSigned({.email = Email(e)})}}.dump(), "application/json",
                               token, {}});
    if (warm.status != 201) {
      std::fprintf(stderr, "warm-up import %d: %d %s\n", e, warm.status, warm.body.c_str());
      return 1;
    }
    tokens.push_back(token);
  }
  const int64_t log_before = Metric(a, "backpackd_replication_log_entries");

  std::printf("importing %d signed badges on A (%s) over %d connections, mirrored to %s...\n", records,
              a_name.c_str(), kConnections, b_name.c_str());
  std::fflush(stdout);
  std::atomic<int> created{0}, failed{0};
  const double import_seconds = Import(a, jws, tokens, kConnections, created, failed);
  const double import_rate = created / import_seconds;
  std::printf("  A imports %.0f badges/s (%d created, %d failed, %.2f s)\n", import_rate, created.load(),
              failed.load(), import_seconds);
  if (failed > 0) return 1;
  // Every accepted import published its badge record for the mirror.
  const int64_t log_length = log_before + created;
  if (!WaitFor([&] { return Metric(a, "backpackd_replication_log_entries") >= log_length; },
               std::chrono::seconds(60))) {
    std::fprintf(stderr, "A's log holds %lld entries, not %lld\n",
                 static_cast<long long>(Metric(a, "backpackd_replication_log_entries")),
                 static_cast<long long>(log_length));
    return 1;
  }
  std::printf("  A's change log: %lld entries (%lld before the run: each earner's home, mirrors and warm-up badge)\n",
              static_cast<long long>(Metric(a, "backpackd_replication_log_entries")),
              static_cast<long long>(log_before));
  std::fflush(stdout);

  NodeProcess b(dir.MakeSubdir("b") + "/data", Toml("peers = [\"http://" + a_name + "\"]\n"));
  b.set_listen(b_name);
  const auto b_started = Clock::now();
  if (!b.Start()) {
    std::fprintf(stderr, "B did not start:\n%s\n", b.ReadLog().c_str());
    return 1;
  }
  std::printf("B (%s) starts empty and pulls from A...\n", b.address().c_str());
  std::fflush(stdout);
  Clock::time_point first{}, done{};
  int64_t first_applied = 0;
  int64_t last = -1;
  for (;;) {
    const int64_t cursor = Metric(b, "backpackd_replication_cursor", a_name);
    const auto now = Clock::now();
    if (cursor > 0 && first == Clock::time_point{}) {
      first = now;
      first_applied = Metric(b, "backpackd_replication_records_applied_total", a_name);
    }
    if (cursor >= log_length) {
      done = now;
      break;
    }
    if (cursor != last) last = cursor;
    if (now - b_started > std::chrono::minutes(10)) {
      std::fprintf(stderr, "B is stuck at %lld of %lld\n%s\n", static_cast<long long>(last),
                   static_cast<long long>(log_length), b.ReadLog().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t applied = Metric(b, "backpackd_replication_records_applied_total", a_name);
  const double replicate_seconds = Seconds(done - first);
  // Counted from the first sample that saw a page applied: the records of that page are left out.
  const double replicate_rate = static_cast<double>(applied - first_applied) / std::max(replicate_seconds, 1e-3);
  std::printf(
      "  B applied %lld records (%d badge records); %.0f records/s (%lld records in %.2f s from the first page;\n"
      "  %.2f s from B's start, which includes the handshake and the first look at the peer table)\n",
      static_cast<long long>(applied), created.load(), replicate_rate, static_cast<long long>(applied - first_applied),
      replicate_seconds, Seconds(done - b_started));
  std::printf("  ratio replication/import: %.2f (target >= 0.5)\n", replicate_rate / import_rate);
  std::printf("  B: %lld older records (0: nothing arrived twice), %lld failed pulls\n",
              static_cast<long long>(Metric(b, "backpackd_replication_records_older_total", a_name)),
              static_cast<long long>(Metric(b, "backpackd_replication_pull_failures_total", a_name)));
  std::fflush(stdout);

  if (steady_total > 0) {
    std::printf("steady importing: %d signed badges/s on A for %d s through the API...\n", steady_rate,
                steady_seconds);
    std::fflush(stdout);
    // Samples of B's cursor.
    std::mutex mu;
    std::vector<std::pair<Clock::time_point, int64_t>> samples;
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
      while (sampling) {
        const int64_t cursor = Metric(b, "backpackd_replication_cursor", a_name);
        {
          std::lock_guard lock(mu);
          samples.emplace_back(Clock::now(), cursor);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    // committed[k]: when the k-th steady import (log entry entries[k]) was acknowledged.
    std::vector<Clock::time_point> committed;
    std::vector<int64_t> entries;
    const auto steady_start = Clock::now();
    for (int k = 0; k < steady_total; ++k) {
      std::this_thread::sleep_until(steady_start + std::chrono::microseconds(int64_t{1000000} * k / steady_rate));
      const Reply r = a.Call({"POST", "/api/v1/badges", "{\"jws\":\"" + steady_jws[k] + "\"}", "application/json",
                              tokens[k % kEarners], {}});
      if (r.status != 201) {
        std::fprintf(stderr, "steady import %d: %d %s\n", k, r.status, r.body.c_str());
        continue;
      }
      committed.push_back(Clock::now());
      entries.push_back(log_length + static_cast<int64_t>(committed.size()));
    }
    const double steady_import_seconds = Seconds(Clock::now() - steady_start);
    const int64_t target = log_length + static_cast<int64_t>(committed.size());
    WaitFor([&] { return Metric(b, "backpackd_replication_cursor", a_name) >= target; }, std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sampling = false;
    sampler.join();
    std::vector<double> lags;
    for (size_t k = 0; k < committed.size(); ++k) {
      for (const auto& [at, cursor] : samples) {
        if (cursor >= entries[k]) {
          lags.push_back(std::max(0.0, Seconds(at - committed[k]) * 1000));
          break;
        }
      }
    }
    std::printf("  %zu badges imported in %.1f s; B holds %zu of their records\n", committed.size(),
                steady_import_seconds, lags.size());
    std::printf(
        "  lag from A's 201 to B holding the badge record: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
        "max %.1f ms (sampled every 5 ms)\n",
        Percentile(lags, 0.5), Percentile(lags, 0.9), Percentile(lags, 0.99), Percentile(lags, 1.0));
    // The lag in each second of the steady import: bounded means it does not grow.
    std::string by_second;
    for (int s = 0; s < steady_seconds; ++s) {
      double worst = 0;
      for (size_t k = 0; k < lags.size(); ++k) {
        if (Seconds(committed[k] - steady_start) >= s && Seconds(committed[k] - steady_start) < s + 1) {
          worst = std::max(worst, lags[k]);
        }
      }
      by_second += fmt::format("{}{:.1f}", s == 0 ? "" : " ", worst);
    }
    std::printf("  max lag in each second (ms): %s\n", by_second.c_str());
  }

  b.StopWith(SIGTERM);
  a.StopWith(SIGTERM);
  return 0;
}
