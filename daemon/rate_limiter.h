// Token-bucket rate limiting keyed by string (client address, email, account).
//
// Each key gets a bucket of `burst` tokens refilled at `burst` per `period`.
// Memory is bounded: at most `max_keys` buckets; when full, buckets that
// have refilled completely (they carry no information) are dropped, and if
// none has, the oldest-touched half is dropped. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace backpack {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double burst, Clock::duration period, size_t max_keys = 100000);

  // Takes one token for `key`. When none is left, returns false and sets
  // `retry_after` to the time until one is.
  bool Allow(std::string_view key, std::chrono::seconds* retry_after = nullptr);
  // Same, at an explicit time (tests).
  bool AllowAt(std::string_view key, Clock::time_point now, std::chrono::seconds* retry_after);

  size_t size() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void Prune(Clock::time_point now);

  const double burst_;
  const double rate_per_second_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace backpack
