#include "federation/node_description.h"

#include <nlohmann/json.hpp>

namespace backpack::federation {

std::string ToJson(const NodeDescription& node) {
  nlohmann::json endpoints = nlohmann::json::object();
  for (const auto& [name, path] : node.endpoints) endpoints[name] = node.public_url + path;
  nlohmann::json doc = {
      {"name", node.name},
      {"url", node.public_url},
      {"software", {{"name", node.software_name}, {"version", node.software_version}}},
      {"specs", node.specs},
      {"endpoints", std::move(endpoints)},
  };
  nlohmann::json peers = nlohmann::json::array();
  for (const NodeDescription::Peer& peer : node.peers) {
    peers.push_back({{"name", peer.name}, {"url", peer.url}, {"capabilities", peer.capabilities}});
  }
  doc["federation"] = {{"capabilities", node.capabilities}, {"peers", std::move(peers)}};
  return doc.dump();
}

}  // namespace backpack::federation
