// A bounded, thread-safe LRU cache, sharded to keep lock hold times and
// contention small on hot read paths. Values are copied out on Get: store
// shared_ptr<const T> for anything larger than a few words.
#pragma once

#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace backpack {

template <typename Value>
class LruCache {
 public:
  // Holds at most `capacity` entries in all (0 disables the cache).
  explicit LruCache(size_t capacity, size_t shards = 16)
      : per_shard_(capacity == 0 ? 0 : std::max<size_t>(1, capacity / shards)), shards_(shards) {}

  std::optional<Value> Get(const std::string& key) {
    if (per_shard_ == 0) return std::nullopt;
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return std::nullopt;
    s.order.splice(s.order.begin(), s.order, it->second);
    return it->second->second;
  }

  void Put(const std::string& key, Value value) {
    if (per_shard_ == 0) return;
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) {
      it->second->second = std::move(value);
      s.order.splice(s.order.begin(), s.order, it->second);
      return;
    }
    s.order.emplace_front(key, std::move(value));
    s.index.emplace(key, s.order.begin());
    if (s.index.size() > per_shard_) {
      s.index.erase(s.order.back().first);
      s.order.pop_back();
    }
  }

  void Erase(const std::string& key) {
    if (per_shard_ == 0) return;
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return;
    s.order.erase(it->second);
    s.index.erase(it);
  }

 private:
  struct Shard {
    std::mutex mu;
    std::list<std::pair<std::string, Value>> order;  // most recent first
    std::unordered_map<std::string, typename std::list<std::pair<std::string, Value>>::iterator> index;
  };
  Shard& ShardOf(const std::string& key) { return shards_[std::hash<std::string>{}(key) % shards_.size()]; }

  const size_t per_shard_;
  std::vector<Shard> shards_;
};

}  // namespace backpack
