#pragma once

// The command line of shadan-agent (`shadan-agent COMMAND --help` prints each one's options):
//
//   shadan-agent run     --policy FILE --gateway ID --state-dir DIR       (the daemon)
//   shadan-agent isolate SEGMENT [--profile NAME] [--ttl DURATION [--drill]]
//                        --policy FILE --gateway ID --state-dir DIR
//   shadan-agent restore SEGMENT [--profile NAME] | --all   --policy FILE --gateway ID
//                        --state-dir DIR
//   shadan-agent status  [--json] --policy FILE --gateway ID --state-dir DIR
//   shadan-agent plan    [SEGMENT [--profile NAME]] --policy FILE --gateway ID [--state-dir DIR]
//   shadan-agent verify FILE      --policy FILE --gateway ID --state-dir DIR --trust FILE
//   shadan-agent apply-file FILE  --policy FILE --gateway ID --state-dir DIR --trust FILE
//                                  (break-glass: a breakglass-signed isolate authz, no controller)
//   shadan-agent policy check FILE [--gateway ID]    (offline, agents/policy_cmd.h)
//   shadan-agent policy show --policy FILE
//
// isolate / restore / status go to the daemon over its control socket when one runs on the state
// directory (one writer), and are carried out in-process otherwise. Either way the same
// AgentCore does the work: everything is validated before the state or the kernel is touched; a
// change is committed to the state store first, then applied in one kernel transaction; if the
// kernel refuses, the stored state is put back.
//
// All side effects come in through AgentEnvironment, so the whole CLI runs in unit tests against
// fakes; main.cc wires the real backends.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "agents/agent_setup.h"
#include "agents/control_protocol.h"
#include "agents/daemon.h"
#include "agents/dataplane/conntrack_backend.h"
#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/state/state_store.h"
#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::agent {

// Exit codes: stable, documented in docs/agent-cli.md and `shadan-agent --help`, each one
// exercised by tests/agents/agent_cli_exit_codes_test.cc.
enum AgentExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,    // the kernel or the state store failed, or the command needs root
                      // (CAP_NET_ADMIN) and has none; nothing was changed
  kExitUsage = 2,     // bad command line: unknown command or option, missing argument or
                      // required option (--policy, --gateway, --state-dir)
  kExitRejected = 3,  // the request is invalid for this policy: policy invalid, missing or
                      // unreadable, unknown gateway, segment or profile, a segment this gateway
                      // does not border
  kExitBusy = 4,      // another process holds the state directory (after kStateDirLockWait),
                      // or another agent owns the gateway (its daemon runs, or its owner mark is
                      // on the table)
  kExitDrift = 5,     // status: the kernel does not hold what was applied (drift, our table
                      // missing, or a table of ours where none should be)
  kExitOverdue = 6,   // status: an isolation's deadline has passed and nothing lifted it
};

// How long a local command (isolate, restore, status, verify, apply-file) waits for the state
// directory's lock while another shadan-agent process holds it, saying so once on stderr.
inline constexpr std::chrono::seconds kStateDirLockWait{10};

struct AgentEnvironment {
  std::function<Result<FirewallBackendPtr>()> open_firewall;
  std::function<Result<RouteBackendPtr>()> open_routes;
  std::function<Result<ConntrackBackendPtr>()> open_conntrack;
  // Opens the agent's audit trail in the state directory (call with the lock held), with the
  // agent key that signs its checkpoints and the acks of signed orders.
  struct AuditHandle {
    std::shared_ptr<AuditSink> sink;
    std::shared_ptr<const Signer> key;
  };
  std::function<Result<AuditHandle>(const std::filesystem::path& state_dir,
                                    const std::string& gateway_id)>
      open_audit;
  // Opens the state store, taking the state directory's lock (kUnavailable when it is held).
  std::function<Result<StateStorePtr>(const std::filesystem::path&)> open_state;
  // Sends `request` to the daemon serving `state_dir`. nullopt: no daemon listens there.
  std::function<Result<std::optional<nlohmann::json>>(const std::filesystem::path& state_dir,
                                                      const ControlRequest& request)>
      ask_daemon;
  // Takes this network namespace's gateway lock (agents/dataplane/gateway_owner.h) for one
  // change; kUnavailable, naming the owner, while another agent process writes the gateway.
  // The lock is held until the returned handle is released.
  std::function<Result<std::shared_ptr<void>>()> claim_gateway;
  // Whether this process may change the firewall and routes (CAP_NET_ADMIN; main.cc asks the
  // kernel). false: a command that would act on the kernel itself (no daemon answered) says it
  // needs root instead of failing on netlink. Unset: assumed true (the unit tests' fakes).
  std::function<bool()> has_net_admin;
  // `init` only: opens the state store creating the directory (open_state never creates one).
  std::function<Result<StateStorePtr>(const std::filesystem::path&)> create_state;
  // Where option defaults come from (agents/agent_setup.h).
  AgentDefaults defaults;
  std::function<int(const DaemonOptions&)> run_daemon;
  // Who runs the command, for the audit trail: the real uid and SUDO_USER (as the environment
  // claims it; empty when unset or not a plain user name).
  unsigned uid = 0;
  std::string sudo_user;
  // Asks the operator a yes/no question on the terminal; false when there is no terminal.
  std::function<bool(const std::string& question)> confirm;
  const Clock* clock = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

// Runs one command; `args` excludes the program name. Returns the process exit code.
int runAgentCli(const std::vector<std::string>& args, const AgentEnvironment& env);

}  // namespace shadan::agent
