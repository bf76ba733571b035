// A running backpackd node: storage, mail, services, routes and the HTTP
// server wired together, with staged shutdown.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "config/config.h"

namespace backpack {

class Node {
 public:
  explicit Node(config::Config config);
  ~Node();

  // Creates the data directory, opens storage and mail, binds the listener
  // and starts the I/O and worker threads. Errors are start-up errors: the
  // caller reports them and exits non-zero.
  Status Start();

  // The bound "HOST:PORT" and the public base URL.
  std::string address() const;
  std::string public_url() const;

  // Blocks until SIGTERM or SIGINT (or Stop()), then stops accepting, lets
  // in-flight requests finish within server.shutdown_grace_ms, drains the
  // worker pool, stops mail and flushes storage. Returns the exit code.
  int Run();

  // Begins the same shutdown from another thread.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace backpack
