// backpackctl deliver: the issuer's side of delivery (docs/federation.md,
// "Discovery and delivery").
//
//   deliver --to EMAIL [--via NODE_URL] FILE
//
// 1. Asks NODE_URL (default https://<the address's domain>) for
//    /.well-known/webfinger?resource=mailto:EMAIL.
// 2. Checks the answer whoever gave it: the directory and home records
//    must verify with the account key of the genesis record whose hash is
//    the account id; the directory record must name SHA-256 of EMAIL
//    (lower-cased) and be discoverable; the home record names the home node
//    and its URL, and the answer's inbox link must be that home's inbox.
// 3. POSTs FILE to the home's inbox, following one 307 to another inbox:
//    a baked PNG or SVG as is; JSON as {"assertion": ...} or (an OB 3.0
//    credential) {"credential": ...}; a compact JWS or VC-JWT as {"jws": ...};
//    a line holding an http(s) URL as {"url": ...}.
//
// Exit status: 0 delivered (or already held, or a newer credential replaced
// the one held); 1 failed (unreachable, an answer that does not verify, an
// unexpected answer); 2 usage; 3 no discoverable backpack for EMAIL at that
// node; 4 refused (the badge did not verify, or is not for EMAIL: the
// verification messages are printed); 5 try again later (rate-limited or
// busy: the wait is printed).
#pragma once

#include <string>
#include <vector>

namespace backpack::ctl {

// The usage line of deliver, for backpackctl's usage text.
extern const char kDeliverUsage[];

// Runs `backpackctl deliver ARGS...` (args after "deliver"); returns the exit status above.
int Deliver(const std::vector<std::string>& args);

}  // namespace backpack::ctl
