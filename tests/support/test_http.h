// Test support: a blocking HTTP/1.1 client over real sockets, a backpackd
// child process on an ephemeral port, and temporary directories.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace backpack::testing {

struct Reply {
  int status = 0;  // 0 when the connection failed or closed without answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& name) const;
};

struct RequestSpec {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::string content_type = "application/json";
  std::string bearer;
  std::map<std::string, std::string> headers;
};

// One request on a fresh connection. `tls_ca` non-empty: HTTPS verified
// against that PEM file.
Reply Send(const std::string& host_port, const RequestSpec& spec, const std::string& tls_ca = {});

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Creates path()/name and returns its path.
  std::string MakeSubdir(const std::string& name) const;

 private:
  std::string path_;
};

// A backpackd child process: --listen 127.0.0.1:0, a port file, the given
// TOML appended to a config file in its data dir's parent.
class NodeProcess {
 public:
  NodeProcess(std::string data_dir, std::string extra_toml = {});
  ~NodeProcess();  // SIGKILLs a still-running child

  // Starts and waits until the port file appears; false on failure.
  bool Start();
  const std::string& address() const { return address_; }
  // Sends `signal` and waits for exit; returns the exit status as from
  // waitpid (use WIFEXITED etc.), or -1 on timeout.
  int StopWith(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits for the child's exit without signalling.
  int Wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  std::string log_path() const { return dir_ + "/node.log"; }
  std::string ReadLog() const;

  Reply Call(const RequestSpec& spec) const { return Send(address_, spec, tls_ca_); }
  void set_tls_ca(std::string ca) { tls_ca_ = std::move(ca); }
  // --listen for the next Start() ("127.0.0.1:0" unless set). A node that
  // restarts on address() keeps its federation node name.
  void set_listen(std::string host_port) { listen_ = std::move(host_port); }

 private:
  std::string data_dir_;
  std::string dir_;
  std::string extra_toml_;
  std::string address_;
  std::string tls_ca_;
  std::string listen_ = "127.0.0.1:0";
  pid_t pid_ = -1;
};

// Runs a command line through /bin/sh; returns its exit status.
int Shell(const std::string& command);
std::string ReadFile(const std::string& path);

// Polls `done` every 50 ms until it holds or `timeout` passes; its last answer.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(20));
std::vector<std::string> ListFiles(const std::string& dir);

// The token of the newest message of `kind` ("Verification" or "Reset")
// sent to `address` among the messages in `outbox_dir`; "" if none.
std::string MailToken(const std::string& outbox_dir, const std::string& address,
                      const std::string& kind = "Verification");

// Signs up `email` on `node` (whose outbox is `outbox_dir`), verifies the
// address with the mailed token and signs in; returns the session token
// ("" on any failure).
std::string SignUpVerified(const NodeProcess& node, const std::string& outbox_dir, const std::string& email,
                           const std::string& password = "correct horse battery");

}  // namespace backpack::testing
