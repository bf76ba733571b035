#include <algorithm>
#include <functional>
#include <mutex>
#include <utility>

#include "storage/store.h"

namespace backpack::storage {

struct KeyLocks::Impl {
  explicit Impl(size_t stripes) : mutexes(stripes) {}

  // Every Lock() takes its stripes in ascending order, so no cycle of waiting
  // guards can form.
  template <typename Keys>
  std::vector<size_t> LockStripes(const Keys& keys) {
    std::vector<size_t> stripes;
    stripes.reserve(keys.size());
    for (std::string_view key : keys) {
      stripes.push_back(std::hash<std::string_view>{}(key) % mutexes.size());
    }
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    for (size_t stripe : stripes) mutexes[stripe].lock();
    return stripes;
  }

  std::vector<std::mutex> mutexes;
};

KeyLocks::KeyLocks(size_t stripes) : impl_(std::make_unique<Impl>(std::max<size_t>(stripes, 1))) {}
KeyLocks::~KeyLocks() = default;

KeyLocks::Guard::Guard(KeyLocks* owner, std::vector<size_t> stripes)
    : owner_(owner), stripes_(std::move(stripes)) {}

KeyLocks::Guard::Guard(Guard&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), stripes_(std::move(other.stripes_)) {}

KeyLocks::Guard::~Guard() {
  if (owner_ == nullptr) return;
  for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) {
    owner_->impl_->mutexes[*it].unlock();
  }
}

KeyLocks::Guard KeyLocks::Lock(std::initializer_list<std::string_view> keys) {
  return Guard(this, impl_->LockStripes(keys));
}

KeyLocks::Guard KeyLocks::Lock(const std::vector<std::string>& keys) {
  return Guard(this, impl_->LockStripes(keys));
}

}  // namespace backpack::storage
