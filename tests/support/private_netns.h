#pragma once

// For kernel tests that run the whole process in a network namespace of its own: link
// private_netns_main.cc (which provides main()) and ask inPrivateNetns() before touching the
// kernel. Every table, route or conntrack entry such a test creates vanishes with the process,
// and the host's are never seen.

#include <string>

namespace shadan::test_support {

// True once main() has moved the process into a fresh network namespace (root only).
bool inPrivateNetns();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh; the child inherits the test's (private) network namespace.
CommandResult runCommand(const std::string& command);

}  // namespace shadan::test_support
