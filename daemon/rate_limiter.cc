#include "daemon/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace backpack {

RateLimiter::RateLimiter(double burst, Clock::duration period, size_t max_keys)
    : burst_(std::max(1.0, burst)),
      rate_per_second_(std::max(1.0, burst) / std::chrono::duration<double>(period).count()),
      max_keys_(std::max<size_t>(2, max_keys)) {}

bool RateLimiter::Allow(std::string_view key, std::chrono::seconds* retry_after) {
  return AllowAt(key, Clock::now(), retry_after);
}

bool RateLimiter::AllowAt(std::string_view key, Clock::time_point now, std::chrono::seconds* retry_after) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) Prune(now);
    it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) {
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_per_second_);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after != nullptr) {
    *retry_after = std::chrono::seconds(
        static_cast<int64_t>(std::ceil((1.0 - b.tokens) / rate_per_second_)));
  }
  return false;
}

size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

void RateLimiter::Prune(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * rate_per_second_ >= burst_) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  if (buckets_.size() < max_keys_) return;
  std::vector<Clock::time_point> times;
  times.reserve(buckets_.size());
  for (const auto& [k, b] : buckets_) times.push_back(b.updated);
  auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), mid, times.end());
  const Clock::time_point cutoff = *mid;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    it = it->second.updated <= cutoff ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace backpack
