// backpackctl's federation commands (docs/federation.md, "Peering"; README,
// "Operating").
//
//   node rotate-key --data-dir DIR
//       adds a new node key and retires the current one, offline, in the
//       node's key files (<DIR>/federation/keys/). Safe while the node runs:
//       the node picks the new key up at its next start and signs with the
//       old one until then (peers accept both).
//   peers list    --data-dir DIR [--url URL] [--json]
//   peers add URL --data-dir DIR [--url URL]
//   peers approve|block|unblock NAME --data-dir DIR [--url URL]
//       the running node's /_admin/v1/peers API, at URL (default
//       http://127.0.0.1:8080), with the operator token the node wrote to
//       <DIR>/admin-token at its start.
#pragma once

#include <string>
#include <vector>

namespace backpack::ctl {

extern const char kFederationUsage[];

// `backpackctl node ARGS...` and `backpackctl peers ARGS...` (args after the
// command word); each returns the exit code: 0 done, 1 failed, 2 bad usage.
int NodeCommand(const std::vector<std::string>& args);
int PeersCommand(const std::vector<std::string>& args);

}  // namespace backpack::ctl
