#include "cli/forward_cmd.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <ostream>
#include <random>
#include <thread>

#include "cli/controller_context.h"
#include "cli/forward_state.h"
#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

constexpr const char* kForwardUsage = R"(usage:
  shadanctl forward eve FILE [--state FILE] [--from-start] [--batch N] [--flush-ms MS] [--once] [--json]
  shadanctl forward zeek-notice FILE [--state FILE] [--from-start] [--batch N] [--flush-ms MS] [--once] [--json]
      Follow a detector's log like tail -F and post its alerts to the controller's alert
      intake (POST /v1/alerts; the token must have the role detector).
        eve          Suricata's eve.json: records with "event_type":"alert" are sent, other
                     event types are skipped (counted)
        zeek-notice  Zeek's notice.log written as JSON (LogAscii::use_json = T): every record
                     is sent; TSV lines ("#fields ...") are refused
      Lines over 64 KiB and lines that are not JSON objects are not sent: each is reported on
      stderr with its file offset, and counted. A partial last line waits for its newline.
      Rotation (FILE names a new file: the old one is read to its end first) and truncation
      (copytruncate: FILE is read again from 0) are followed, and said on stderr.
      Delivery is at-least-once: the position in FILE moves only after the controller
      answered for a whole batch, so a restart after a crash sends the batch in flight again.
      Records the controller refused are reported with their offset and reason, then passed.
      Unreachable controller or 5xx: retried with backoff (200 ms doubling to 30 s, jitter);
      429: waits its Retry-After; 413: the batch is split in halves; 401, 403 and any other
      refusal stop the forwarder (exit 1).
      A summary (sent, decisions, refused, skipped, invalid, retries) goes to stderr every 60 s
      and at the end.

options:
  --state FILE     where the acknowledged position is kept (JSON: log, device, inode, offset);
                   default /var/lib/shadan/forward-KIND-HASH.json, HASH from FILE's absolute
                   path
  --from-start     with no state yet, read FILE from its start (default: from its end)
  --batch N        records per request (1-1000, default 500)
  --flush-ms MS    send a batch that is not full this long after its first line (1-60000,
                   default 200)
  --once           read to the current end of FILE, send, exit (for cron and tests); without
                   it, run until SIGINT or SIGTERM, sending the pending batch first
  --json           print the final summary as JSON on stdout (else it goes to stderr)

connection options:
  --controller https://HOST:PORT   the controller's API
  --ca FILE                        the CA that issued the controller's certificate (the only
                                   trust anchor; the system store is never used)
  --token-file FILE                the detector's API token (mode 0600); or set SHADAN_TOKEN
  --config FILE                    JSON {"controller","ca","token_file"}; default
                                   ~/.config/shadan/shadanctl.json if it exists
  --timeout SECONDS                per request (1-600, default 10)

exit codes: 0 done (everything read was acknowledged), 1 the controller refused (bad token,
            not a detector token), FILE or the state file failed, or stopped before the last
            batch was acknowledged, 2 usage (nothing was read or sent)
)";

constexpr uint64_t kMaxFlushMs = 60000;

// Raised by SIGINT/SIGTERM. A signal handler can reach nothing but a global; logic code reads
// it only through ForwarderEnv::stop_requested.
std::atomic<bool> g_stop_requested{false};

extern "C" void onStopSignal(int /*signal*/) { g_stop_requested.store(true); }

OptionSpec forwardOptionSpec() {
  OptionSpec spec;
  spec.command = "forward";
  spec.with_value = {"--controller", "--ca",    "--token-file", "--config",
                     "--timeout",    "--state", "--batch",      "--flush-ms"};
  spec.flags = {"--json", "--from-start", "--once"};
  spec.max_positionals = 2;  // KIND FILE
  spec.refused = {{"--token", kNoTokenOnArgv}};
  spec.quote = QuoteStyle::kJson;
  return spec;
}

void printSummary(std::ostream& out, std::ostream& err, bool json, ForwardKind kind,
                  const std::string& log, const ForwardStats& stats) {
  if (json) {
    nlohmann::json summary = stats.toJson();
    summary["kind"] = forwardKindName(kind);
    summary["log"] = log;
    out << summary.dump() << "\n";
  } else {
    err << "shadanctl: forward " << forwardKindName(kind) << " " << log << ": " << stats.text()
        << "\n";
  }
}

}  // namespace

std::string forwardCommandUsage() { return kForwardUsage; }

ForwardCmdEnv defaultForwardCmdEnv() {
  ForwardCmdEnv env;
  env.controller = defaultControllerCmdEnv();
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  env.forwarder.now = [] { return std::chrono::steady_clock::now(); };
  env.forwarder.stop_requested = [] { return g_stop_requested.load(); };
  env.forwarder.sleep = [](std::chrono::milliseconds duration) {
    // In short naps, so a stop is seen within 50 ms even during a 30 s backoff.
    const auto until = std::chrono::steady_clock::now() + duration;
    while (!g_stop_requested.load()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) break;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - now, std::chrono::milliseconds(50)));
    }
  };
  auto generator = std::make_shared<std::mt19937_64>(std::random_device{}());
  env.forwarder.jitter = [generator] {
    return std::uniform_real_distribution<double>(0.0, 1.0)(*generator);
  };
  return env;
}

int runForwardCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                      const ForwardCmdEnv& env) {
  auto options = parseCommandOptions(args, 1, forwardOptionSpec());
  if (!options.ok()) return printUsageError(err, "forward", options.error().message);
  if (options->help) {
    out << kForwardUsage;
    return kExitOk;
  }
  const bool json = options->has("--json");
  ControllerContext ctx(out, err, env.controller, "forward", json);
  const auto& words = options->positionals;
  if (words.empty()) return ctx.usage("'forward' needs eve or zeek-notice, then FILE");
  ForwarderOptions forwarder;
  if (words[0] == "eve") {
    forwarder.kind = ForwardKind::kEve;
  } else if (words[0] == "zeek-notice") {
    forwarder.kind = ForwardKind::kZeekNotice;
  } else {
    return ctx.usage("unknown forward subcommand " + quoteForMessage(words[0]) +
                     " (subcommands: eve, zeek-notice)");
  }
  const std::string kind = forwardKindName(forwarder.kind);
  if (words.size() < 2 || words[1].empty()) return ctx.usage("'forward " + kind + "' needs FILE");
  std::error_code fs_error;
  const std::filesystem::path log = std::filesystem::absolute(words[1], fs_error);
  if (fs_error) return ctx.usage("cannot make " + quoteForMessage(words[1]) + " absolute");
  forwarder.log = log.lexically_normal().string();
  if (auto batch = options->value("--batch")) {
    auto parsed = parseCount("--batch", *batch, 1, kForwardMaxBatchRecords);
    if (!parsed.ok()) return ctx.usage(parsed.error().message);
    forwarder.batch = *parsed;
  }
  if (auto flush = options->value("--flush-ms")) {
    auto parsed = parseCount("--flush-ms", *flush, 1, kMaxFlushMs);
    if (!parsed.ok()) return ctx.usage(parsed.error().message);
    forwarder.flush = std::chrono::milliseconds(*parsed);
  }
  forwarder.state_file =
      options->value("--state").value_or(defaultForwardStatePath(kind, forwarder.log));
  if (forwarder.state_file.empty()) return ctx.usage("--state needs a FILE");
  forwarder.from_start = options->has("--from-start");
  forwarder.once = options->has("--once");
  forwarder.idle_poll = std::min(forwarder.idle_poll, forwarder.flush);

  auto transport = ctx.transport(*options);
  if (!transport.ok()) return ctx.usage(transport.error().message);
  AlertForwarder forwarding(forwarder, **transport, env.forwarder, err);
  const Status ended = forwarding.run();
  printSummary(out, err, json, forwarder.kind, forwarder.log, forwarding.stats());
  if (!ended.ok()) {
    err << "shadanctl: forward " << kind << " " << forwarder.log << ": " << ended.error().message
        << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace shadan
