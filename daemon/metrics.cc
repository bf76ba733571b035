#include "daemon/metrics.h"

#include <fmt/format.h>

namespace backpack {
namespace {
// Label values escape backslash, quote and newline.
std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
}  // namespace

void Metrics::RecordRequest(std::string_view route, std::string_view method, unsigned status,
                            double seconds) {
  size_t bucket = kLatencyBuckets.size();
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      bucket = i;
      break;
    }
  }
  std::lock_guard lock(mu_);
  ++requests_[{route, method, status}];
  if (bucket < bucket_counts_.size()) ++bucket_counts_[bucket];
  ++latency_count_;
  latency_sum_ += seconds;
}

std::string Metrics::Render(const storage::StoreStats& store, uint64_t worker_queue_depth) const {
  std::string out;
  auto metric = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  metric("backpackd_http_requests_total", "counter", "HTTP requests answered, by route, method and status.");
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, count] : requests_) {
      const auto& [route, method, status] = key;
      out += fmt::format("backpackd_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                         EscapeLabel(route), EscapeLabel(method), status, count);
    }
    metric("backpackd_http_request_duration_seconds", "histogram",
           "Time from a complete request to its response being handed to the socket.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += bucket_counts_[i];
      out += fmt::format("backpackd_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                         kLatencyBuckets[i], cumulative);
    }
    out += fmt::format("backpackd_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", latency_count_);
    out += fmt::format("backpackd_http_request_duration_seconds_sum {}\n", latency_sum_);
    out += fmt::format("backpackd_http_request_duration_seconds_count {}\n", latency_count_);
  }
  metric("backpackd_http_open_connections", "gauge", "Connections open now.");
  out += fmt::format("backpackd_http_open_connections {}\n", open_connections_.load());
  metric("backpackd_http_connections_total", "counter", "Connections accepted.");
  out += fmt::format("backpackd_http_connections_total {}\n", connections_total_.load());
  metric("backpackd_http_connections_rejected_total", "counter", "Connections refused at the connection cap.");
  out += fmt::format("backpackd_http_connections_rejected_total {}\n", connections_rejected_.load());
  metric("backpackd_http_requests_rejected_total", "counter", "Requests refused because the worker queue was full.");
  out += fmt::format("backpackd_http_requests_rejected_total {}\n", requests_rejected_.load());
  metric("backpackd_worker_queue_depth", "gauge", "Requests waiting for or running on a worker thread.");
  out += fmt::format("backpackd_worker_queue_depth {}\n", worker_queue_depth);
  metric("backpackd_storage_estimated_keys", "gauge", "Estimated number of keys in all record families.");
  out += fmt::format("backpackd_storage_estimated_keys {}\n", store.estimated_keys);
  metric("backpackd_storage_live_data_bytes", "gauge", "Bytes of live table files.");
  out += fmt::format("backpackd_storage_live_data_bytes {}\n", store.live_data_bytes);
  metric("backpackd_storage_memtable_bytes", "gauge", "Bytes held in memtables.");
  out += fmt::format("backpackd_storage_memtable_bytes {}\n", store.memtable_bytes);
  metric("backpackd_storage_writes_total", "counter", "Durable write batches since start.");
  out += fmt::format("backpackd_storage_writes_total {}\n", store.writes);
  metric("backpackd_storage_wal_syncs_total", "counter", "WAL syncs since start (group commit shares one among writers).");
  out += fmt::format("backpackd_storage_wal_syncs_total {}\n", store.synced_writes);
  return out;
}

}  // namespace backpack
