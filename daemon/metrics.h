// Node metrics in Prometheus text exposition format (version 0.0.4).
//
// Thread-safe. Request counters are keyed by route pattern (never the raw
// path, so the label set stays bounded), method and status.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "storage/store.h"

namespace backpack {

class Metrics {
 public:
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void ConnectionOpened() { ++connections_total_; ++open_connections_; }
  void ConnectionClosed() { --open_connections_; }
  void ConnectionRejected() { ++connections_rejected_; }
  void RequestRejected() { ++requests_rejected_; }
  int64_t open_connections() const { return open_connections_.load(); }

  void RecordRequest(std::string_view route, std::string_view method, unsigned status,
                     double seconds);

  // Everything, with the storage figures and worker queue depth given.
  std::string Render(const storage::StoreStats& store, uint64_t worker_queue_depth) const;

 private:
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<uint64_t> connections_rejected_{0};
  std::atomic<uint64_t> requests_rejected_{0};

  mutable std::mutex mu_;
  // Keyed by views of strings that outlive the Metrics: route patterns
  // (owned by the router) and method names (static).
  std::map<std::tuple<std::string_view, std::string_view, unsigned>, uint64_t> requests_;
  std::array<uint64_t, kLatencyBuckets.size()> bucket_counts_{};  // non-cumulative
  uint64_t latency_count_ = 0;
  double latency_sum_ = 0;
};

}  // namespace backpack
