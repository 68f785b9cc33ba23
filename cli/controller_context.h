#pragma once

// What every controller subcommand (isolate_cmd, status_cmd, approval_cmd, agents_cmd) shares:
// its streams and environment, the three ways it ends badly (usage, transport failure, refusal)
// with their exit codes, the connection settings, and the helpers that turn answers into text.
// Internal to shadanctl; the public entry point is cli/controller_cmd.h.

#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/api_client.h"
#include "cli/controller_cmd.h"
#include "cli/options.h"
#include "common/result.h"

namespace shadan {

class ControllerContext {
 public:
  // REQUIRES: `out`, `err` and `env` outlive the context.
  // `command` names the command in usage errors ("see 'shadanctl isolate --help'").
  ControllerContext(std::ostream& out, std::ostream& err, const ControllerCmdEnv& env,
                    std::string command, bool json)
      : out_(out), err_(err), env_(env), command_(std::move(command)), json_(json) {}

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  const ControllerCmdEnv& env() const { return env_; }
  bool json() const { return json_; }  // --json: print the controller's answer as JSON

  // Prints the two-line usage error (printUsageError); returns kExitUsage (nothing was sent).
  int usage(const std::string& message);
  // The request did not get an answer: kExitUnreachable when the controller could not be
  // reached, kExitUsage when it was refused before sending (bad CA file), else kExitFailure.
  int transportFailure(const Error& error);
  // The controller answered with an error status; `what` names the request. kExitFailure.
  int refused(const ApiResponse& response, const std::string& what);

  // Connection settings from the options, SHADAN_TOKEN and the config file, then a transport.
  // Called only after a command has checked its own arguments, so usage errors come out before
  // any connection setting is needed. Errors are usage errors (exit 2): nothing was sent yet.
  Result<std::unique_ptr<ApiTransport>> transport(const CommandOptions& options);

 private:
  Result<ApiClientOptions> connection(const CommandOptions& options);

  std::ostream& out_;
  std::ostream& err_;
  const ControllerCmdEnv& env_;
  const std::string command_;
  const bool json_;
};

// "--option must be a whole number from MIN to MAX, not "TEXT"" unless min <= value <= max.
Result<uint64_t> parseCount(const std::string& option, const std::string& value, uint64_t min,
                            uint64_t max);

// A JSON member as display text: "-" when missing or null, strings unquoted, others dumped.
std::string jsonText(const nlohmann::json& object, const char* key);
// On a cluster, " (on NAME)": the controller a gateway's or agent's session is on
// ("connected_to"); "" when the answer names none (one controller, or not connected).
std::string connectedOn(const nlohmann::json& object);
// The first of `keys` that jsonText shows as something other than "-".
std::string firstJsonText(const nlohmann::json& object, std::initializer_list<const char*> keys);

// Path segments built from user input or server answers: a conservative alphabet so nothing
// can change the path (no "/", "..", "?", "%").
bool isSafePathSegment(const std::string& id);

// Rows of cells in columns two spaces apart, each as wide as its widest cell.
void printTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

}  // namespace shadan
