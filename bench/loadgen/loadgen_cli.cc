#include "bench/loadgen/loadgen_cli.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <iomanip>

#include "bench/loadgen/fleet_setup.h"
#include "bench/loadgen/scenarios.h"
#include "common/logging.h"

namespace shadan::loadgen {
namespace {

using Json = nlohmann::json;

constexpr const char* kUsage = R"(usage: shadan-loadgen SCENARIO [options]

N simulated gateways in one process, each the agent's own orders session and channel code
(hello, heartbeats, the verifier, the kept-ack outbox, signed acks, audit shipping) over a null
dataplane and in-memory state, speaking mutual TLS 1.3 WebSockets to a real shadan-controller
that this command starts from the same build on 127.0.0.1 with a generated config, and stops.
Every key, certificate and token is made for the run in a private directory, removed after.

Scenarios:
  fanout   isolate the segment every agent borders, then restore it (two operators sign):
           request -> each gateway's verified ack, as the controller recorded it; the
           isolate is sent once the connected fleet has settled (the controller quiet)
  storm    kill -9 and restart the controller while every agent is connected; an isolate is
           requested as soon as the API is back: time until all agents are back, and until
           every agent acked that order exactly once
  churn    agents drop and come back at --rate per second for --duration while an isolate
           (at the start) and a restore (half-way) fan out
  soak     N idle agents for --duration: the controller's CPU and memory

Options:
  --agents N         simulated gateways (default 100, at most 50000)
  --threads N        io threads for the agents (default: the number of CPUs)
  --duration S       churn and soak: seconds (default 60)
  --rate R           churn: agents dropped per second (default 20)
  --timeout S        per phase: connect, each order (default 120)
  --json             one JSON object instead of the summary
  --work-dir DIR     where the run's private directory is made (default $TMPDIR or /tmp)
  --controller PATH  shadan-controller to start (default: the one beside this build)
  --controller-log-level LEVEL   its log level (default info, as deployed)
  --store KIND       the controller's store: sqlite (default) or etcd (one etcd member started
                     on loopback for the run, /usr/bin/etcd; docs/ha.md)
  --controllers N    fanout: N controllers (1-7, default 1) on one store; more than one runs a
                     three-member etcd cluster on loopback (--store etcd implied), and agent i
                     dials controller i mod N first, then the others in turn
  --kill-leader      fanout with several controllers: the isolate is requested on a follower and
                     the leading controller gets SIGKILL the moment the first agent has handled
                     it; its agents move on to the others. failover_ms: the kill -> the first of
                     them that still lacked the order handling it (failover_basis "dispatch"),
                     or, when the leader had delivered to all of its agents before it died, the
                     kill -> the first one's reconnect ("reconnect")
  --kill-etcd-member fanout with several controllers: the etcd member every controller talks
                     to first gets SIGKILL the moment the first agent has handled the isolate;
                     the other two carry the rest and the restore
  --keep             keep the run's directory (controller log, state, credentials)
  -h, --help         this text

Enrollment is written into the controller's store before it starts (approved agents with
their public keys), not done by one operator API call per agent; no audit entry records it.
Report (--json): scenario, agents, controllers, acked, duplicates, p50_ms, p95_ms, p99_ms,
max_ms (the headline order: the isolate), failover_ms (null without --kill-leader),
controller_rss_anon_kb, complete, phases{...}, controller{rss_anon_kb, vm_rss_kb, pss_kb,
cpu_s}. fanout's acked: agents whose every order (isolate and restore) the controllers hold a
verified ack for and which applied each exactly once; duplicates: orders applied more than once
by an agent (other scenarios: the headline order's acks). Exit 0: complete; 1: an order did not
reach every agent exactly once; 2: usage; 3: the run failed.
)";

int usage(std::ostream& err, const std::string& message) {
  err << "shadan-loadgen: " << message << "\n(see shadan-loadgen --help)\n";
  return 2;
}

bool parseNumber(const std::string& text, double& value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

std::string defaultController() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "shadan-controller";
  // build/bench/loadgen/shadan-loadgen -> build/controller/shadan-controller
  return (self.parent_path().parent_path().parent_path() / "controller" / "shadan-controller")
      .string();
}

void printPhase(std::ostream& out, const std::string& name, const Json& phase) {
  out << "  " << std::left << std::setw(10) << name << std::right;
  if (phase.contains("targets")) {
    out << "acked " << phase.value("acked", 0) << "/" << phase.value("targets", 0) << ", ";
  } else {
    out << phase.value("count", 0) << " agents, ";
  }
  out << std::fixed << std::setprecision(1) << "p50 " << phase.value("p50_ms", 0.0) << " ms, p95 "
      << phase.value("p95_ms", 0.0) << ", p99 " << phase.value("p99_ms", 0.0) << ", max "
      << phase.value("max_ms", 0.0) << " ms";
  if (phase.contains("redelivered")) {
    out << " (agents applied " << phase.value("agents_applied", 0) << ", redelivered "
        << phase.value("redelivered", 0) << ")";
  }
  out << "\n";
}

void printSummary(std::ostream& out, const Json& report) {
  out << "shadan-loadgen " << report.value("scenario", "") << ": " << report.value("agents", 0)
      << " agents on " << report.value("io_threads", 0) << " io threads ("
      << report["machine"].value("cpus", 0) << " CPU, " << report["machine"].value("cpu", "")
      << ")\n";
  out << std::fixed << std::setprecision(0)
      << "  credentials for all agents: " << report["setup"].value("credentials_ms", 0.0)
      << " ms\n";
  if (const auto phases = report.find("phases"); phases != report.end()) {
    for (const auto& [name, phase] : phases->items()) printPhase(out, name, phase);
  }
  if (report.value("controllers", 1) > 1) {
    out << "  " << report.value("controllers", 1) << " controllers on a three-member etcd cluster";
    if (report.contains("etcd_member_killed")) {
      out << "; etcd member " << report.value("etcd_member_killed", "") << " killed "
          << report.value("killed_after_ms", 0) << " ms after the request";
    }
    if (report.contains("leader")) {
      out << "; leader " << report.value("leader", "") << " killed "
          << report.value("killed_after_ms", 0) << " ms after the request ("
          << report.value("orphans", 0) << " agents on it, " << report.value("orphans_pending", 0)
          << " still without the order); failover "
          << (report["failover_ms"].is_null()
                  ? std::string("none seen")
                  : std::to_string(report["failover_ms"].get<int64_t>()) + " ms (" +
                        report.value("failover_basis", "") + ")");
      if (!report["leader_after"].is_null()) {
        out << "; " << report.value("leader_after", "") << " leads now";
      }
    }
    out << "\n  agents with every order acked exactly once: " << report.value("acked", 0)
        << ", orders applied twice: " << report.value("duplicates", 0) << "\n";
  }
  if (report.contains("settle_ms")) {
    out << "  settled (controller quiet) " << report.value("settle_ms", 0) << " ms after connect\n";
  }
  if (report.contains("all_back_ms")) {
    out << "  controller down " << report.value("controller_down_ms", 0) << " ms; all agents back "
        << (report["all_back_ms"].is_null()
                ? std::string("never")
                : std::to_string(report["all_back_ms"].get<int64_t>()) + " ms")
        << " after the kill\n";
  }
  if (report.contains("dropped")) {
    out << "  churn: " << report.value("dropped", 0) << " drops in "
        << report.value("duration_s", 0) << " s\n";
  }
  if (report.contains("controller_cpu_percent")) {
    out << std::setprecision(2)
        << "  controller CPU while idle: " << report.value("controller_cpu_percent", 0.0)
        << "% of one core over " << report.value("duration_s", 0.0) << " s\n";
  }
  if (report.contains("controller")) {
    const Json& c = report["controller"];
    out << std::setprecision(1) << "  controller: RssAnon " << c.value("rss_anon_kb", 0) / 1024.0
        << " MiB, VmRSS " << c.value("vm_rss_kb", 0) / 1024.0 << " MiB, Pss "
        << c.value("pss_kb", 0) / 1024.0 << " MiB, CPU " << c.value("cpu_s", 0.0) << " s\n";
  }
  const bool complete = report.value("complete", false);
  if (report.value("scenario", "") == "soak") {
    out << (complete ? "  complete: every agent stayed connected\n"
                     : "  INCOMPLETE: agents lost their connection while idle\n");
  } else {
    out << (complete ? "  complete: every order reached every agent exactly once\n"
                     : "  INCOMPLETE: an order did not reach every agent exactly once\n");
  }
}

}  // namespace

int runLoadgen(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) return usage(err, "a scenario is required (fanout, storm, churn, soak)");
  for (const std::string& arg : args) {
    if (arg == "-h" || arg == "--help") {
      out << kUsage;
      return 0;
    }
  }
  const std::string scenario = args[0];
  bool known = false;
  for (const char* name : kScenarioNames) known = known || scenario == name;
  if (!known) return usage(err, "unknown scenario \"" + scenario + "\"");
  ScenarioOptions options;
  options.run.controller_bin = defaultController();
  options.run.io_threads = std::max(1u, std::thread::hardware_concurrency());
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    options.run.work_root = tmp;
  }
  bool json = false;
  bool store_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& word = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    auto number = [&](double min, double max, double& into) -> bool {
      std::string text;
      return value(text) && parseNumber(text, into) && into >= min && into <= max;
    };
    double n = 0;
    std::string text;
    if (word == "--json") {
      json = true;
    } else if (word == "--keep") {
      options.run.keep = true;
    } else if (word == "--agents") {
      if (!number(1, static_cast<double>(kMaxAgents), n) || n != static_cast<size_t>(n)) {
        return usage(err, "--agents needs a whole number 1.." + std::to_string(kMaxAgents));
      }
      options.run.agents = static_cast<size_t>(n);
    } else if (word == "--threads") {
      if (!number(1, 64, n)) return usage(err, "--threads needs a number 1..64");
      options.run.io_threads = static_cast<unsigned>(n);
    } else if (word == "--duration") {
      if (!number(1, 86400, n)) return usage(err, "--duration needs seconds 1..86400");
      options.duration = std::chrono::seconds(static_cast<int64_t>(n));
    } else if (word == "--rate") {
      if (!number(0.1, 10000, n)) return usage(err, "--rate needs a number 0.1..10000");
      options.churn_per_s = n;
    } else if (word == "--timeout") {
      if (!number(1, 3600, n)) return usage(err, "--timeout needs seconds 1..3600");
      options.run.phase_timeout = std::chrono::seconds(static_cast<int64_t>(n));
    } else if (word == "--work-dir") {
      if (!value(options.run.work_root)) return usage(err, "--work-dir needs a directory");
    } else if (word == "--controller") {
      if (!value(options.run.controller_bin)) return usage(err, "--controller needs a path");
    } else if (word == "--kill-leader") {
      options.kill_leader = true;
    } else if (word == "--kill-etcd-member") {
      options.kill_etcd_member = true;
    } else if (word == "--controllers") {
      if (!number(1, static_cast<double>(kMaxControllers), n) || n != static_cast<size_t>(n)) {
        return usage(err,
                     "--controllers needs a whole number 1.." + std::to_string(kMaxControllers));
      }
      options.run.controllers = static_cast<size_t>(n);
    } else if (word == "--store") {
      store_given = true;
      if (!value(options.run.store) ||
          (options.run.store != "sqlite" && options.run.store != "etcd")) {
        return usage(err, "--store needs sqlite or etcd");
      }
    } else if (word == "--controller-log-level") {
      if (!value(options.run.controller_log_level)) {
        return usage(err, "--controller-log-level needs a level");
      }
    } else {
      return usage(err, "unknown option \"" + word + "\"");
    }
  }
  if (options.run.controllers > 1) {
    if (scenario != "fanout") return usage(err, "--controllers is for the fanout scenario");
    if (store_given && options.run.store != "etcd") {
      return usage(err, "several controllers share an etcd store (--store etcd)");
    }
    options.run.store = "etcd";
  }
  if (options.kill_leader && options.run.controllers < 2) {
    return usage(err, "--kill-leader needs --controllers 2 or more");
  }
  if (options.kill_etcd_member && options.run.controllers < 2) {
    return usage(err, "--kill-etcd-member needs --controllers 2 or more (a three-member cluster)");
  }
  if (options.kill_leader && options.kill_etcd_member) {
    return usage(err, "--kill-leader and --kill-etcd-member are separate runs");
  }
  if (::access(options.run.controller_bin.c_str(), X_OK) != 0) {
    err << "shadan-loadgen: " << options.run.controller_bin
        << " is not an executable shadan-controller (build it, or give --controller PATH)\n";
    return 3;
  }
  if (options.run.store == "etcd" && ::access(options.run.etcd_bin.c_str(), X_OK) != 0) {
    err << "shadan-loadgen: the etcd store needs " << options.run.etcd_bin
        << " (scripts/install-deps.sh installs etcd-server)\n";
    return 3;
  }
  // Thousands of agents would each log their orders; the report is what counts here.
  setLogLevel("error");
  auto report = runScenario(scenario, options);
  if (!report.ok()) {
    err << "shadan-loadgen: " << scenario << ": " << report.error().message << "\n";
    return 3;
  }
  if (json) {
    out << report->dump() << "\n";
  } else {
    printSummary(out, *report);
  }
  return reportComplete(*report) ? 0 : 1;
}

}  // namespace shadan::loadgen
