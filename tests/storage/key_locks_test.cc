#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "storage/store.h"

namespace backpack::storage {
namespace {

// Few stripes so distinct keys collide: a guard whose keys share a stripe
// must take it once, and overlapping guards must not deadlock.
TEST(KeyLocksTest, OverlappingGuardsExcludeEachOtherWithoutDeadlock) {
  KeyLocks locks(/*stripes=*/5);
  const std::vector<std::string> keys = {"accounts/a", "accounts/b", "email/a@x", "email/b@x",
                                         "sessions/1", "sessions/2", "tokens/1",  "tokens/2"};
  std::vector<int> counters(keys.size(), 0);  // deliberately not atomic
  constexpr int kThreads = 8, kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread names its keys in a different order.
      const std::vector<size_t> mine = {t % keys.size(), (t + 3) % keys.size(),
                                        (t + 1) % keys.size()};
      for (int round = 0; round < kRounds; ++round) {
        KeyLocks::Guard guard =
            locks.Lock({keys[mine[0]], keys[mine[1]], keys[mine[2]], keys[mine[0]]});
        for (size_t k : mine) {
          const int seen = counters[k];
          std::this_thread::yield();
          counters[k] = seen + 1;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::vector<int> expected(keys.size(), 0);
  for (int t = 0; t < kThreads; ++t) {
    for (size_t k : {t % keys.size(), (t + 3) % keys.size(), (t + 1) % keys.size()}) {
      expected[k] += kRounds;
    }
  }
  EXPECT_EQ(counters, expected);
}

TEST(KeyLocksTest, MovedGuardReleasesOnce) {
  KeyLocks locks;
  {
    KeyLocks::Guard first = locks.Lock(std::vector<std::string>{"k", "j"});
    KeyLocks::Guard second(std::move(first));
  }  // `second` unlocks; the moved-from `first` owns nothing
  std::thread other([&locks] { KeyLocks::Guard again = locks.Lock({"k", "j"}); });
  other.join();
}

}  // namespace
}  // namespace backpack::storage
