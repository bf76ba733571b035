// Replication throughput and lag between two backpackd nodes, next to the
// source's local publish rate measured in the same run.
//
//   build/tests/replication_bench [RECORDS] [STEADY_PER_SECOND] [STEADY_SECONDS]
//
// 1. Publish: RECORDS (default 100000) federated identities, each one signed
//    home record in A's change log, written straight into A's data directory
//    through RecordStore::Identity from 8 threads (the node's worker pool
//    size), before A starts. Every write is WAL-synced, as in the node.
// 2. Catch-up: A starts, then B, which names A as its peer and starts empty.
//    B's /metrics is read every 20 ms until its cursor in A's log reaches
//    RECORDS; the rate counts from the first page applied.
// 3. Steady lag: STEADY_PER_SECOND (default 20) earners a second for
//    STEADY_SECONDS (default 10) sign up on A, sign in and open their
//    federation settings (which publishes their home record); a sampler
//    reads B's cursor every 5 ms, and each record's lag is the time from the
//    201/200 that committed it on A to the first sample at which B holds it.
//
// Both nodes run on 127.0.0.1 with log level warn and default federation
// settings (pages of 500 records, long polls).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
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

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "federation/records.h"
#include "storage/store.h"
#include "tests/support/test_http.h"

namespace {

using Clock = std::chrono::steady_clock;
using backpack::testing::NodeProcess;
using backpack::testing::Reply;
using nlohmann::json;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Random(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

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

// Writes `records` home records into the change log at `data_dir` as node
// `name`; returns records per second.
double Publish(const std::string& data_dir, const std::string& name, int records, int threads) {
  backpack::storage::StoreOptions options;
  options.path = data_dir + "/db";
  auto store = backpack::storage::OpenRocksStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  backpack::storage::KeyLocks locks;
  auto opened = backpack::federation::RecordStore::Open(
      **store, locks, {.node_name = name, .node_url = "http://" + name},
      [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      },
      Random);
  if (!opened.ok()) {
    std::fprintf(stderr, "records: %s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  auto& log = **opened;
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < records; i = next++) {
        auto id = log.Identity(fmt::format("bench-{}", i));
        if (!id.ok() && !failed.exchange(true)) std::fprintf(stderr, "identity: %s\n", id.status().ToString().c_str());
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = Seconds(Clock::now() - start);
  if (failed) std::exit(1);
  if (log.Watermark() != static_cast<uint64_t>(records)) {
    std::fprintf(stderr, "the log holds %llu entries\n", static_cast<unsigned long long>(log.Watermark()));
    std::exit(1);
  }
  return records / seconds;
}

std::string Toml(const std::string& federation) {
  // The first lines land in the [accounts] table NodeProcess opens.
  return "signups_per_hour = 100000\nlogin_attempts_per_minute = 10000\n[log]\nlevel = \"warn\"\n"
         "[fetch]\nallow_private = true\n[federation]\n" +
         federation;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t at = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[at];
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
  backpack::testing::TempDir dir;
  const std::string a_name = fmt::format("127.0.0.1:{}", FreePort());
  const std::string a_data = dir.MakeSubdir("a") + "/data";

  std::printf("publishing %d home records on A (%s) through RecordStore::Identity, 8 threads...\n", records,
              a_name.c_str());
  std::fflush(stdout);
  const double publish_rate = Publish(a_data, a_name, records, 8);
  std::printf("  A publishes %.0f records/s\n", publish_rate);

  NodeProcess a(a_data, Toml(""));
  a.set_listen(a_name);
  if (!a.Start()) {
    std::fprintf(stderr, "A did not start:\n%s\n", a.ReadLog().c_str());
    return 1;
  }
  NodeProcess b(dir.MakeSubdir("b") + "/data", Toml("peers = [\"http://" + a_name + "\"]\n"));
  const auto b_started = Clock::now();
  if (!b.Start()) {
    std::fprintf(stderr, "B did not start:\n%s\n", b.ReadLog().c_str());
    return 1;
  }
  std::printf("B (%s) starts empty and pulls from A...\n", b.address().c_str());
  std::fflush(stdout);
  Clock::time_point first{}, done{};
  int64_t last = -1;
  for (;;) {
    const int64_t cursor = Metric(b, "backpackd_replication_cursor", a_name);
    const auto now = Clock::now();
    if (cursor > 0 && first == Clock::time_point{}) first = now;
    if (cursor >= records) {
      done = now;
      break;
    }
    if (cursor != last) last = cursor;
    if (now - b_started > std::chrono::minutes(10)) {
      std::fprintf(stderr, "B is stuck at %lld of %d\n%s\n", static_cast<long long>(last), records,
                   b.ReadLog().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double replicate_seconds = Seconds(done - first);
  const double replicate_rate = records / std::max(replicate_seconds, 1e-3);
  std::printf(
      "  B replicates %.0f records/s (%d records in %.2f s from the first page; %.2f s from B's start,\n"
      "  which includes the handshake and the first look at the peer table)\n",
      replicate_rate, records, replicate_seconds, Seconds(done - b_started));
  std::printf("  ratio B/A: %.2f (target >= 0.5)\n", replicate_rate / publish_rate);
  std::printf("  B: %lld older records (0: nothing arrived twice), %lld failed pulls\n",
              static_cast<long long>(Metric(b, "backpackd_replication_records_older_total", a_name)),
              static_cast<long long>(Metric(b, "backpackd_replication_pull_failures_total", a_name)));
  std::fflush(stdout);

  if (steady_rate > 0 && steady_seconds > 0) {
    const int total = steady_rate * steady_seconds;
    std::printf("steady publishing: %d earners/s on A for %d s through the API...\n", steady_rate, steady_seconds);
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
    // committed[k]: when the k-th earner's home record (entry records + k + 1) was acknowledged.
    std::vector<Clock::time_point> committed;
    std::vector<int64_t> entries;
    const auto steady_start = Clock::now();
    for (int k = 0; k < total; ++k) {
      std::this_thread::sleep_until(steady_start + std::chrono::microseconds(int64_t{1000000} * k / steady_rate));
      const std::string credentials =
          json{{"email", fmt::format("steady{}@example.org", k)}, {"password", "correct horse battery"}}.dump();
      if (a.Call({"POST", "/api/v1/accounts", credentials, "application/json", "", {}}).status != 201) {
        std::fprintf(stderr, "sign-up %d failed\n", k);
        continue;
      }
      Reply session = a.Call({"POST", "/api/v1/sessions", credentials, "application/json", "", {}});
      const json token = json::parse(session.body, nullptr, false);
      if (session.status != 201 || !token.is_object()) {
        std::fprintf(stderr, "sign-in %d failed: %d\n", k, session.status);
        continue;
      }
      Reply choices = a.Call({"GET", "/api/v1/account/federation", "", "", token.value("token", ""), {}});
      if (choices.status != 200) {
        std::fprintf(stderr, "federation settings %d failed: %d\n", k, choices.status);
        continue;
      }
      committed.push_back(Clock::now());
      entries.push_back(records + static_cast<int64_t>(committed.size()));
    }
    const double publish_seconds = Seconds(Clock::now() - steady_start);
    const int64_t target = records + static_cast<int64_t>(committed.size());
    const auto wait_until = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < wait_until && Metric(b, "backpackd_replication_cursor", a_name) < target) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
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
    std::printf("  %zu records published in %.1f s; B holds %zu of them\n", committed.size(), publish_seconds,
                lags.size());
    std::printf(
        "  lag from A's acknowledgement to B holding the record: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
        "max %.1f ms (sampled every 5 ms)\n",
        Percentile(lags, 0.5), Percentile(lags, 0.9), Percentile(lags, 0.99), Percentile(lags, 1.0));
  }

  b.StopWith(SIGTERM);
  a.StopWith(SIGTERM);
  return 0;
}
