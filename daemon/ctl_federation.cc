#include "daemon/ctl_federation.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/ctl_http.h"
#include "federation/node_keys.h"

namespace backpack::ctl {

const char kFederationUsage[] =
    "       backpackctl node rotate-key --data-dir DIR\n"
    "       backpackctl peers list --data-dir DIR [--url URL] [--json]\n"
    "       backpackctl peers add PEER_URL --data-dir DIR [--url URL]\n"
    "       backpackctl peers approve|block|unblock NAME --data-dir DIR [--url URL]\n"
    "           (--url: the running node, default http://127.0.0.1:8080)\n";

namespace {

using nlohmann::json;

int Usage() {
  std::fputs("usage:\n", stderr);
  std::fputs(kFederationUsage, stderr);
  return 2;
}

struct Options {
  std::vector<std::string> positional;
  std::string data_dir;
  std::string url = "http://127.0.0.1:8080";
  bool json = false;
};

bool ParseOptions(const std::vector<std::string>& args, Options* out) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) {
      out->data_dir = args[++i];
    } else if (args[i] == "--url" && i + 1 < args.size()) {
      out->url = args[++i];
    } else if (args[i] == "--json") {
      out->json = true;
    } else if (args[i].starts_with("--")) {
      return false;
    } else {
      out->positional.push_back(args[i]);
    }
  }
  while (!out->url.empty() && out->url.back() == '/') out->url.pop_back();
  return !out->data_dir.empty();
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Everything but RFC 3986 unreserved characters, percent-encoded.
std::string EncodeSegment(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool ReadToken(const std::string& data_dir, std::string* token) {
  const std::string path = data_dir + "/admin-token";
  std::ifstream in(path);
  std::getline(in, *token);
  while (!token->empty() && (token->back() == '\r' || token->back() == ' ')) token->pop_back();
  if (!in && token->empty()) {
    std::fprintf(stderr, "cannot read %s: is the node running with --data-dir %s, and may you read it?\n",
                 path.c_str(), data_dir.c_str());
    return false;
  }
  return true;
}

// Sends one admin request; prints the error and returns false unless 2xx.
bool Admin(const Options& options, const std::string& method, const std::string& path, const std::string& body,
           json* answer) {
  std::string token;
  if (!ReadToken(options.data_dir, &token)) return false;
  HttpRequest request;
  request.method = method;
  request.url = options.url + path;
  request.headers.emplace_back("Authorization", "Bearer " + token);
  request.headers.emplace_back("Accept", "application/json");
  if (method == "POST") {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = body.empty() ? "{}" : body;
  }
  // Adding or approving a peer waits for the handshake with it.
  request.timeout = std::chrono::seconds(60);
  HttpResponse response;
  std::string error;
  if (!Send(request, &response, &error)) {
    std::fprintf(stderr, "%s: %s\n", options.url.c_str(), error.c_str());
    return false;
  }
  *answer = json::parse(response.body, nullptr, false);
  if (response.status < 200 || response.status >= 300) {
    std::string message = response.body;
    if (answer->is_object() && answer->contains("error") && (*answer)["error"].is_object()) {
      message = (*answer)["error"].value("code", "") + ": " + (*answer)["error"].value("message", "");
    }
    std::fprintf(stderr, "%s answered %u: %s\n", request.url.c_str(), response.status, message.c_str());
    return false;
  }
  if (answer->is_discarded()) {
    std::fprintf(stderr, "%s answered something that is not JSON\n", request.url.c_str());
    return false;
  }
  return true;
}

std::string Joined(const json& list) {
  std::string out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += ",";
    out += item.get<std::string>();
  }
  return out.empty() ? "-" : out;
}

void PrintPeer(const json& peer) {
  std::printf("%-32s %-10s %-40s %s", peer.value("name", "").c_str(), peer.value("state", "").c_str(),
              peer.value("base_url", "").empty() ? "-" : peer.value("base_url", "").c_str(),
              Joined(peer.value("capabilities", json::array())).c_str());
  const std::string error = peer.value("last_error", "");
  if (!error.empty()) std::printf("  (last error: %s)", error.c_str());
  std::printf("\n");
}

}  // namespace

int NodeCommand(const std::vector<std::string>& args) {
  Options options;
  if (!ParseOptions(args, &options) || options.positional != std::vector<std::string>{"rotate-key"}) return Usage();
  std::error_code ec;
  if (!std::filesystem::is_directory(options.data_dir, ec)) {
    std::fprintf(stderr, "%s is not a directory\n", options.data_dir.c_str());
    return 1;
  }
  const int64_t now = UnixNow();
  auto keys = federation::NodeKeys::LoadOrCreate(federation::KeysDirectory(options.data_dir), now);
  if (!keys.ok()) {
    std::fprintf(stderr, "%s\n", keys.status().ToString().c_str());
    return 1;
  }
  const std::string old_id = keys->current().id;
  auto rotated = keys->Rotate(now);
  if (!rotated.ok()) {
    std::fprintf(stderr, "%s\n", rotated.status().ToString().c_str());
    return 1;
  }
  std::printf("new key %s; %s retired at %lld\n", rotated->c_str(), old_id.c_str(), static_cast<long long>(now));
  std::printf("the running node keeps signing with %s until it is restarted\n", old_id.c_str());
  return 0;
}

int PeersCommand(const std::vector<std::string>& args) {
  Options options;
  if (!ParseOptions(args, &options) || options.positional.empty()) return Usage();
  const std::string& verb = options.positional[0];
  json answer;
  if (verb == "list" && options.positional.size() == 1) {
    if (!Admin(options, "GET", "/_admin/v1/peers", "", &answer)) return 1;
    if (options.json) {
      std::printf("%s\n", answer.dump(2).c_str());
      return 0;
    }
    std::printf("node %s, mode %s\n", answer.value("node", "").c_str(), answer.value("mode", "").c_str());
    for (const json& peer : answer.value("peers", json::array())) PrintPeer(peer);
    return 0;
  }
  if (options.positional.size() != 2) return Usage();
  const std::string& operand = options.positional[1];
  if (verb == "add") {
    if (!Admin(options, "POST", "/_admin/v1/peers", json{{"url", operand}}.dump(), &answer)) return 1;
  } else if (verb == "approve" || verb == "block" || verb == "unblock") {
    if (!Admin(options, "POST", "/_admin/v1/peers/" + EncodeSegment(operand) + "/" + verb, "", &answer)) return 1;
  } else {
    return Usage();
  }
  if (options.json) {
    std::printf("%s\n", answer.dump(2).c_str());
  } else {
    PrintPeer(answer);
  }
  return 0;
}

}  // namespace backpack::ctl
