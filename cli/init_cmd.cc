#include "cli/init_cmd.h"

#include <openssl/rand.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/ca_cmd.h"
#include "cli/keys_cmd.h"
#include "cli/options.h"
#include "cli/shadanctl.h"
#include "cli/trust_cmd.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/sha256.h"
#include "common/tls.h"
#include "common/trust.h"

namespace shadan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The files written so far, removed in reverse order unless commit() was called.
class Written {
 public:
  ~Written() {
    if (committed_) return;
    std::error_code ignored;
    for (auto it = paths_.rbegin(); it != paths_.rend(); ++it) fs::remove_all(*it, ignored);
  }
  void add(const fs::path& path) { paths_.push_back(path); }
  void commit() { committed_ = true; }
  const std::vector<fs::path>& paths() const { return paths_; }

 private:
  std::vector<fs::path> paths_;
  bool committed_ = false;
};

// One step: a shadanctl command run in-process, its output captured; its stdout on success.
Result<std::string> step(const std::function<int(std::ostream&, std::ostream&)>& command,
                         const std::string& what) {
  std::ostringstream out;
  std::ostringstream err;
  if (command(out, err) != kExitOk) {
    std::string message = err.str();
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return makeError(ErrorCode::kInvalidArgument, what + ": " + message);
  }
  return out.str();
}

Status refuseExisting(const std::vector<fs::path>& paths) {
  std::error_code ec;
  for (const fs::path& path : paths) {
    if (fs::exists(path, ec)) {
      return makeError(ErrorCode::kInvalidArgument,
                       path.string() +
                           " already exists; init writes a new configuration and "
                           "never overwrites one (move it away first)");
    }
  }
  return okStatus();
}

Status makeDirectory(const fs::path& dir, fs::perms mode, Written& written) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return okStatus();
  if (!fs::create_directories(dir, ec) || ec) {
    return makeError(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  }
  written.add(dir);
  fs::permissions(dir, mode, ec);
  return okStatus();
}

Status copyFile(const fs::path& from, const fs::path& to, mode_t mode, Written& written) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, "cannot read " + from.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  SHADAN_RETURN_IF_ERROR(
      writeFileAtomically(to.string(), buffer.str(), mode, ExistingFile::kRefuse));
  written.add(to);
  return okStatus();
}

// The files the controller (user shadan) reads: handed to that user, still 0600 (the key
// loaders refuse a private key others could read), when the user exists.
std::string giveToController(const std::vector<fs::path>& files) {
  const passwd* shadan = ::getpwnam("shadan");
  if (shadan == nullptr) return "no user shadan here: the files stay root's (0600)";
  for (const fs::path& file : files) {
    if (::chown(file.c_str(), shadan->pw_uid, shadan->pw_gid) != 0) {
      return "could not hand " + file.string() + " to user shadan: they stay root's (0600)";
    }
  }
  return "owned by user shadan (0600)";
}

int fail(std::ostream& err, const Error& error) {
  err << "shadanctl: init: " << error.message << "; nothing was left behind\n";
  return kExitFailure;
}

int initController(const CommandOptions& o, std::ostream& out, std::ostream& err) {
  const auto usage = [&](const std::string& m) { return printUsageError(err, "init", m); };
  const auto policy_file = o.value("--policy");
  const auto name = o.value("--name");
  if (!policy_file) return usage("'init controller' needs --policy FILE");
  if (!name) return usage("'init controller' needs --name HOST (the controller's DNS name)");
  const fs::path dir = o.value("--dir").value_or("/etc/shadan");
  const std::string state_dir = o.value("--state-dir").value_or("/var/lib/shadan-controller");
  const std::string operator_name = o.value("--operator").value_or("admin");
  const std::vector<std::string> ips = o.all("--ip");
  const std::string listen = ips.empty() ? "0.0.0.0" : ips.front();

  auto policy = loadPolicyFile(*policy_file);
  if (!policy.ok()) return fail(err, policy.error().withContext("--policy"));
  if (Status fresh = refuseExisting({dir / "ca", dir / "ca.crt", dir / "controller.crt",
                                     dir / "controller.key", dir / "signing.key",
                                     dir / "signing.pub", dir / "trust.json", dir / "policy.json",
                                     dir / "controller.json", dir / "tokens"});
      !fresh.ok()) {
    return fail(err, fresh.error());
  }

  Written written;
  const auto run = [&]() -> Result<Json> {
    SHADAN_RETURN_IF_ERROR(makeDirectory(dir, fs::perms(0755), written));
    written.add(dir / "ca");
    SHADAN_RETURN_IF_ERROR(step(
        [&](std::ostream& s, std::ostream& e) {
          return runCaCommand({"ca", "init", "--dir", (dir / "ca").string()}, s, e);
        },
        "ca init"));
    std::vector<std::string> issue = {
        "ca",    "issue", "--dir", (dir / "ca").string(),        "--name", *name, "--server",
        "--dns", *name,   "--out", (dir / "controller").string()};
    for (const std::string& ip : ips) {
      issue.push_back("--ip");
      issue.push_back(ip);
    }
    written.add(dir / "controller.crt");
    written.add(dir / "controller.key");
    SHADAN_ASSIGN_OR_RETURN(
        const std::string issued,
        step([&](std::ostream& s, std::ostream& e) { return runCaCommand(issue, s, e); },
             "ca issue"));
    std::string pin = issued;
    while (!pin.empty() && pin.back() == '\n') pin.pop_back();
    pin = pin.substr(pin.rfind('\n') + 1);
    SHADAN_RETURN_IF_ERROR(copyFile(dir / "ca" / "ca.crt", dir / "ca.crt", 0644, written));
    written.add(dir / "signing.key");
    written.add(dir / "signing.pub");
    SHADAN_RETURN_IF_ERROR(step(
        [&](std::ostream& s, std::ostream& e) {
          return runKeygenCommand(
              {"keygen", "--out", (dir / "signing").string(), "--role", "controller"}, s, e);
        },
        "keygen"));
    written.add(dir / "trust.json");
    SHADAN_RETURN_IF_ERROR(step(
        [&](std::ostream& s, std::ostream& e) {
          return runTrustCommand(
              {"trust", "init", "--out", (dir / "trust.json").string(), "--pub",
               (dir / "signing.pub").string(), "--identity", "controller", "--role", "controller"},
              s, e, SystemClock());
        },
        "trust init"));
    SHADAN_RETURN_IF_ERROR(copyFile(*policy_file, dir / "policy.json", 0644, written));
    // The first operator's API token: 32 random bytes, hex; only its SHA-256 goes in the config.
    uint8_t bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
      return makeError(ErrorCode::kInternal, "no random bytes for the operator's token");
    }
    const std::string token = hexEncode(bytes);
    SHADAN_RETURN_IF_ERROR(makeDirectory(dir / "tokens", fs::perms(0700), written));
    const fs::path token_file = dir / "tokens" / (operator_name + ".token");
    SHADAN_RETURN_IF_ERROR(
        writeFileAtomically(token_file.string(), token + "\n", 0600, ExistingFile::kRefuse));
    written.add(token_file);
    const Json config = {
        {"api", {{"listen", listen + ":8443"}}},
        {"agent_hub", {{"listen", listen + ":8444"}}},
        {"tls",
         {{"ca", (dir / "ca.crt").string()},
          {"cert", (dir / "controller.crt").string()},
          {"key", (dir / "controller.key").string()}}},
        {"policy", (dir / "policy.json").string()},
        {"trust", (dir / "trust.json").string()},
        {"signing_key", (dir / "signing.key").string()},
        {"state_dir", state_dir},
        {"tokens",
         {{{"name", operator_name}, {"role", "operator"}, {"sha256", sha256Hex(token)}}}}};
    SHADAN_RETURN_IF_ERROR(writeFileAtomically((dir / "controller.json").string(),
                                               config.dump(2) + "\n", 0600, ExistingFile::kRefuse));
    written.add(dir / "controller.json");
    const std::string access =
        giveToController({dir / "controller.json", dir / "controller.key", dir / "signing.key"});
    return Json{{"ok", true},
                {"command", "init controller"},
                {"dir", dir.string()},
                {"config", (dir / "controller.json").string()},
                {"controller_pin", pin},
                {"operator_token_file", token_file.string()},
                {"controller_files", access}};
  };
  auto done = run();
  if (!done.ok()) return fail(err, done.error());
  written.commit();
  if (o.has("--json")) {
    out << done->dump(2) << "\n";
    return kExitOk;
  }
  out << "wrote a starting configuration in " << dir.string() << ":\n";
  for (const fs::path& path : written.paths()) out << "  " << path.string() << "\n";
  out << "controller files: " << (*done)["controller_files"].get<std::string>() << "\n"
      << "agents pin this controller with " << (*done)["controller_pin"].get<std::string>()
      << "\n\n"
      << "next:\n"
      << "  shadan-controller check-config --config " << (dir / "controller.json").string() << "\n"
      << "  systemctl enable --now shadan-controller\n"
      << "  for each operator: shadanctl keygen --out me --role operator (on their machine), "
         "then\n"
      << "    shadanctl trust add " << (dir / "trust.json").string()
      << " --pub me.pub --identity op:NAME --role operator\n"
      << "  for each gateway GW: shadanctl ca issue --dir " << (dir / "ca").string()
      << " --name GW --client --tls-dir GW-tls\n"
      << "    and on the gateway: shadanctl init agent --gateway GW --tls-from GW-tls ...\n"
      << "  the operator token " << (*done)["operator_token_file"].get<std::string>()
      << " goes to the operator's machine (shadanctl --token-file)\n";
  return kExitOk;
}

int initAgent(const CommandOptions& o, std::ostream& out, std::ostream& err) {
  const auto usage = [&](const std::string& m) { return printUsageError(err, "init", m); };
  for (const char* required :
       {"--gateway", "--controller", "--pin", "--policy", "--trust", "--tls-from"}) {
    if (!o.value(required)) {
      return usage(std::string("'init agent' needs ") + required + " (see shadanctl init --help)");
    }
  }
  const std::string gateway = *o.value("--gateway");
  const std::string controller = *o.value("--controller");
  const std::string pin = *o.value("--pin");
  const fs::path tls_from = *o.value("--tls-from");
  const fs::path dir = o.value("--dir").value_or("/etc/shadan");
  if (pin.size() != 64 || pin.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return usage("--pin must be 64 lower-case hex characters (shadanctl ca pin)");
  }
  if (controller.find(':') == std::string::npos || controller.find(' ') != std::string::npos) {
    return usage("--controller must be HOST:PORT");
  }
  auto policy = loadPolicyFile(*o.value("--policy"));
  if (!policy.ok()) return fail(err, policy.error().withContext("--policy"));
  if (!policy->policy.findGateway(gateway)) {
    return fail(err, makeError(ErrorCode::kNotFound,
                               "gateway \"" + gateway + "\" is not in " + *o.value("--policy")));
  }
  auto trust = loadTrustFile(*o.value("--trust"));
  if (!trust.ok()) return fail(err, trust.error().withContext("--trust"));
  auto tls = makeClientTlsContext((tls_from / "ca.crt").string(), (tls_from / "agent.crt").string(),
                                  (tls_from / "agent.key").string(), pin);
  if (!tls.ok()) return fail(err, tls.error().withContext("--tls-from"));
  auto name = certificateCommonName((tls_from / "agent.crt").string());
  if (!name.ok() || *name != gateway) {
    return fail(err, makeError(ErrorCode::kInvalidArgument, (tls_from / "agent.crt").string() +
                                                                " is not gateway " + gateway +
                                                                "'s certificate"));
  }
  if (Status fresh = refuseExisting({dir / "policy.json", dir / "trust.json", dir / "tls"});
      !fresh.ok()) {
    return fail(err, fresh.error());
  }
  Written written;
  const auto run = [&]() -> Status {
    SHADAN_RETURN_IF_ERROR(makeDirectory(dir, fs::perms(0755), written));
    SHADAN_RETURN_IF_ERROR(copyFile(*o.value("--policy"), dir / "policy.json", 0644, written));
    SHADAN_RETURN_IF_ERROR(copyFile(*o.value("--trust"), dir / "trust.json", 0644, written));
    SHADAN_RETURN_IF_ERROR(makeDirectory(dir / "tls", fs::perms(0700), written));
    SHADAN_RETURN_IF_ERROR(copyFile(tls_from / "ca.crt", dir / "tls" / "ca.crt", 0644, written));
    SHADAN_RETURN_IF_ERROR(
        copyFile(tls_from / "agent.crt", dir / "tls" / "agent.crt", 0644, written));
    SHADAN_RETURN_IF_ERROR(
        copyFile(tls_from / "agent.key", dir / "tls" / "agent.key", 0600, written));
    // agent.env is the package's conffile, there to be edited: replaced in one rename.
    const std::string env =
        "# /etc/shadan/agent.env: read by shadan-agent.service; written by "
        "shadanctl init agent.\nSHADAN_GATEWAY=" +
        gateway + "\nSHADAN_AGENT_OPTS=--controller " + controller + " --tls-dir " +
        (dir / "tls").string() + " --controller-pin " + pin + "\n";
    return writeFileAtomically((dir / "agent.env").string(), env, 0644, ExistingFile::kReplace);
  };
  if (Status done = run(); !done.ok()) return fail(err, done.error());
  written.commit();
  if (o.has("--json")) {
    out << Json{{"ok", true},
                {"command", "init agent"},
                {"dir", dir.string()},
                {"gateway", gateway},
                {"agent_env", (dir / "agent.env").string()}}
               .dump(2)
        << "\n";
    return kExitOk;
  }
  out << "wrote the configuration of gateway " << gateway << " in " << dir.string() << ":\n";
  for (const fs::path& path : written.paths()) out << "  " << path.string() << "\n";
  out << "  " << (dir / "agent.env").string() << "\n\n"
      << "next:\n"
      << "  shadan-agent init --gateway " << gateway
      << " --state-dir /var/lib/shadan   (the agent's key)\n"
      << "  on the controller: shadanctl trust add trust.json --pub agent.pub --identity agent:"
      << gateway << " --role agent, then the new trust.json to every gateway\n"
      << "  shadan-agent check-config --controller " << controller << " --tls-dir "
      << (dir / "tls").string() << " --controller-pin " << pin << "\n"
      << "  systemctl enable --now shadan-agent\n"
      << "  on the controller: shadanctl agents approve " << gateway << "\n";
  return kExitOk;
}

}  // namespace

const char* initUsage() {
  return R"(usage: shadanctl init controller --policy FILE --name HOST [--ip ADDR]... [--dir DIR]
                                  [--state-dir DIR] [--operator NAME] [--json]
       shadanctl init agent --gateway ID --controller HOST:PORT --pin HEX --policy FILE
                             --trust FILE --tls-from DIR [--dir DIR] [--json]

  init controller: a working starting configuration of the controller in DIR (default
      /etc/shadan): the agent channel's CA (DIR/ca, 0700), the controller's TLS certificate
      for HOST (and each --ip), its signing key, a trust file naming it, a copy of the policy,
      a first operator's API token (DIR/tokens/NAME.token, 0600; NAME default admin) and
      DIR/controller.json listening on the first --ip (default 0.0.0.0) ports 8443 (API) and
      8444 (agent hub), state in --state-dir (default /var/lib/shadan-controller). Prints the
      pin agents configure and the next steps.
  init agent: a gateway's configuration in DIR (default /etc/shadan): copies of the policy
      and trust file, the channel's TLS files from --tls-from (what shadanctl ca issue
      --client --tls-dir wrote on the controller host; the certificate must be ID's) in
      DIR/tls (0700), and DIR/agent.env with the gateway id and the channel's options.

  Refuses when a file it would write exists (agent.env excepted: the package's file, there
  to be filled in); a step that fails removes what was written. Exit 0 done, 1 failed,
  2 usage.
)";
}

int runInitCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  OptionSpec spec;
  spec.command = "init";
  spec.with_value = {"--policy",  "--name",       "--ip",  "--dir",   "--state-dir", "--operator",
                     "--gateway", "--controller", "--pin", "--trust", "--tls-from"};
  spec.flags = {"--json"};
  spec.repeatable = {"--ip"};
  spec.max_positionals = 1;
  auto options = parseCommandOptions(args, 1, spec);
  if (!options.ok()) return printUsageError(err, "init", options.error().message);
  if (options->help) {
    out << initUsage();
    return kExitOk;
  }
  const std::string what = options->positionals.empty() ? "" : options->positionals[0];
  if (what == "controller") return initController(*options, out, err);
  if (what == "agent") return initAgent(*options, out, err);
  return printUsageError(err, "init", "'init' needs controller or agent");
}

}  // namespace shadan
