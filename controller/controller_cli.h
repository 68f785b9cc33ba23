#pragma once

// The shadan-controller command line, apart from main() so tests drive it with string streams
// and a stand-in for the daemon:
//
//   shadan-controller run --config FILE    run the controller (ControllerCliEnv::run)
//   shadan-controller check-config --config FILE [--json]
//                                          validate without starting (controller/config_check.h)
//   shadan-controller hash-token           the SHA-256 of a token read from stdin
//   shadan-controller --help | --version
//   shadan-controller COMMAND --help       that command's usage (also: help COMMAND)
//
// Exit codes: 0 done, 1 failed (run: a bad config or file stops startup; check-config: the
// same, reported; hash-token: no token),
// 2 usage. A usage error is two lines on stderr: "shadan-controller: WHAT IS WRONG" and
// "see 'shadan-controller COMMAND --help'"; an unknown command names the valid ones.

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/clock.h"

namespace shadan::controller {

inline constexpr int kCliExitOk = 0;
inline constexpr int kCliExitFailure = 1;
inline constexpr int kCliExitUsage = 2;

struct ControllerCliEnv {
  std::istream* in = nullptr;  // hash-token reads the token here
  // Runs the controller with the config file at the path until it stops; returns the exit code.
  std::function<int(const std::string& config_path)> run;
  // check-config's clock (trust expiry); null: the system clock.
  const Clock* clock = nullptr;
};

// `args` is argv without the program name. REQUIRES: env.in and env.run are set.
int runControllerCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const ControllerCliEnv& env);

// The command names, in the order --help lists them.
const std::vector<std::string>& controllerCliCommands();

}  // namespace shadan::controller
