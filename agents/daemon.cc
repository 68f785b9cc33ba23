#include "agents/daemon.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <utility>
// clang-format off
#include <boost/asio.hpp>
// clang-format on
#include <cstdio>
#include <memory>
#include <optional>

#include "agents/agent_audit.h"
#include "agents/agent_core.h"
#include "agents/agent_metrics.h"
#include "agents/control_client.h"
#include "agents/control_protocol.h"
#include "agents/controller_link.h"
#include "agents/dataplane/gateway_owner.h"
#include "agents/dataplane/netlink_conntrack_backend.h"
#include "agents/dataplane/netlink_route_backend.h"
#include "agents/dataplane/nft_monitor.h"
#include "agents/dataplane/nftables_backend.h"
#include "agents/dataplane/route_monitor.h"
#include "agents/orders_session.h"
#include "agents/ownership.h"
#include "agents/policy_reload.h"
#include "agents/state/sqlite_state_store.h"
#include "common/audit_export.h"
#include "common/audit_ship.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_server.h"
#include "common/policy.h"
#include "common/sd_notify.h"
#include "common/trust.h"
#include "common/watchdog.h"

namespace shadan::agent {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

std::filesystem::path controlSocketPath(const std::filesystem::path& state_dir) {
  return state_dir / "agent.sock";
}

namespace {

constexpr auto kClientTimeout = std::chrono::seconds(5);
// How long a deadline wait may last before the wall clock is read again (see armDeadline).
constexpr std::chrono::milliseconds kDeadlineRecheck = std::chrono::seconds(10);

// The event loop around one AgentCore. Everything runs on the io_context's single thread.
class Daemon {
 public:
  Daemon(asio::io_context& io, AgentCore& core, PolicyReloader& reloader, AgentAudit& audit,
         NftMonitor& nft, RouteMonitor& routes, const DaemonOptions& options)
      : io_(io),
        core_(core),
        reloader_(reloader),
        audit_(audit),
        nft_(nft),
        routes_(routes),
        options_(options),
        log_(logger("agent")),
        nft_fd_(io, ::dup(nft.fd())),
        route_fd_(io, ::dup(routes.fd())),
        repair_timer_(io),
        route_timer_(io),
        poll_timer_(io),
        reapply_timer_(io),
        deadline_timer_(io),
        stop_timer_(io),
        acceptor_(io),
        signals_(io, SIGINT, SIGTERM, SIGHUP) {}

  Status listen(const std::filesystem::path& socket_path) {
    boost::system::error_code ec;
    // We hold the state directory's lock, so no other daemon serves this socket: a file left
    // there is stale.
    ::unlink(socket_path.c_str());
    acceptor_.open(Local(), ec);
    if (!ec) acceptor_.bind(Local::endpoint(socket_path.string()), ec);
    if (!ec && ::chmod(socket_path.c_str(), 0600) != 0) {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
    if (!ec) acceptor_.listen(16, ec);
    if (ec) {
      return makeError(ErrorCode::kIo,
                       "control socket " + socket_path.string() + ": " + ec.message());
    }
    return okStatus();
  }

  // Connects to the controller (when one is configured). The link is the transport; what is
  // said over it (dispatch -> signed ack, kept acks, audit shipping, controller loss) is the
  // orders session's.
  Status connect(const ControllerEndpoint& endpoint, const std::string& agent_keyid,
                 const Ed25519PublicKey& agent_public_key) {
    LinkOptions link_options;
    link_options.host = endpoint.host;
    link_options.port = endpoint.port;
    link_options.more_controllers = endpoint.more;
    link_options.ca_file = (endpoint.tls_dir / "ca.crt").string();
    link_options.cert_file = (endpoint.tls_dir / "agent.crt").string();
    link_options.key_file = (endpoint.tls_dir / "agent.key").string();
    link_options.controller_pin = endpoint.pin;
    link_options.agent_id = core_.gatewayId();
    link_options.agent_keyid = agent_keyid;
    link_options.agent_public_key = agent_public_key;
    // The callbacks run on the io thread once the loop runs, when session_ is set.
    LinkCallbacks callbacks;
    callbacks.on_dispatch = [this](const nlohmann::json& envelope) {
      session_->onDispatch(envelope);
      armDeadline();
    };
    callbacks.on_connected = [this] { session_->onConnected(); };
    callbacks.on_audit = [this](const nlohmann::json& message) {
      session_->onAuditMessage(message);
    };
    callbacks.on_message_rejected = [this](const std::string& reason) {
      session_->onMessageRejected(reason);
    };
    callbacks.on_disconnected = [this](const std::string& reason) {
      session_->onDisconnected(reason);
    };
    callbacks.last_seq = [this] { return session_->lastSeq(); };
    link_ = std::make_unique<ControllerLink>(io_, link_options, callbacks, clock_);
    OrdersSessionOptions session_options;
    session_options.controller_loss_grace = options_.controller_loss_grace;
    session_ = std::make_unique<OrdersSession>(
        OrdersSessionDeps{core_, audit_.log(), ship_fs_, ship_reader_,
                          (options_.state_dir / "audit.log").string(), *link_, monotonic_},
        session_options);
    return link_->start();
  }

  // Whether the controller channel is up (false without one).
  bool controllerConnected() const { return link_ && link_->connected(); }
  bool hasController() const { return link_ != nullptr; }

  void start() {
    if (auto gen = nft_.currentGeneration(); gen.ok()) last_generation_ = *gen;
    watchNft();
    watchRoutes();
    armPoll();
    armFullReapply();
    armDeadline();
    accept();
    waitForSignal();
  }

 private:
  // SIGHUP reloads and waits again; SIGTERM/SIGINT stop.
  void waitForSignal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        sdNotify("RELOADING=1");
        // Logged and audited inside, whatever the outcome; a refusal changes nothing.
        (void)reloader_.reloadFiles("SIGHUP");
        sdNotify("READY=1");
        if (session_) session_->shipAudit();
        return waitForSignal();
      }
      log_->info("event=stopping signal={} note=\"rules stay in the kernel\"", signal);
      core_.auditEvent("daemon_stop", "ok", nlohmann::json{{"signal", signal}});
      sdNotify("STOPPING=1");
      stopAfterShipping(std::chrono::steady_clock::now() + options_.stop_ship_timeout);
    });
  }

  // ---- nftables events -------------------------------------------------------------------

  void watchNft() {
    nft_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         if (ec) return;
                         onNftReadable();
                         watchNft();
                       });
  }

  void onNftReadable() {
    auto events = nft_.drain();
    if (!events.ok()) {
      log_->error("event=nft_monitor_error error=\"{}\"", events.error().message);
      scheduleRepair("monitor error", true);
      return;
    }
    const auto self = static_cast<uint32_t>(::getpid());
    const auto self_thread = static_cast<uint32_t>(::gettid());
    for (const auto& event : *events) {
      if (event.lost) {
        log_->warn("event=nft_events_lost note=\"re-applying the whole table\"");
        scheduleRepair("events lost", true);
        continue;
      }
      last_generation_ = event.gen_id;
      if (event.pid == self || event.pid == self_thread || !event.touched_our_table) continue;
      // NEWGEN names the committing task (a thread id); ours is the loop thread.
      last_foreign_pid_ = event.pid;
      last_foreign_comm_ = event.comm;
      log_->warn("event=foreign_change pid={} comm={} gen={} deleted_table={}", event.pid,
                 event.comm, event.gen_id, event.deleted_our_table);
      scheduleRepair("foreign change", false);
    }
  }

  // Debounced: a burst of foreign transactions (a script of nft commands) costs one re-apply.
  void scheduleRepair(const std::string& reason, bool force) {
    repair_force_ = repair_force_ || force;
    if (repair_pending_) return;
    repair_pending_ = true;
    repair_reason_ = reason;
    repair_timer_.expires_after(options_.debounce);
    repair_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      repair_pending_ = false;
      const bool forced = repair_force_;
      repair_force_ = false;
      repair(repair_reason_, forced);
    });
  }

  void repair(const std::string& reason, bool force) {
    RepairTrigger trigger{reason, std::nullopt, std::nullopt};
    if (reason == "foreign change") {
      trigger.pid = last_foreign_pid_;
      trigger.comm = last_foreign_comm_;
    }
    auto result = core_.reconcile(force, trigger);
    if (!result.ok()) {
      log_->error("event=repair_failed reason=\"{}\" error=\"{}\"", reason, result.error().message);
      // Try again soon: an isolation that does not hold is the failure that matters most.
      scheduleRepairRetry();
      return;
    }
    if (result->repaired) {
      log_->warn(
          "event=repaired reason=\"{}\" found={} by_pid={} by_comm={} sha256_before={} "
          "sha256_after={}",
          reason, kernelStateName(result->found), last_foreign_pid_, last_foreign_comm_,
          result->sha256_before, result->sha256_after);
    }
  }

  void scheduleRepairRetry() {
    reapply_retry_ = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(500));
    reapply_retry_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) scheduleRepair("retry", true);
    });
  }

  // ---- stopping ---------------------------------------------------------------------------

  // A clean stop covers the log with a checkpoint and waits (bounded) until the controller has
  // acknowledged every entry and that checkpoint, so its copy of this log can be verified
  // against a checkpoint (truncation detectable) even when the agent never runs again.
  void stopAfterShipping(std::chrono::steady_clock::time_point deadline) {
    if (!session_ || !link_ || !link_->connected()) return io_.stop();
    if (!stop_checkpointed_) {
      stop_checkpointed_ = true;
      if (auto checkpointed = audit_.log().checkpoint(); !checkpointed.ok()) {
        log_->error("event=audit_checkpoint_failed error=\"{}\"", checkpointed.error().message);
      }
      session_->shipAudit();
    }
    if (session_->auditShipped()) return io_.stop();
    if (std::chrono::steady_clock::now() >= deadline) {
      log_->warn("event=stop_without_audit_shipped acked_seq={} log_size={}",
                 session_->shipper().ackedSeq(), audit_.log().size());
      return io_.stop();
    }
    stop_timer_.expires_after(std::chrono::milliseconds(20));
    stop_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
      if (!ec) stopAfterShipping(deadline);
    });
  }

  // ---- routes -----------------------------------------------------------------------------

  void watchRoutes() {
    route_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& ec) {
                           if (ec) return;
                           onRoutesReadable();
                           watchRoutes();
                         });
  }

  void onRoutesReadable() {
    auto events = routes_.drain();
    bool resync = !events.ok();
    if (events.ok()) {
      for (const auto& event : *events) {
        if (event.lost || event.kind == RouteChangeEvent::kLinkChanged ||
            (event.ours && (event.kind == RouteChangeEvent::kRouteDeleted ||
                            event.kind == RouteChangeEvent::kRuleDeleted))) {
          resync = true;
        }
      }
    }
    if (!resync || route_resync_pending_) return;
    route_resync_pending_ = true;
    route_timer_.expires_after(options_.debounce);
    route_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      route_resync_pending_ = false;
      // sync() sends nothing when the routes are as desired, so our own changes do not loop.
      if (auto synced = core_.resyncRoutes("route, rule or link event"); !synced.ok()) {
        log_->error("event=route_resync_failed error=\"{}\"", synced.error().message);
      }
    });
  }

  // ---- backstops --------------------------------------------------------------------------

  void armPoll() {
    poll_timer_.expires_after(options_.generation_poll);
    poll_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto checkpointed = audit_.log().maybeCheckpoint(); !checkpointed.ok()) {
        log_->error("event=audit_checkpoint_failed error=\"{}\"", checkpointed.error().message);
      }
      if (session_ && session_->tick()) armDeadline();
      auto gen = nft_.currentGeneration();
      if (gen.ok() && *gen != last_generation_) {
        last_generation_ = *gen;
        scheduleRepair("generation changed", false);
      }
      armPoll();
    });
  }

  void armFullReapply() {
    reapply_timer_.expires_after(options_.full_reapply);
    reapply_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      scheduleRepair("periodic full re-apply", true);
      armFullReapply();
    });
  }

  // ---- deadlines --------------------------------------------------------------------------

  void armDeadline() {
    deadline_timer_.cancel();
    const auto next = core_.nextDeadline();
    if (!next) return;
    // Deadlines are wall-clock instants (persisted, honoured across reboots), waited for on
    // the steady clock: a step of the wall clock (NTP, `date -s`) would go unnoticed for the
    // whole wait. Waking at least every kDeadlineRecheck keeps the wall clock in charge.
    auto delay = *next - std::chrono::system_clock::now();
    if (delay < std::chrono::milliseconds(0)) delay = std::chrono::milliseconds(0);
    if (delay > kDeadlineRecheck) delay = kDeadlineRecheck;
    deadline_timer_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(delay));
    deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      auto result = core_.expireDue();
      if (!result.ok()) {
        log_->error("event=expiry_failed error=\"{}\"", result.error().message);
        scheduleRepairRetry();
      } else {
        for (const auto& expired : result->expired) {
          log_->info("event=expired segment={} profile={}", expired.segment, expired.profile);
        }
      }
      armDeadline();
    });
  }

  // ---- control socket ---------------------------------------------------------------------

  struct Client {
    explicit Client(asio::io_context& io)
        : socket(io), timer(io), buffer(kMaxControlRequestBytes) {}
    Local::socket socket;
    asio::steady_timer timer;
    asio::streambuf buffer;
    std::string answer;
  };

  void accept() {
    auto client = std::make_shared<Client>(io_);
    acceptor_.async_accept(client->socket, [this, client](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) serve(client);
      accept();
    });
  }

  void serve(const std::shared_ptr<Client>& client) {
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(client->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &length) !=
            0 ||
        (peer.uid != 0 && peer.uid != ::geteuid())) {
      log_->warn("event=control_refused uid={} pid={}", peer.uid, peer.pid);
      reply(client, errorAnswer("control", makeError(ErrorCode::kInvalidArgument,
                                                     "only root may control the agent")));
      return;
    }
    client->timer.expires_after(kClientTimeout);
    client->timer.async_wait([client](const boost::system::error_code& ec) {
      if (!ec) client->socket.close();
    });
    asio::async_read_until(
        client->socket, client->buffer, '\n',
        [this, client, peer](const boost::system::error_code& ec, size_t bytes) {
          client->timer.cancel();
          if (ec) {
            if (ec == asio::error::not_found) {
              reply(client, errorAnswer("control", makeError(ErrorCode::kInvalidArgument,
                                                             "request larger than 64 KiB")));
            }
            return;
          }
          std::string line(
              asio::buffers_begin(client->buffer.data()),
              asio::buffers_begin(client->buffer.data()) + static_cast<std::ptrdiff_t>(bytes - 1));
          auto request = parseControlRequest(line);
          if (!request.ok()) {
            log_->warn("event=control_bad_request pid={} error=\"{}\"", peer.pid,
                       request.error().message);
            reply(client, errorAnswer("control", request.error()));
            return;
          }
          const std::string origin = "local-cli pid=" + std::to_string(peer.pid);
          nlohmann::json answer = handleControlRequest(
              core_, *request, origin,
              "local-cli uid=" + std::to_string(peer.uid) + " pid=" + std::to_string(peer.pid));
          if (request->op != "status") {
            log_->info("event=control op={} segment={} ok={} pid={}", request->op,
                       request->segment.value_or("*"), answer.value("ok", false), peer.pid);
            armDeadline();
            if (session_) session_->shipAudit();
          }
          reply(client, answer);
        });
  }

  void reply(const std::shared_ptr<Client>& client, const nlohmann::json& answer) {
    client->answer = answer.dump() + "\n";
    asio::async_write(client->socket, asio::buffer(client->answer),
                      [client](const boost::system::error_code&, size_t) {
                        boost::system::error_code ignored;
                        client->socket.shutdown(Local::socket::shutdown_both, ignored);
                      });
  }

  asio::io_context& io_;
  AgentCore& core_;
  PolicyReloader& reloader_;
  AgentAudit& audit_;
  NftMonitor& nft_;
  RouteMonitor& routes_;
  const DaemonOptions& options_;
  std::shared_ptr<spdlog::logger> log_;
  asio::posix::stream_descriptor nft_fd_;
  asio::posix::stream_descriptor route_fd_;
  asio::steady_timer repair_timer_;
  asio::steady_timer route_timer_;
  asio::steady_timer poll_timer_;
  asio::steady_timer reapply_timer_;
  asio::steady_timer deadline_timer_;
  std::unique_ptr<asio::steady_timer> reapply_retry_;
  SystemClock clock_;
  SteadyMonotonicClock monotonic_;
  PosixLogFileSystem ship_fs_;
  PosixAuditFileReader ship_reader_;
  std::unique_ptr<ControllerLink> link_;
  std::unique_ptr<OrdersSession> session_;
  asio::steady_timer stop_timer_;
  bool stop_checkpointed_ = false;
  Local::acceptor acceptor_;
  asio::signal_set signals_;
  uint32_t last_generation_ = 0;
  uint32_t last_foreign_pid_ = 0;
  std::string last_foreign_comm_ = "-";
  std::string repair_reason_;
  bool repair_pending_ = false;
  bool repair_force_ = false;
  bool route_resync_pending_ = false;
};

}  // namespace

int runDaemon(const DaemonOptions& options, std::ostream& err) {
  auto log = logger("agent");
  const auto die = [&](const Error& error, int code) {
    err << "shadan-agent run: " << error.message << "\n";
    log->critical("event=start_failed error=\"{}\"", error.message);
    return code;
  };

  auto loaded = readPolicyFile(options.policy_path);  // loadPolicyFile, and the file's SHA-256
  if (!loaded.ok()) return die(loaded.error(), 3);
  if (!loaded->policy.findGateway(options.gateway)) {
    return die(
        makeError(ErrorCode::kNotFound, "gateway \"" + options.gateway + "\" is not in policy " +
                                            options.policy_path.string()),
        3);
  }
  // One gateway, one writer: the state directory's lock, then the network namespace's gateway
  // lock (agents/ownership.h).
  auto claim = claimForDaemon(options.state_dir, options.state_lock_wait);
  if (!claim.ok()) return die(claim.error(), claim.error().code == ErrorCode::kUnavailable ? 4 : 1);
  auto firewall = NftablesBackend::create();
  if (!firewall.ok()) return die(firewall.error(), 1);
  auto routes = NetlinkRouteBackend::create();
  if (!routes.ok()) return die(routes.error(), 1);
  // Monitors first, so that no change between our apply and the subscription goes unseen.
  auto nft_monitor = NftMonitor::open(NftMonitorOptions{});
  if (!nft_monitor.ok()) return die(nft_monitor.error(), 1);
  auto route_monitor = RouteMonitor::open(RouteMonitorOptions{});
  if (!route_monitor.ok()) return die(route_monitor.error(), 1);
  auto conntrack = NetlinkConntrackBackend::create();
  if (!conntrack.ok()) return die(conntrack.error(), 1);
  SystemClock clock;
  auto audit = AgentAudit::open(options.state_dir, options.gateway, clock);
  if (!audit.ok()) return die(audit.error(), 1);

  // The hash-chained log is the record; journald/syslog get a copy of each entry, best effort.
  AuditExportOptions export_options;
  export_options.log_id = "agent:" + options.gateway;
  auto exporter = makeAuditExporter(options.audit_export, export_options);
  if (!exporter.ok()) return die(exporter.error(), 3);
  AuditSink* sink = &(*audit)->log();
  std::unique_ptr<ExportingAuditSink> exporting;
  if (*exporter) {
    exporting = std::make_unique<ExportingAuditSink>(*sink, std::move(*exporter));
    sink = exporting.get();
  }

  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  AgentCore core(loaded->policy, options.gateway,
                 AgentCoreDeps{*claim->store, **firewall, **routes, **conntrack, *sink, clock, host,
                               SHADAN_VERSION, agentOwnerMark(options.gateway, options.state_dir)});
  // Fail-closed start: the persisted isolations are in the kernel before we say we are ready
  // and before we listen to anyone.
  std::optional<Trust> trust;
  if (options.trust_path) {
    auto loaded_trust = loadTrustFile(*options.trust_path);
    if (!loaded_trust.ok()) return die(loaded_trust.error(), 3);
    trust = std::move(loaded_trust).value();
  }
  auto started = core.start();
  if (!started.ok()) {
    core.auditEvent("daemon_start", "failed", nlohmann::json{{"error", started.error().message}});
    (void)(*audit)->log().close();
    return die(started.error().withContext("applying the stored state"), 1);
  }
  for (const auto& expired : started->expired) {
    log->info("event=expired_while_down segment={} profile={}", expired.segment, expired.profile);
  }

  if (trust) {
    if (auto used = core.useTrust(std::move(*trust), (*audit)->signer()); !used.ok()) {
      return die(used.error().withContext("trust file " + options.trust_path->string()), 3);
    }
  }

  PolicyReloader reloader(core, ReloadSources{options.policy_path, options.trust_path}, *loaded,
                          &(*audit)->signer());
  asio::io_context io(1);
  const auto owner_queries = serveOwnerQueries(io, claim->gateway);
  Daemon daemon(io, core, reloader, **audit, **nft_monitor, **route_monitor, options);
  if (auto listening = daemon.listen(controlSocketPath(options.state_dir)); !listening.ok()) {
    return die(listening.error(), 1);
  }
  daemon.start();
  if (options.controller) {
    if (!options.trust_path) {
      return die(makeError(ErrorCode::kInvalidArgument,
                           "a controller needs --trust: signed orders are verified against it"),
                 3);
    }
    if (auto connecting =
            daemon.connect(*options.controller, (*audit)->keyId(), (*audit)->publicKey());
        !connecting.ok()) {
      return die(connecting.error().withContext("controller link"), 3);
    }
  }
  MetricsRegistry metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (options.metrics_listen) {
    AgentMetricSources sources{core, (*audit)->log(), clock};
    if (daemon.hasController()) {
      sources.controller_connected = [&daemon] { return daemon.controllerConnected(); };
    }
    registerAgentMetrics(metrics, sources);
    auto server =
        MetricsServer::start(io, *options.metrics_listen, [&metrics] { return metrics.render(); });
    if (!server.ok()) return die(server.error(), 1);
    metrics_server = std::move(*server);
  }
  core.auditEvent(
      "daemon_start", "ok",
      nlohmann::json{{"isolations", started->state.isolations.size()},
                     {"ruleset_sha256", started->report.after.sha256},
                     {"policy", {{"name", core.policy().name}, {"sha256", loaded->sha256}}},
                     {"audit_key", (*audit)->keyId()}});
  log->info("event=ready gateway={} isolations={} ruleset_sha256={}", options.gateway,
            started->state.isolations.size(), started->report.after.sha256);
  sdNotify("READY=1");
  // WatchdogSec= in the unit: pings from this loop, so a stuck loop is restarted.
  std::optional<Watchdog> watchdog;
  if (const auto interval = sdWatchdogInterval()) {
    watchdog.emplace(io, *interval);
    watchdog->start();
    log->info("event=watchdog interval_ms={}",
              std::chrono::duration_cast<std::chrono::milliseconds>(*interval).count());
  }
  io.run();
  ::unlink(controlSocketPath(options.state_dir).c_str());
  if (auto closed = (*audit)->log().close(); !closed.ok()) {
    log->error("event=audit_close_failed error=\"{}\"", closed.error().message);
  }
  log->info("event=stopped");
  return 0;
}

std::string ControllerEndpoint::text() const {
  std::string out = ControllerAddress{host, port}.text();
  for (const ControllerAddress& other : more) out += "," + other.text();
  return out;
}

}  // namespace shadan::agent
