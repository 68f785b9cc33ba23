#pragma once

// The command line of shadan-agent as data: the options every command reads, their parser and
// the help texts (the whole tool's and each command's). Internal to shadan-agent; the public
// entry point is agents/agent_cli.h.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/result.h"

namespace shadan::agent {

struct AgentCliOptions {
  std::string command;
  std::vector<std::string> positional;
  std::optional<std::string> profile;
  std::optional<std::string> policy;
  std::optional<std::string> gateway;
  std::optional<std::string> state_dir;
  std::optional<std::string> log_level;
  std::optional<std::string> ttl;
  std::optional<std::string> reason;  // isolate, restore: why (audited)
  std::optional<std::string> trust;
  std::optional<std::string> controller;
  std::optional<std::string> tls_dir;
  std::optional<std::string> controller_pin;
  std::optional<std::string> controller_grace;
  std::optional<std::string> audit_export;
  std::optional<std::string> metrics_listen;
  std::optional<std::string> host;  // isolate, restore: --host ADDR[,ADDR...] (the host rung)
  bool uplink = false;              // isolate, restore: the uplink rung
  bool island = false;              // isolate, restore: the island rung
  bool link_down = false;           // isolate --uplink: also set the uplink links down
  bool all = false;
  bool drill = false;
  bool ttl_without_daemon = false;
  bool yes = false;  // --yes: isolating a protected segment needs no interactive confirmation
  bool json = false;
  bool help = false;
  bool version = false;
};

// Parses the command line. Options may appear anywhere after the command, as `--opt value` or
// `--opt=value`. Errors (kInvalidArgument) name the offending argument; whether the options fit
// the command is the command's business.
Result<AgentCliOptions> parseAgentCliArgs(const std::vector<std::string>& args);

// The rung an isolate or restore names: exactly one of SEGMENT, --host, --uplink, --island (or,
// for restore, --all, which leaves everything empty). --link-down only with isolate --uplink.
// A usage error (kInvalidArgument) names what does not fit.
struct RungOptions {
  std::optional<IsolationScope> scope;  // nullopt: restore --all
  std::optional<std::string> segment;
  std::vector<IpPrefix> hosts;
  bool link_down = false;
};
Result<RungOptions> rungOf(const AgentCliOptions& options);

// The command named by `args` as the parser would find it (the first argument that is neither
// an option nor an option's value), or "" when there is none. For messages about command lines
// the parser refused.
std::string commandNameIn(const std::vector<std::string>& args);

// The options `options` carries, by name ("--gateway", "--json"), in alphabetical order: for
// commands that refuse options that are not theirs.
std::vector<std::string> givenOptionNames(const AgentCliOptions& options);

// The text of `shadan-agent --help`.
extern const char* const kAgentCliUsage;

// The commands, in help order: "run, isolate, …, policy" (for "unknown command" messages).
std::string agentCommandNames();

// The text of `shadan-agent COMMAND --help` for `options.command` (with `policy`, the
// subcommand in positional[0] picks check's or show's; none or another: both). nullopt when
// there is no such command.
std::optional<std::string> agentCommandUsage(const AgentCliOptions& options);

// What every usage error prints on stderr: ONE line naming the mistake, then where to read
// more: "(see shadan-agent COMMAND --help)" for a known `command`, else "(see shadan-agent
// --help)". Ends with a newline.
std::string usageErrorText(const std::string& command, const std::string& message);

}  // namespace shadan::agent
