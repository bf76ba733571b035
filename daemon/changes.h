// Change notifications between the daemon's services: the account, badge
// and collection services tell their listeners what they changed, so that
// what is derived from their data (the signed records peers replicate,
// docs/federation.md) follows it without polling.
//
// Contract: a service calls its listeners after the write has committed and
// after it has released its own locks, on the thread that made the change
// (a worker). A listener may therefore call back into any service, but it
// delays the caller's answer: keep it short, or hand the work off. A
// listener must not throw; what it fails to do it must catch up with later
// (a missed notification is never re-sent).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace backpack {

struct Change {
  enum class Subject {
    kAccount,     // the account's addresses changed (one removed), or the account was deleted
    kBadge,       // a badge was created, replaced, accepted or rejected, or deleted
    kCollection,  // a collection was created, changed or deleted (or all of them)
  };
  Subject subject = Subject::kAccount;
  std::string account;  // the local account id
  std::string id;       // the badge or collection id; "" for the account, or for all its collections
  // The badges whose standing may have changed: for kBadge the badge itself,
  // for kCollection every badge the collection listed before or after.
  std::vector<std::string> badges;
};

using ChangeListener = std::function<void(const Change&)>;

// The listeners of one service. Thread-safe; listeners are usually added at
// start-up, before the service is used.
class ChangeListeners {
 public:
  void Add(ChangeListener listener) {
    std::lock_guard lock(mu_);
    listeners_.push_back(std::move(listener));
  }
  // Calls every listener in the calling thread.
  void Notify(const Change& change) const {
    std::vector<ChangeListener> listeners;
    {
      std::lock_guard lock(mu_);
      if (listeners_.empty()) return;
      listeners = listeners_;
    }
    for (const auto& listener : listeners) listener(change);
  }

 private:
  mutable std::mutex mu_;
  std::vector<ChangeListener> listeners_;
};

}  // namespace backpack
