// The earner's federation choices, discovery and delivery over HTTP
// (docs/api.md, "Federation"; docs/federation.md, "Earner's choices",
// "Discovery and delivery"):
//
//   GET  /api/v1/account/federation           session: the earner's choices
//   PUT  /api/v1/account/federation           session: change them
//   GET  /.well-known/webfinger?resource=...  public, CORS *, rate-limited per client address
//   POST /_federation/v1/inbox/{account}      public (issuers), rate-limited and size-limited
//
// Handlers run on the worker pool.
#pragma once

#include <cstddef>
#include <string>

namespace backpack {
class AccountService;
class BadgeService;
class EarnerFederation;
namespace http {
class Router;
}
namespace mail {
class Mailer;
}

// The largest body the inbox reads (a baked image or an assertion); larger
// is 413 whatever server.max_body_bytes allows.
inline constexpr size_t kMaxInboxBytes = 512 * 1024;
// Deliveries one account takes per hour, and "a badge is waiting" messages
// it is sent per hour (further deliveries are stored without a message).
inline constexpr int kInboxDeliveriesPerAccountHour = 60;
inline constexpr int kInboxMailsPerAccountHour = 5;
// Changes to the choices per account and minute (each may republish records).
inline constexpr int kChoiceChangesPerMinute = 30;

struct DirectoryApiOptions {
  std::string public_url;         // this node, for the earner's message
  int webfinger_per_minute = 60;  // per client address
  int inbox_per_minute = 30;      // per client address
};

void RegisterDirectoryRoutes(http::Router& router, AccountService& accounts, BadgeService& badges,
                             EarnerFederation& earners, mail::Mailer& mailer, const DirectoryApiOptions& options);

}  // namespace backpack
