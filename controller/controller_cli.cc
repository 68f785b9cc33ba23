#include "controller/controller_cli.h"

#include <istream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "common/sha256.h"
#include "controller/config_check.h"

namespace shadan::controller {
namespace {

constexpr const char* kUsage = R"(usage: shadan-controller COMMAND [options]
       shadan-controller COMMAND --help     that command's options (also: help COMMAND)

commands:
  run --config FILE    run the controller (API + agent hub)
  check-config --config FILE [--json]
                       load and cross-check the config and every file it names
                       without starting (no store opened, no port bound)
  hash-token           print the SHA-256 of a token read from stdin
                       (for the "tokens" list of the config file)

options:
  -h, --help     show this help
  --version      print the version
)";

constexpr const char* kRunUsage = R"(usage: shadan-controller run --config FILE

  Runs the controller: the HTTPS API and the agent hub on one thread, until SIGTERM or SIGINT
  (then the audit log gets a final checkpoint).
  --config FILE   the controller's configuration (strict JSON; docs/controller.md)
  A bad config, or a policy, trust, key or TLS file it names that does not load, stops startup
  with one message naming the file, exit 1.
)";

constexpr const char* kCheckConfigUsage =
    R"(usage: shadan-controller check-config --config FILE [--json]

  Loads the configuration as run would and checks everything it names, without starting: the
  policy, the response rules and detector tokens against it, the trust file (not expired), the
  signing key (a controller key in the trust file), the TLS CA, certificate, key and revocation
  list, and the state directory (writable, or absent with a parent to make it in). Opens no
  store, binds no port, writes nothing: safe while the controller runs.
  --config FILE   the controller's configuration (docs/controller.md)
  --json          what was checked, as one JSON object
  Exit 0 when run would start on it; 1 with one message naming the file and what is wrong.
)";

constexpr const char* kHashTokenUsage = R"(usage: shadan-controller hash-token < TOKEN_FILE

  Reads one API token from stdin and prints its SHA-256 (hex) for the "tokens" list of the
  config file. One trailing newline is not part of the token. Takes no options.
  Exit 1 when stdin holds no token.
)";

bool isHelpWord(const std::string& word) { return word == "-h" || word == "--help"; }

int usageError(std::ostream& err, const std::string& command, const std::string& message) {
  err << "shadan-controller: " << message << "\n"
      << "see 'shadan-controller " << (command.empty() ? "" : command + " ") << "--help'\n";
  return kCliExitUsage;
}

std::string commandList() {
  std::string out;
  for (const std::string& name : controllerCliCommands()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// A word as the operator typed it, in quotes so an empty one shows; control characters are
// escaped so the error stays one line.
std::string quoted(const std::string& word) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (const char c : word) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += std::string("\\x") + kHex[byte >> 4] + kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out + "'";
}

int hashToken(std::istream& in, std::ostream& out, std::ostream& err) {
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // One trailing newline (echo, a here-string) is not part of the token.
  if (!token.empty() && token.back() == '\n') token.pop_back();
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty()) {
    err << "shadan-controller: hash-token: no token on stdin\n";
    return kCliExitFailure;
  }
  out << sha256Hex(token) << "\n";
  return kCliExitOk;
}

// The words of run and check-config: --config FILE | --config=FILE, --json where `json` is
// given, -h | --help (help wins over later mistakes: the usage is printed, exit 0).
std::optional<int> parseConfigWords(const std::vector<std::string>& args, const char* command,
                                    const char* usage, bool* json, std::ostream& out,
                                    std::ostream& err, std::optional<std::string>& config) {
  const std::string name = command;
  for (size_t i = 1; i < args.size(); ++i) {
    if (isHelpWord(args[i])) {
      out << usage;
      return kCliExitOk;
    }
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& word = args[i];
    std::optional<std::string> value;
    if (json != nullptr && word == "--json") {
      *json = true;
      continue;
    }
    if (word == "--config") {
      if (i + 1 >= args.size()) return usageError(err, name, "option --config needs a value");
      value = args[++i];
    } else if (word.rfind("--config=", 0) == 0) {
      value = word.substr(9);
    } else if (!word.empty() && word[0] == '-') {
      return usageError(err, name, "unknown option " + quoted(word) + " for '" + name + "'");
    } else {
      return usageError(err, name, "'" + name + "' takes no argument " + quoted(word));
    }
    if (config) return usageError(err, name, "option --config given twice");
    if (value->empty()) return usageError(err, name, "--config must not be empty");
    config = value;
  }
  if (!config) return usageError(err, name, "'" + name + "' needs --config FILE");
  return std::nullopt;
}

int runCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
               const ControllerCliEnv& env) {
  std::optional<std::string> config;
  if (auto done = parseConfigWords(args, "run", kRunUsage, nullptr, out, err, config)) {
    return *done;
  }
  return env.run(*config);
}

int checkConfigCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                       const ControllerCliEnv& env) {
  std::optional<std::string> config;
  bool json = false;
  if (auto done =
          parseConfigWords(args, "check-config", kCheckConfigUsage, &json, out, err, config)) {
    return *done;
  }
  SystemClock system_clock;
  const Clock& clock = env.clock != nullptr ? *env.clock : system_clock;
  auto checked = checkControllerConfig(*config, clock);
  if (!checked.ok()) {
    err << "shadan-controller: check-config: " << checked.error().message << "\n";
    if (json) {
      out << nlohmann::json{{"ok", false},
                            {"command", "check-config"},
                            {"config", *config},
                            {"error", checked.error().message}}
                 .dump(2)
          << "\n";
    }
    return kCliExitFailure;
  }
  if (json) {
    out << checked->dump(2) << "\n";
    return kCliExitOk;
  }
  const nlohmann::json& c = *checked;
  out << *config << ": ok\n"
      << "  policy       " << c["policy"]["file"].get<std::string>() << ": \""
      << c["policy"]["name"].get<std::string>() << "\", " << c["policy"]["segments"].get<size_t>()
      << " segments, " << c["policy"]["gateways"].get<size_t>() << " gateways\n"
      << "  trust        " << c["trust"]["file"].get<std::string>() << ": version "
      << c["trust"]["version"].get<int64_t>() << ", " << c["trust"]["keys"].get<size_t>()
      << " keys\n"
      << "  signing key  " << c["signing_key"]["file"].get<std::string>() << ": "
      << c["signing_key"]["keyid"].get<std::string>() << " (a controller key in the trust file)\n"
      << "  tls          " << c["tls"]["cert"].get<std::string>() << " (CA "
      << c["tls"]["ca"].get<std::string>() << ")\n"
      << "  listeners    api " << c["api_listen"].get<std::string>() << ", agent hub "
      << c["hub_listen"].get<std::string>() << ", metrics "
      << (c["metrics_listen"].is_null() ? std::string("on the api only")
                                        : c["metrics_listen"].get<std::string>())
      << "\n"
      << "  tokens      ";
  if (c["tokens"].empty()) out << " none";
  for (const auto& [role, count] : c["tokens"].items()) out << " " << role << " " << count;
  out << "\n  state dir    " << c["state_dir"]["path"].get<std::string>()
      << (c["state_dir"]["state"] == "exists" ? " (writable)" : " (made at the first start)")
      << "\n";
  return kCliExitOk;
}

int hashTokenCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const ControllerCliEnv& env) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (isHelpWord(args[i])) {
      out << kHashTokenUsage;
      return kCliExitOk;
    }
  }
  if (args.size() > 1) {
    const std::string& word = args[1];
    // A token on the command line would be visible to every user in ps.
    return usageError(err, "hash-token",
                      (!word.empty() && word[0] == '-'
                           ? "unknown option " + quoted(word) + " for 'hash-token'"
                           : "'hash-token' takes no argument (the token is read from stdin)"));
  }
  return hashToken(*env.in, out, err);
}

}  // namespace

const std::vector<std::string>& controllerCliCommands() {
  static const std::vector<std::string> kCommands = {"run", "check-config", "hash-token"};
  return kCommands;
}

int runControllerCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const ControllerCliEnv& env) {
  if (args.empty()) {
    return usageError(err, "", "no command (commands: " + commandList() + ")");
  }
  const std::string& command = args[0];
  if (isHelpWord(command) || (command == "help" && args.size() == 1)) {
    out << kUsage;
    return kCliExitOk;
  }
  if (command == "help") {
    std::vector<std::string> asked(args.begin() + 1, args.end());
    asked.push_back("--help");
    return runControllerCli(asked, out, err, env);
  }
  if (command == "--version") {
    out << "shadan-controller " << SHADAN_VERSION << "\n";
    return kCliExitOk;
  }
  if (command == "run") return runCommand(args, out, err, env);
  if (command == "check-config") return checkConfigCommand(args, out, err, env);
  if (command == "hash-token") return hashTokenCommand(args, out, err, env);
  return usageError(err, "",
                    "unknown command " + quoted(command) + " (commands: " + commandList() + ")");
}

}  // namespace shadan::controller
