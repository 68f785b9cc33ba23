#pragma once

// The command line of shadan-agent:
//
//   shadan-agent run     --policy FILE --gateway ID --state-dir DIR       (the daemon)
//   shadan-agent isolate SEGMENT [--profile NAME] [--ttl DURATION] --policy FILE --gateway ID
//   --state-dir DIR shadan-agent restore SEGMENT [--profile NAME] | --all   --policy FILE --gateway
//   ID --state-dir DIR shadan-agent status  [--json] --policy FILE --gateway ID --state-dir DIR
//   shadan-agent plan    [SEGMENT [--profile NAME]] --policy FILE --gateway ID [--state-dir DIR]
//   shadan-agent verify FILE      --policy FILE --gateway ID --state-dir DIR --trust FILE
//   shadan-agent apply-file FILE  --policy FILE --gateway ID --state-dir DIR --trust FILE
//                                  (break-glass: a breakglass-signed isolate authz, no controller)
//
// isolate / restore / status go to the daemon over its control socket when one runs on the state
// directory (one writer), and are carried out in-process otherwise. Either way the same
// AgentCore does the work: everything is validated before the state or the kernel is touched; a
// change is committed to the state store first, then applied in one kernel transaction; if the
// kernel refuses, the stored state is put back.
//
// All side effects come in through AgentEnvironment, so the whole CLI runs in unit tests against
// fakes; main.cc wires the real backends.

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

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

// Exit codes: stable, documented in docs/agent-cli.md.
enum AgentExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,    // the kernel or the state store failed; nothing was changed
  kExitUsage = 2,     // bad command line
  kExitRejected = 3,  // the request is invalid for this policy: bad policy, unknown gateway,
                      // segment or profile, a segment this gateway does not border
  kExitBusy = 4,      // another process holds the state directory, or another agent owns the
                      // gateway (its daemon runs, or its owner mark is on the table)
  kExitDrift = 5,     // status: the kernel does not hold what was applied (drift, our table
                      // missing, or a table of ours where none should be)
  kExitOverdue = 6,   // status: an isolation's deadline has passed and nothing lifted it
};

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
