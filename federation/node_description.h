// The public self-description of a node, served at /.well-known/backpack-node.
//
// Peers, issuers and directories read it to learn what a node is and what it
// speaks. Fields are only ever added; a reader ignores what it does not know.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace backpack::federation {

struct NodeDescription {
  std::string name;            // DNS name, or host:port in tests
  std::string public_url;      // base URL, no trailing slash
  std::string software_name = "backpackd";
  std::string software_version;
  // Open Badges specifications the node serves, e.g. "ob-2.0"; empty until
  // badge import is served.
  std::vector<std::string> specs;
  // Named endpoint paths relative to public_url, e.g. {"accounts", "/api/v1/accounts"}.
  std::vector<std::pair<std::string, std::string>> endpoints;
  // What the node speaks to peers, e.g. "peer/1" (federation/peers.h).
  std::vector<std::string> capabilities;

  // The active peers, as peering left them.
  struct Peer {
    std::string name;
    std::string url;  // its base URL
    std::vector<std::string> capabilities;
  };
  std::vector<Peer> peers;
};

// Serialises as JSON with absolute endpoint URLs:
// {"name","url","software":{"name","version"},"specs":[...],"endpoints":{...},
//  "federation":{"capabilities":[...],
//                "peers":[{"name","url","capabilities":[...]}, ...]}}
std::string ToJson(const NodeDescription& node);

}  // namespace backpack::federation
