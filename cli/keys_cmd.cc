#include "cli/keys_cmd.h"

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/ed25519.h"

namespace shadan {

const char* keygenUsage() {
  return R"(usage: shadanctl keygen --out PREFIX [--role NAME]

  Generates an Ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub (public).
  Refuses to overwrite either file. Prints the keyid (hex SHA-256 of the public key).
  --role NAME: a label stored in both files (operator, controller, agent, breakglass, drill,
  ...); authority comes from the trust file, not from this label. A drill key (--role drill)
  belongs in a lab trust file only: a production trust file refuses it.
)";
}

int runKeygenCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto usage = [&](const std::string& message) { return printUsageError(err, "keygen", message); };
  OptionSpec spec;
  spec.command = "keygen";
  spec.with_value = {"--out", "--role"};
  auto options = parseCommandOptions(args, 1, spec);
  if (!options.ok()) return usage(options.error().message);
  if (options->help) {
    out << keygenUsage();
    return kExitOk;
  }
  const std::optional<std::string> prefix = options->value("--out");
  const std::optional<std::string> role = options->value("--role");
  if (!prefix || prefix->empty()) return usage("'keygen' needs --out PREFIX");
  if (role) {
    if (Status valid = validateKeyRole(*role); !valid.ok()) {
      return usage("--role: " + valid.error().message);
    }
  }
  const std::string key_path = *prefix + ".key";
  const std::string pub_path = *prefix + ".pub";
  std::error_code error;
  for (const std::string& path : {key_path, pub_path}) {
    if (std::filesystem::exists(path, error)) {
      err << "shadanctl: " << path << " already exists; refusing to overwrite it\n";
      return kExitFailure;
    }
  }
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  if (Status written = writePrivateKeyFile(key_path, key, role); !written.ok()) {
    err << "shadanctl: " << written.error().message << "\n";
    return kExitFailure;
  }
  if (Status written = writePublicKeyFile(pub_path, key.publicKey(), role); !written.ok()) {
    // Never leave a private key without its public half: the pair is the unit.
    ::unlink(key_path.c_str());
    err << "shadanctl: " << written.error().message << "\n";
    return kExitFailure;
  }
  out << key.keyId() << "\n";
  err << "wrote " << key_path << " (private, 0600) and " << pub_path << "\n";
  return kExitOk;
}

}  // namespace shadan
