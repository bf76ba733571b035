// backpackctl issue: an issuer's client of a backpack's Open Badges 3.0 API
// and Badge Connect 2.1 API (docs/api.md, "OB 3.0 API", "The issuer's
// client").
//
//   issue register --node URL --state FILE [--client-name NAME] [--redirect-port PORT] [--scope SCOPES]
//       reads the node's Service Description Document, registers a client
//       (RFC 7591) and writes the client and the endpoints to FILE (0600).
//   issue authorize --state FILE [--port PORT] [--timeout SECONDS]
//       prints the authorization URL for the earner, takes the browser's
//       answer on the loopback redirect URI (PKCE S256, state checked),
//       exchanges the code and keeps the tokens in FILE.
//   issue push --state FILE CREDENTIAL_FILE
//       upserts an OB 3.0 credential (JSON, or a VC-JWT) into the backpack.
//   issue push-assertion --state FILE ASSERTION_FILE
//       pushes an OB 2.0 assertion (JSON, a compact JWS or a hosted URL)
//       through Badge Connect.
//
// The state file holds the client secret and the tokens: it is written
// atomically with mode 0600, and nothing secret is printed.
#pragma once

#include <string>
#include <vector>

namespace backpack::ctl {

// The usage lines of the issue subcommands, for backpackctl's usage text.
extern const char kIssueUsage[];

// Runs `backpackctl issue ARGS...` (args after "issue"); returns the exit
// status: 0 done (a push was stored, replaced or already held), 1 failed or
// refused, 2 usage, 3 not authorized (the token was refused and could not be
// refreshed: run authorize again).
int Issue(const std::vector<std::string>& args);

}  // namespace backpack::ctl
