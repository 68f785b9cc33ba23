#pragma once

// The command line of shadan-agent as data: the options every command reads, their parser and
// the usage text. Internal to shadan-agent; the public entry point is agents/agent_cli.h.

#include <optional>
#include <string>
#include <vector>

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
  bool all = false;
  bool drill = false;
  bool ttl_without_daemon = false;
  bool yes = false;  // --yes: isolating a protected segment needs no interactive confirmation  //
                     // --ttl with no daemon: stored, honoured later
  bool json = false;
  bool help = false;
  bool version = false;
};

// Parses the command line. Options may appear anywhere after the command, as `--opt value` or
// `--opt=value`. Errors (kInvalidArgument) name the offending argument; whether the options fit
// the command is the command's business.
Result<AgentCliOptions> parseAgentCliArgs(const std::vector<std::string>& args);

// The --help text (also printed, on stderr, when no command is given).
extern const char* const kAgentCliUsage;

}  // namespace shadan::agent
