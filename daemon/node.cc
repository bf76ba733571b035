#include "daemon/node.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "daemon/account_api.h"
#include "daemon/accounts.h"
#include "daemon/badge_api.h"
#include "daemon/badge_connect.h"
#include "daemon/badge_verifier.h"
#include "daemon/badges.h"
#include "daemon/collection_api.h"
#include "daemon/collections.h"
#include "daemon/directory_api.h"
#include "daemon/earner_federation.h"
#include "daemon/federation_api.h"
#include "federation/records.h"
#include "daemon/fetcher.h"
#include "daemon/http.h"
#include "daemon/http_server.h"
#include "daemon/log.h"
#include "daemon/mail.h"
#include "daemon/metrics.h"
#include "daemon/oauth.h"
#include "daemon/oauth_api.h"
#include "daemon/ob3_api.h"
#include "daemon/replication_api.h"
#include "federation/node_description.h"
#include "storage/store.h"

namespace backpack {

namespace net = boost::asio;
namespace bhttp = http::bhttp;

namespace {

constexpr uint32_t kSchemaVersion = 1;

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    log::Error("node", "the system random generator failed");
    std::abort();
  }
  return out;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return Unavailable(fmt::format("cannot write {}", tmp));
  const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Unavailable(fmt::format("cannot write {}", path));
  }
  return Status::Ok();
}

std::string HostPortOf(std::string_view url) {
  const size_t scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

struct Node::Impl {
  explicit Impl(config::Config c)
      : config(std::move(c)), contexts(MakeContexts(config.server.io_threads)), ioc(*contexts.front()),
        workers(static_cast<size_t>(config.server.worker_threads)), signals(ioc, SIGINT, SIGTERM),
        grace_timer(ioc) {
    for (auto& context : contexts) keep_running.emplace_back(net::make_work_guard(*context));
  }

  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

  config::Config config;
  std::vector<std::unique_ptr<net::io_context>> contexts;  // one per I/O thread
  net::io_context& ioc;  // contexts[0]: acceptor, signals, shutdown timer
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  net::thread_pool workers;
  net::signal_set signals;
  net::steady_timer grace_timer;
  net::steady_timer purge_timer{ioc};
  std::unique_ptr<storage::Store> store;
  storage::KeyLocks locks;
  std::unique_ptr<mail::Mailer> mailer;
  Metrics metrics;
  http::Router router;
  std::unique_ptr<AccountService> accounts;
  std::unique_ptr<Fetcher> fetcher;
  std::unique_ptr<BadgeVerifier> verifier;
  std::unique_ptr<BadgeService> badges;
  std::unique_ptr<CollectionService> collections;
  std::unique_ptr<OAuthService> oauth;
  std::unique_ptr<FederationService> federation;
  std::unique_ptr<federation::RecordStore> records;  // replicated records (docs/federation.md)
  std::unique_ptr<EarnerFederation> earners;          // the earners' choices and their records
  std::unique_ptr<ReplicationService> replication;    // pulls the peers' change logs, serves ours
  net::steady_timer reconcile_timer{ioc};
  net::steady_timer recheck_timer{ioc};
  net::steady_timer handshake_timer{ioc};
  std::unique_ptr<HttpServer> server;
  std::string public_url;
  std::vector<std::thread> io_threads;
  std::chrono::steady_clock::time_point shutdown_deadline;
  std::atomic<bool> stopping{false};

  federation::NodeDescription Describe() const;
  void RegisterNodeRoutes();
  void SchedulePurge(std::chrono::seconds after);
  void ScheduleRecheck(std::chrono::seconds after);
  void ScheduleHandshakes(std::chrono::seconds after);
  void ScheduleReconcile(std::chrono::seconds after);
  void BeginShutdown();
  void PollShutdown();
};

Node::Node(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() {
  if (!impl_->io_threads.empty()) {
    Stop();
    Run();
  }
}

Status Node::Start() {
  Impl& d = *impl_;
  const auto& cfg = d.config;
  std::error_code ec;
  std::filesystem::create_directories(cfg.storage.data_dir, ec);
  if (ec) return Unavailable(fmt::format("cannot create data directory '{}': {}", cfg.storage.data_dir, ec.message()));
  ::chmod(cfg.storage.data_dir.c_str(), 0700);

  storage::StoreOptions options;
  options.path = (std::filesystem::path(cfg.storage.data_dir) / "db").string();
  options.block_cache_bytes = uint64_t(cfg.storage.block_cache_mb) << 20;
  options.schema_version = kSchemaVersion;
  auto store = storage::OpenRocksStore(options);
  if (!store.ok()) return store.status();
  d.store = std::move(*store);

  auto mailer = mail::MakeMailer(cfg.mail, cfg.storage.data_dir);
  if (!mailer.ok()) return mailer.status();
  d.mailer = std::move(*mailer);

  std::vector<net::io_context*> contexts;
  for (auto& c : d.contexts) contexts.push_back(c.get());
  d.server = std::make_unique<HttpServer>(contexts, cfg.server, d.router, d.metrics, d.workers);
  BP_RETURN_IF_ERROR(d.server->Listen());
  const std::string bound = d.server->LocalAddress();
  d.public_url = cfg.server.public_url.empty()
                     ? fmt::format("{}://{}", d.server->tls() ? "https" : "http", bound)
                     : cfg.server.public_url;
  while (!d.public_url.empty() && d.public_url.back() == '/') d.public_url.pop_back();

  d.accounts = std::make_unique<AccountService>(*d.store, d.locks, *d.mailer, cfg.accounts, d.public_url,
                                                UnixNow, RandomBytes);
  d.fetcher = std::make_unique<Fetcher>(cfg.fetch);
  BP_RETURN_IF_ERROR(d.fetcher->init_status());
  if (cfg.fetch.allow_private) {
    log::Warn("node", "fetch.allow_private is on: badge verification may reach private and loopback addresses");
  }
  d.verifier = std::make_unique<BadgeVerifier>(
      [fetcher = d.fetcher.get()](const std::string& url, FetchFreshness freshness) {
        FetchRequest request;
        request.url = url;
        request.reuse_fresh = freshness == FetchFreshness::kReuseFresh;
        return fetcher->Fetch(request);
      });
  d.badges = std::make_unique<BadgeService>(*d.store, d.locks, *d.accounts, *d.verifier, cfg.badges, UnixNow,
                                            RandomBytes);
  d.collections = std::make_unique<CollectionService>(*d.store, d.locks, *d.accounts, *d.badges, cfg.badges,
                                                      UnixNow, RandomBytes);
  d.oauth = std::make_unique<OAuthService>(*d.store, d.locks, cfg.oauth, UnixNow, RandomBytes);
  d.federation = std::make_unique<FederationService>(
      cfg, d.public_url, d.Describe(), *d.store, *d.fetcher, UnixNow, RandomBytes,
      [&d](std::function<void()> task) {
        net::post(d.workers, [&d, task = std::move(task)] {
          if (!d.stopping) task();
        });
      });
  BP_RETURN_IF_ERROR(d.federation->Start());
  {
    const std::string& name = d.federation->node_name();
    federation::RecordStoreOptions options;
    options.node_name = name;
    options.node_url = (d.public_url.starts_with("https://") ? "https://" : "http://") + name;
    options.max_future_ms = int64_t{cfg.federation.max_future_version_seconds} * 1000;
    auto records = federation::RecordStore::Open(
        *d.store, d.locks, std::move(options),
        [] {
          return std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
              .count();
        },
        RandomBytes);
    if (!records.ok()) return records.status();
    d.records = std::move(*records);
  }
  d.earners = std::make_unique<EarnerFederation>(
      *d.records, *d.accounts, *d.badges, *d.collections,
      EarnerFederationOptions{d.federation->node_name(), [&d](std::string_view node) {
                                auto peer = d.federation->peers().Get(node);
                                return peer.ok() && peer->has_value() &&
                                       (*peer)->state == federation::PeerState::kActive;
                              }});
  d.earners->Listen();
  d.replication = std::make_unique<ReplicationService>(cfg, *d.federation, *d.records, d.ioc, d.workers);
  d.RegisterNodeRoutes();
  d.federation->RegisterRoutes(d.router);
  d.replication->RegisterRoutes(d.router);
  RegisterAccountRoutes(d.router, *d.accounts, cfg.accounts, [&d](const std::string& account) {
    BP_RETURN_IF_ERROR(d.collections->DeleteAll(account));
    BP_RETURN_IF_ERROR(d.oauth->DeleteAll(account));
    return d.badges->DeleteAll(account);
  });
  RegisterBadgeRoutes(d.router, *d.accounts, *d.badges, *d.collections, cfg.badges);
  RegisterCollectionRoutes(d.router, *d.accounts, *d.badges, *d.collections, cfg.badges, d.public_url);
  RegisterOAuthRoutes(d.router, *d.oauth, *d.accounts, cfg.accounts, d.public_url);
  RegisterBadgeConnectRoutes(d.router, *d.oauth, *d.accounts, *d.badges, cfg.badges, d.public_url, cfg.server);
  RegisterOb3Routes(d.router, *d.oauth, *d.accounts, *d.badges, cfg.badges, d.public_url, cfg.server);
  RegisterDirectoryRoutes(d.router, *d.accounts, *d.badges, *d.earners, *d.mailer,
                          {d.public_url, cfg.federation.webfinger_per_minute, cfg.federation.inbox_per_minute});

  if (!cfg.server.port_file.empty()) BP_RETURN_IF_ERROR(WriteFileAtomically(cfg.server.port_file, bound + "\n"));

  d.signals.async_wait([&d](const boost::system::error_code& e, int signal) {
    if (e) return;
    log::Info("node", "signal received; shutting down", {{"signal", signal}});
    d.BeginShutdown();
  });
  d.server->Start();
  d.replication->Start();
  d.SchedulePurge(std::chrono::minutes(1));
  d.ScheduleRecheck(std::chrono::seconds(5));
  d.ScheduleHandshakes(std::chrono::seconds(0));
  d.ScheduleReconcile(std::chrono::seconds(5));
  for (auto& c : d.contexts) d.io_threads.emplace_back([context = c.get()] { context->run(); });
  log::Info("node", "listening",
            {{"address", bound}, {"url", d.public_url}, {"tls", d.server->tls()},
             {"data_dir", cfg.storage.data_dir}, {"version", BACKPACK_VERSION}});
  return Status::Ok();
}

federation::NodeDescription Node::Impl::Describe() const {
  federation::NodeDescription node;
  node.public_url = public_url;
  // The federation name (the authority of the public URL unless set).
  auto name = config::FederationNodeName(config.federation, public_url);
  node.name = name.ok() ? *name : HostPortOf(public_url);
  node.software_version = BACKPACK_VERSION;
  node.endpoints = {{"health", "/healthz"},
                    {"metrics", "/metrics"},
                    {"accounts", "/api/v1/accounts"},
                    {"sessions", "/api/v1/sessions"},
                    {"account", "/api/v1/account"},
                    {"password_reset", "/api/v1/password-reset"},
                    {"badges", "/api/v1/badges"},
                    {"collections", "/api/v1/collections"},
                    {"export", "/api/v1/account/export"},
                    {"import", "/api/v1/account/import"},
                    {"share", "/share/{slug}"},
                    {"displayer", "/displayer"},
                    {"oauth_metadata", "/.well-known/oauth-authorization-server"},
                    {"authorized_apps", "/api/v1/account/apps"},
                    {"badgeconnect", "/.well-known/badgeconnect.json"},
                    {"ob_v3p0_discovery", "/ims/ob/v3p0/discovery"},
                    {"federation_keys", "/_federation/v1/keys"},
                    {"federation_peer", "/_federation/v1/peer"},
                    {"federation_changes", "/_federation/v1/changes"},
                    {"federation_poke", "/_federation/v1/poke"},
                    {"webfinger", "/.well-known/webfinger"},
                    {"account_federation", "/api/v1/account/federation"}};
  return node;
}

void Node::Impl::RegisterNodeRoutes() {
  router.Add(bhttp::verb::get, "/healthz", http::Exec::kInline, [](http::Context&) {
    return http::JsonResponse(bhttp::status::ok, R"({"status":"ok"})");
  });
  router.Add(bhttp::verb::get, "/.well-known/backpack-node", http::Exec::kInline, [this](http::Context&) {
    http::Response res = http::JsonResponse(bhttp::status::ok, federation->NodeDocument());
    res.set(bhttp::field::access_control_allow_origin, "*");
    res.set(bhttp::field::cache_control, "public, max-age=60");
    return res;
  });
  // Storage figures read RocksDB properties: a worker route.
  router.Add(bhttp::verb::get, "/metrics", http::Exec::kWorker, [this](http::Context&) {
    http::Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics.Render(store->Stats(), server->WorkerQueueDepth()) + replication->RenderMetrics();
    return res;
  });
}

// Expired sessions and tokens are refused as soon as they expire; this
// hourly sweep on a worker reclaims their storage.
void Node::Impl::SchedulePurge(std::chrono::seconds after) {
  purge_timer.expires_after(after);
  purge_timer.async_wait([this](const boost::system::error_code& e) {
    if (e || stopping) return;
    net::post(workers, [this] {
      auto purged = accounts->PurgeExpired(10000);
      if (!purged.ok()) {
        log::Warn("accounts", "purge of expired secrets failed", {{"error", purged.status().ToString()}});
      } else if (*purged > 0) {
        log::Info("accounts", "purged expired secrets", {{"count", *purged}});
      }
      auto oauth_purged = oauth->PurgeExpired(10000);
      if (!oauth_purged.ok()) {
        log::Warn("oauth", "purge of expired codes and tokens failed", {{"error", oauth_purged.status().ToString()}});
      } else if (*oauth_purged > 0) {
        log::Info("oauth", "purged expired codes and tokens", {{"count", *oauth_purged}});
      }
      // A full batch means more may be waiting.
      const bool full = (purged.ok() && *purged == 10000) || (oauth_purged.ok() && *oauth_purged == 10000);
      net::post(ioc, [this, full] {
        if (!stopping) SchedulePurge(full ? std::chrono::seconds(1) : std::chrono::hours(1));
      });
    });
  });
}

// Re-verification: wakes when the earliest re-check is due (at most a
// minute apart, so badges imported meanwhile are seen), re-checks a batch on
// a worker, and comes back at once while batches are full.
void Node::Impl::ScheduleRecheck(std::chrono::seconds after) {
  recheck_timer.expires_after(after);
  recheck_timer.async_wait([this](const boost::system::error_code& e) {
    if (e || stopping) return;
    net::post(workers, [this] {
      const size_t batch = static_cast<size_t>(config.badges.reverify_batch);
      auto done = badges->RecheckDue(batch);
      if (!done.ok()) {
        log::Warn("badges", "re-verification pass failed", {{"error", done.status().ToString()}});
      } else if (*done > 0) {
        log::Info("badges", "re-verified badges", {{"count", *done}});
      }
      std::chrono::seconds next = std::chrono::minutes(1);
      if (done.ok() && *done == batch) {
        next = std::chrono::seconds(0);
      } else if (auto due = badges->NextDue(); due.ok() && due->has_value()) {
        next = std::chrono::seconds(std::clamp<int64_t>(**due - UnixNow(), 1, 60));
      }
      net::post(ioc, [this, next] {
        if (!stopping) ScheduleRecheck(next);
      });
    });
  });
}

// Handshakes with peers: wakes when the next one is due (at most a minute
// apart, so approvals and additions are seen) and starts the due ones on
// the worker pool; a failure is retried with backoff, never fatal.
void Node::Impl::ScheduleHandshakes(std::chrono::seconds after) {
  handshake_timer.expires_after(after);
  handshake_timer.async_wait([this](const boost::system::error_code& e) {
    if (e || stopping) return;
    net::post(workers, [this] {
      const std::chrono::seconds next = federation->RunDueHandshakes();
      net::post(ioc, [this, next] {
        if (!stopping) ScheduleHandshakes(next);
      });
    });
  });
}

// Reconciliation of the earners' records with their data: retries what a
// change listener could not publish, and sweeps every federated account in
// bounded steps (earner_federation.h).
void Node::Impl::ScheduleReconcile(std::chrono::seconds after) {
  reconcile_timer.expires_after(after);
  reconcile_timer.async_wait([this](const boost::system::error_code& e) {
    if (e || stopping) return;
    net::post(workers, [this] {
      const std::chrono::seconds next = earners->ReconcileStep(50);
      net::post(ioc, [this, next] {
        if (!stopping) ScheduleReconcile(next);
      });
    });
  });
}

void Node::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  purge_timer.cancel();
  recheck_timer.cancel();
  handshake_timer.cancel();
  reconcile_timer.cancel();
  shutdown_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.server.shutdown_grace_ms);
  boost::system::error_code ignored;
  signals.cancel(ignored);
  if (replication) replication->Stop();  // answers the long polls waiting on us
  server->BeginShutdown();
  PollShutdown();
}

void Node::Impl::PollShutdown() {
  const bool drained = server->InFlight() == 0 && server->WorkerQueueDepth() == 0;
  const bool late = std::chrono::steady_clock::now() >= shutdown_deadline;
  if (drained || late) {
    if (!drained) {
      log::Warn("node", "grace period over; abandoning requests in flight",
                {{"in_flight", server->InFlight()}});
    }
    for (auto& c : contexts) c->stop();
    return;
  }
  grace_timer.expires_after(std::chrono::milliseconds(20));
  grace_timer.async_wait([this](const boost::system::error_code& e) {
    if (!e) PollShutdown();
  });
}

void Node::Stop() {
  net::post(impl_->ioc, [d = impl_.get()] { d->BeginShutdown(); });
}

int Node::Run() {
  Impl& d = *impl_;
  for (auto& t : d.io_threads) t.join();
  d.io_threads.clear();
  if (d.replication) d.replication->Join();  // our long polls to peers come back
  d.workers.join();  // queued storage work completes: acknowledged writes stay written
  if (d.mailer) d.mailer->Stop();
  int code = 0;
  if (d.store) {
    Status s = d.store->Flush();
    if (!s.ok()) {
      log::Error("node", "storage flush failed", {{"error", s.ToString()}});
      code = 1;
    }
  }
  log::Info("node", "stopped");
  return code;
}

std::string Node::address() const { return impl_->server ? impl_->server->LocalAddress() : std::string(); }
std::string Node::public_url() const { return impl_->public_url; }

}  // namespace backpack
