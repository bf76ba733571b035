// backpackctl: the operator's command-line tool.
//
//   backpackctl check-config --config FILE     validate a config file, print the effective settings
//   backpackctl status [--url URL]             health and self-description of a running node
//   backpackctl issue ...                      an issuer's client of the OB 3.0 and Badge Connect APIs
//                                              (daemon/ctl_issue.h)
//   backpackctl node rotate-key ...            rotate the node's signing key (daemon/ctl_federation.h)
//   backpackctl peers ...                      list, add, approve, block, unblock peers of a running node
//   backpackctl deliver --to EMAIL ...         deliver a badge to an earner's backpack (daemon/ctl_deliver.h)
//   backpackctl version
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/ctl_deliver.h"
#include "daemon/ctl_federation.h"
#include "daemon/ctl_http.h"
#include "daemon/ctl_issue.h"

namespace {

constexpr char kUsage[] =
    "usage: backpackctl check-config --config FILE\n"
    "       backpackctl status [--url URL]      (default http://127.0.0.1:8080)\n"
    "       backpackctl version\n";

void PrintUsage() {
  std::fputs(kUsage, stderr);
  std::fputs(backpack::ctl::kIssueUsage, stderr);
  std::fputs(backpack::ctl::kFederationUsage, stderr);
  std::fputs(backpack::ctl::kDeliverUsage, stderr);
}

// GET url with a 10 s deadline; http and https (certificate verified).
bool Get(const std::string& url, backpack::ctl::HttpResponse* out, std::string* error) {
  backpack::ctl::HttpRequest request;
  request.url = url;
  request.timeout = std::chrono::seconds(10);
  return backpack::ctl::Send(request, out, error);
}

int CheckConfig(const std::vector<std::string>& args) {
  backpack::config::Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) flags.config_file = args[++i];
    else {
      PrintUsage();
      return 2;
    }
  }
  if (flags.config_file.empty()) {
    PrintUsage();
    return 2;
  }
  auto config = backpack::config::LoadConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 1;
  }
  std::printf("%s: valid (listen %s, data_dir %s, mail %s)\n", flags.config_file.c_str(),
              config->server.listen.c_str(), config->storage.data_dir.c_str(),
              config->mail.smtp_host.empty() ? "outbox" : config->mail.smtp_host.c_str());
  return 0;
}

int Status(const std::vector<std::string>& args) {
  std::string url = "http://127.0.0.1:8080";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--url" && i + 1 < args.size()) url = args[++i];
    else {
      PrintUsage();
      return 2;
    }
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  backpack::ctl::HttpResponse health, node;
  std::string error;
  if (!Get(url + "/healthz", &health, &error)) {
    std::fprintf(stderr, "%s: unreachable: %s\n", url.c_str(), error.c_str());
    return 1;
  }
  std::printf("health: %u %s\n", health.status, health.body.c_str());
  if (Get(url + "/.well-known/backpack-node", &node, &error) && node.status == 200) {
    auto doc = nlohmann::json::parse(node.body, nullptr, false);
    if (!doc.is_discarded()) std::printf("%s\n", doc.dump(2).c_str());
  }
  return health.status == 200 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage();
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "check-config") return CheckConfig(args);
  if (command == "status") return Status(args);
  if (command == "issue") return backpack::ctl::Issue(args);
  if (command == "deliver") return backpack::ctl::Deliver(args);
  if (command == "node") return backpack::ctl::NodeCommand(args);
  if (command == "peers") return backpack::ctl::PeersCommand(args);
  if (command == "version") {
    std::printf("backpackctl %s\n", BACKPACK_VERSION);
    return 0;
  }
  PrintUsage();
  return 2;
}
