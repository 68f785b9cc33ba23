// shadan-controller: flags (controller_cli.h) -> config -> wire objects -> run. Everything else
// is in the library.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/audit_export.h"
#include "common/audit_log.h"
#include "common/audit_ship.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "common/observed_audit_sink.h"
#include "common/policy.h"
#include "common/sd_notify.h"
#include "common/tls.h"
#include "common/trust.h"
#include "common/watchdog.h"
#include "controller/agent_audit_sessions.h"
#include "controller/agent_hub.h"
#include "controller/alert_responder.h"
#include "controller/api_router.h"
#include "controller/api_server.h"
#include "controller/audit_mirror.h"
#include "controller/config.h"
#include "controller/config_check.h"
#include "controller/controller_cli.h"
#include "controller/controller_metrics.h"
#include "controller/etcd_store.h"
#include "controller/leadership.h"
#include "controller/openapi.h"
#include "controller/orders_context.h"
#include "controller/orders_service.h"
#include "controller/store.h"

namespace shadan::controller {
namespace {

namespace asio = boost::asio;

constexpr auto kSweepInterval = std::chrono::seconds(5);
// On etcd: how often a controller looks for dispatches another controller created for the
// agents connected here (one keys-only range of pending/ since the last look); after a failed
// look, less often: an etcd out of reach can hold each look for the store's timeout, and the
// core thread has the API and the agents to serve meanwhile.
constexpr auto kFollowInterval = std::chrono::milliseconds(200);
constexpr auto kFollowRetryInterval = std::chrono::seconds(5);

// Every address of this host's interfaces (getifaddrs): an alert naming one of them must not
// make the controller cut itself off.
std::vector<IpPrefix> hostAddresses() {
  std::vector<IpPrefix> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    const int family = entry->ifa_addr->sa_family;
    const void* bytes = nullptr;
    if (family == AF_INET) bytes = &reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr;
    if (family == AF_INET6) bytes = &reinterpret_cast<sockaddr_in6*>(entry->ifa_addr)->sin6_addr;
    if (bytes == nullptr || inet_ntop(family, bytes, text, sizeof(text)) == nullptr) continue;
    if (auto address = IpPrefix::parse(text); address.ok()) out.push_back(*address);
  }
  freeifaddrs(list);
  return out;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "shadan-controller: %s\n", message.c_str());
  return 1;
}

// Everything `run` holds, in construction order (destroyed in reverse).
struct Controller {
  ControllerConfig config;
  std::string config_path;
  Policy policy;
  Trust trust;
  std::unique_ptr<Ed25519Signer> signer;
  ControllerStorePtr store;
  SystemClock clock;
  PosixLogFileSystem fs;
  std::unique_ptr<AuditLog> audit;
  // What every component records through: the log, or the log plus a journald/syslog copy.
  std::unique_ptr<ExportingAuditSink> exporting;
  // Every recorded entry rings the doorbell of the console's event stream (GET /v1/events).
  std::unique_ptr<ObservedAuditSink> observed;
  AuditSink* sink = nullptr;
  std::unique_ptr<AuditMirror> mirror;
  asio::io_context io{1};
  std::unique_ptr<WebSocketAgentHub> hub;
  std::unique_ptr<AgentAuditSessions> audit_sessions;
  std::unique_ptr<OrdersService> orders;
  std::unique_ptr<AlertResponder> responder;
  std::vector<IpPrefix> own_addresses;  // this host's, never cut automatically
  std::unique_ptr<TokenTable> tokens;
  // Read by GET /metrics and the metrics listener, on this io thread, while the above live.
  MetricsRegistry metrics;
  // After io: its thread rings the doorbell (posts to io) when a verdict is reached.
  std::unique_ptr<AuditVerifier> audit_verifier;
  std::unique_ptr<AuditReader> audit_reader;
  std::unique_ptr<ApiRouter> router;
  std::unique_ptr<ApiServer> api;
  std::unique_ptr<MetricsServer> metrics_server;
  // On etcd: whether this controller leads the fleet-wide duties (the sweep). After io, which
  // its on_change posts to: its thread is stopped before io goes. Null on SQLite (one
  // controller, always leading).
  std::unique_ptr<Leadership> leadership;
  std::atomic<bool> bell_rung{false};

  bool follow_failing = false;  // the last deliverCreatedElsewhere failed (said once)

  bool leads() const { return !leadership || leadership->leading(); }

  // Tells the event streams that something changed: once per turn of the io loop, however
  // many entries and hellos that turn brought.
  void ring() {
    if (bell_rung.exchange(true)) return;
    asio::post(io, [this] {
      bell_rung = false;
      if (api) api->publish("event: changed\ndata: {}\n\n");
    });
  }
};

Status wire(Controller& c) {
  SHADAN_ASSIGN_OR_RETURN(ConfiguredFiles files,
                          loadConfiguredFiles(c.config, c.config_path, c.clock));
  c.policy = std::move(files.policy);
  c.trust = std::move(files.trust);
  c.signer = std::move(files.signer);
  SHADAN_ASSIGN_OR_RETURN(auto store, openConfiguredStore(c.config.store, c.config.state_dir));
  c.store = std::move(store);
  if (c.config.store.kind == StoreConfig::Kind::kEtcd) {
    auto leadership = startConfiguredLeadership(c.config.store, [&c](bool leading) {
      asio::post(c.io, [&c, leading] {
        (void)c.sink->append(AuditEventBuilder("leadership")
                                 .outcome(leading ? "acquired" : "lost")
                                 .requestedBy("controller")
                                 .build());
      });
    });
    if (!leadership.ok()) return leadership.error().withContext("leader election");
    c.leadership = std::move(*leadership);
  }
  AuditLogOptions audit_options;
  audit_options.path = (c.config.state_dir / "audit.log").string();
  audit_options.log_id = "controller";
  auto audit = AuditLog::open(std::move(audit_options), c.fs, c.clock, c.signer.get());
  if (!audit.ok()) return audit.error().withContext("audit log");
  c.audit = std::move(*audit);
  c.sink = c.audit.get();
  AuditExportOptions export_options;
  export_options.identifier = "shadan-controller";
  export_options.log_id = "controller";
  auto exporter = makeAuditExporter(c.config.audit_export, export_options);
  if (!exporter.ok()) return exporter.error().withContext("audit_export");
  if (*exporter) {
    c.exporting = std::make_unique<ExportingAuditSink>(*c.audit, std::move(*exporter));
    c.sink = c.exporting.get();
  }
  c.observed = std::make_unique<ObservedAuditSink>(*c.sink, [&c] { c.ring(); });
  c.sink = c.observed.get();
  c.mirror = std::make_unique<AuditMirror>(c.config.state_dir.string(), c.fs, c.clock, c.sink);
  c.mirror->loadExisting();

  TlsContextPtr api_tls = std::move(files.api_tls);
  // API callers authenticate with bearer tokens; a client certificate is optional there (and
  // still checked against the CA when one is presented).
  api_tls->set_verify_mode(asio::ssl::verify_peer);

  AgentHubOptions hub_options;
  hub_options.bind_address = c.config.hub_listen.host;
  hub_options.port = c.config.hub_listen.port;
  hub_options.ca_file = c.config.tls_ca.string();
  hub_options.cert_file = c.config.tls_cert.string();
  hub_options.key_file = c.config.tls_key.string();
  hub_options.crl_file = c.config.tls_crl.string();
  hub_options.heartbeat_interval = std::chrono::seconds(c.config.heartbeat_s);
  hub_options.hello_timeout = c.config.hub_limits.hello_timeout;
  hub_options.max_handshakes = c.config.hub_limits.max_handshakes;
  hub_options.max_handshakes_per_peer = c.config.hub_limits.max_handshakes_per_peer;
  hub_options.max_queued_bytes = c.config.hub_limits.max_queued_bytes;
  hub_options.peer_failures_burst = c.config.hub_limits.peer_failures_burst;
  hub_options.peer_failures_per_min = c.config.hub_limits.peer_failures_per_min;
  AgentHubCallbacks callbacks;
  // The callbacks run on the io thread after wiring is complete, so `c.orders` is set.
  callbacks.on_hello = [&c](uint64_t, const std::string& agent_id, const HelloMessage& hello) {
    AgentHello converted;
    converted.agent_id = agent_id;
    converted.agent_key = hello.agent_key;
    converted.last_seq = static_cast<int64_t>(hello.last_seq);
    converted.version = hello.version;
    converted.public_key = hello.public_key;
    c.orders->onHello(converted);
    c.audit_sessions->onHello(agent_id);
    c.ring();
    return true;  // unapproved agents stay connected and receive nothing
  };
  callbacks.on_ack = [&c](const std::string& agent_id, const nlohmann::json& envelope,
                          const std::optional<Ed25519PublicKey>& verified_with) {
    // Refusals are logged and audited there.
    (void)c.orders->onAck(agent_id, envelope, verified_with);
  };
  callbacks.on_disconnect = [&c](const std::string& agent_id) {
    c.audit_sessions->onDisconnect(agent_id);
    c.orders->onDisconnect(agent_id);
    c.ring();
  };
  callbacks.on_audit = [&c](const std::string& agent_id, const nlohmann::json& message) {
    c.audit_sessions->onMessage(agent_id, message);
  };
  auto hub = WebSocketAgentHub::create(c.io, std::move(hub_options), std::move(callbacks));
  if (!hub.ok()) return hub.error().withContext("agent hub");
  c.hub = std::move(*hub);
  // Acks, hellos and shipped audit entries that arrive together are stored and audited together
  // (one transaction, one sync): at a fan-out to thousands of gateways, per-message syncs would
  // be seconds.
  auto defer = [&c](std::function<void()> work) { asio::post(c.io, std::move(work)); };
  c.audit_sessions = std::make_unique<AgentAuditSessions>(*c.store, *c.mirror, *c.hub, defer);

  OrdersServiceOptions options;
  options.timings = c.config.orders;
  options.defer = defer;
  c.orders = std::make_unique<OrdersService>(c.policy, c.trust, *c.signer, *c.store, *c.hub,
                                             *c.sink, c.clock, std::move(options));
  if (c.leadership) {
    // Where following the store starts: before io runs, so no hello comes before it.
    if (auto started = c.orders->deliverCreatedElsewhere(); !started.ok()) {
      return started.error().withContext("store");
    }
  }
  c.responder = std::make_unique<AlertResponder>(c.config.response, c.config.tokens, c.policy,
                                                 *c.orders, *c.store, *c.sink, c.clock);
  SHADAN_RETURN_IF_ERROR(c.responder->load());
  c.own_addresses = hostAddresses();
  c.responder->setProtectedAddresses([&c] {
    std::vector<IpPrefix> out = c.own_addresses;
    for (const std::string& text : c.hub->agentAddresses()) {
      if (auto address = IpPrefix::parse(text); address.ok()) out.push_back(*address);
    }
    return out;
  });
  c.tokens = std::make_unique<TokenTable>(c.config.tokens);
  c.router = std::make_unique<ApiRouter>(*c.tokens, *c.orders);
  c.router->setAlertResponder(c.responder.get());
  c.router->setAlarmSource([&c] {
    nlohmann::json alarms = nlohmann::json::array();
    for (const AuditAlarm& alarm : c.mirror->alarms()) alarms.push_back(alarm.toJson());
    return alarms;
  });
  c.router->setRepairSource([&c](const std::string& agent_id) -> nlohmann::json {
    const auto repair = c.mirror->lastRepair(agent_id);
    return repair ? repair->toJson() : nlohmann::json(nullptr);
  });
  registerControllerMetrics(
      c.metrics,
      ControllerMetricSources{.store = *c.store,
                              .orders = *c.orders,
                              .audit = *c.audit,
                              .clock = c.clock,
                              .connected_agents = [&c] { return c.hub->connectedCount(); },
                              .audit_alarms = [&c] { return c.mirror->alarms().size(); },
                              .responder = c.responder.get()});
  if (c.leadership) {
    c.router->setClusterSource([&c] {
      const std::string leader = c.leadership->leader();
      return nlohmann::json{
          {"controller", c.leadership->name()},
          {"leading", c.leadership->leading()},
          {"leader", leader.empty() ? nlohmann::json(nullptr) : nlohmann::json(leader)}};
    });
    c.metrics.gauge("shadan_controller_leading",
                    "1 while this controller leads the controllers on its etcd, else 0.",
                    [&c] { return c.leadership->leading() ? 1.0 : 0.0; });
  }
  c.router->setMetricsSource([&c] { return c.metrics.render(); });
  c.router->setOpenApiDocument(std::string(openApiJson()));
  c.router->serveConsole(true);
  AuditSources audit_sources;
  audit_sources.controller_log = (c.config.state_dir / "audit.log").string();
  for (const TrustKey& key : c.trust.keys) {
    if (key.hasRole(TrustRole::kController)) {
      audit_sources.controller_keys.push_back(PublicKeyInfo{key.keyid, key.public_key, {}});
    }
  }
  audit_sources.agent_ids = [&c] { return c.mirror->agentIds(); };
  audit_sources.agent_log = [&c](const std::string& id) { return c.mirror->logPath(id); };
  audit_sources.agent_key = [&c](const std::string& id) -> std::optional<Ed25519PublicKey> {
    auto agent = c.store->getAgent(id);
    if (!agent.ok() || !*agent) return std::nullopt;
    return (*agent)->public_key;
  };
  c.audit_verifier = std::make_unique<AuditVerifier>(c.fs, c.clock, [&c] { c.ring(); });
  c.audit_reader = std::make_unique<AuditReader>(c.fs, *c.audit_verifier, std::move(audit_sources));
  c.router->setAuditReader(c.audit_reader.get());
  SHADAN_ASSIGN_OR_RETURN(auto api, ApiServer::create(c.io, api_tls, c.config.api_listen, *c.router,
                                                      c.config.api_limits));
  c.api = std::move(api);
  if (c.config.metrics_listen) {
    SHADAN_ASSIGN_OR_RETURN(
        auto metrics_server,
        MetricsServer::start(c.io, *c.config.metrics_listen, [&c] { return c.metrics.render(); }));
    c.metrics_server = std::move(metrics_server);
  }
  return okStatus();
}

void scheduleSweep(Controller& c, asio::steady_timer& timer) {
  timer.expires_after(kSweepInterval);
  timer.async_wait([&c, &timer](const boost::system::error_code& ec) {
    if (ec) return;
    // Expiries happen once for the fleet: on the leader (several controllers on etcd).
    if (c.leads()) {
      if (auto status = c.orders->sweep(); !status.ok()) {
        logger("controller")->error("sweep failed: {}", status.error().message);
      }
      if (auto status = c.responder->sweep(); !status.ok()) {
        logger("controller")->error("automatic actions sweep failed: {}", status.error().message);
      }
    }
    // Agents approved while connected start shipping here.
    c.audit_sessions->startApproved();
    if (auto status = c.audit->maybeCheckpoint(); !status.ok()) {
      logger("controller")->error("audit checkpoint failed: {}", status.error().message);
    }
    scheduleSweep(c, timer);
  });
}

void scheduleFollow(Controller& c, asio::steady_timer& timer) {
  timer.expires_after(c.follow_failing ? kFollowRetryInterval : kFollowInterval);
  timer.async_wait([&c, &timer](const boost::system::error_code& ec) {
    if (ec) return;
    const Status status = c.orders->deliverCreatedElsewhere();
    if (!status.ok() && !c.follow_failing) {
      logger("controller")->error("event=follow_failed error=\"{}\"", status.error().message);
    }
    c.follow_failing = !status.ok();
    scheduleFollow(c, timer);
  });
}

int run(const std::string& config_path) {
  auto controller = std::make_unique<Controller>();
  Controller& c = *controller;
  auto config = loadControllerConfig(config_path);
  if (!config.ok()) return fail(config.error().message);
  c.config = std::move(*config);
  c.config_path = config_path;
  setLogLevel(c.config.log_level);
  if (auto status = wire(c); !status.ok()) return fail(status.error().message);

  c.api->start();
  asio::steady_timer sweep_timer(c.io);
  scheduleSweep(c, sweep_timer);
  asio::steady_timer follow_timer(c.io);
  // On etcd: other controllers' orders. On both stores: what a failed store write left undone
  // (a delivery, an ack) is tried again without waiting for the gateway's next hello.
  scheduleFollow(c, follow_timer);
  asio::signal_set signals(c.io, SIGTERM, SIGINT);
  // WatchdogSec= in the unit: pings from the core loop, each waiting for the API's and the
  // hub's network threads to answer, so a stuck loop of any of them is restarted.
  std::optional<Watchdog> watchdog;
  if (const auto interval = sdWatchdogInterval()) {
    watchdog.emplace(c.io, *interval);
    watchdog->watch("api",
                    [&c](std::function<void()> answered) { c.api->probe(std::move(answered)); });
    watchdog->watch("agent_hub",
                    [&c](std::function<void()> answered) { c.hub->probe(std::move(answered)); });
  }
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    logger("controller")->info("stopping signal={}", signal);
    sdNotify("STOPPING=1");
    if (watchdog) watchdog->stop();
    c.api->stop();
    c.metrics_server.reset();
    c.hub->stop();
    sweep_timer.cancel();
    follow_timer.cancel();
    if (c.leadership) c.leadership->stop();  // resigns: another leads within a look
    c.io.stop();
  });
  logger("controller")
      ->info("started api={}:{} agent_hub={}:{} metrics={} version={}", c.config.api_listen.host,
             c.api->port(), c.config.hub_listen.host, c.hub->port(),
             c.metrics_server ? listenAddressText(ListenAddress{c.config.metrics_listen->host,
                                                                c.metrics_server->port()})
                              : std::string("api-only"),
             SHADAN_VERSION);
  // Type=notify: started once both listeners are bound and the store and audit log are open.
  sdNotify("READY=1");
  if (watchdog) {
    watchdog->start();
    logger("controller")
        ->info(
            "event=watchdog interval_ms={}",
            std::chrono::duration_cast<std::chrono::milliseconds>(watchdog->period() * 2).count());
  }
  c.io.run();
  if (auto status = c.audit->close(); !status.ok()) {
    return fail("audit log close: " + status.error().message);
  }
  logger("controller")->info("stopped");
  return 0;
}

int mainImpl(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  ControllerCliEnv env;
  env.in = &std::cin;
  env.run = run;
  return runControllerCli(args, std::cout, std::cerr, env);
}

}  // namespace
}  // namespace shadan::controller

int main(int argc, char** argv) { return shadan::controller::mainImpl(argc, argv); }
