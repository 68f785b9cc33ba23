#pragma once

// A CommandRunner for unit tests: records every argv (and stdin), simulates `ip netns
// add/del/list` so teardown can be checked, and fails the commands a test picks.

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "cli/lab/command_runner.h"

namespace shadan {

class FakeCommandRunner : public CommandRunner {
 public:
  struct Call {
    std::vector<std::string> argv;
    std::string stdin_data;
  };

  using CommandRunner::run;
  Result<CommandResult> run(const std::vector<std::string>& argv,
                            const std::string& stdin_data) override {
    calls.push_back({argv, stdin_data});
    if (fail_when && fail_when(argv)) {
      return CommandResult{2, "", "RTNETLINK answers: Operation not supported\n"};
    }
    if (argv.size() == 3 && argv[0] == "ip" && argv[1] == "netns" && argv[2] == "list") {
      CommandResult listing;
      int id = 0;
      // The real tool prints "name (id: N)" for namespaces with an id.
      for (const std::string& ns : namespaces) {
        listing.out += ns + " (id: " + std::to_string(id++) + ")\n";
      }
      return listing;
    }
    if (argv.size() == 4 && argv[0] == "ip" && argv[1] == "netns" && argv[2] == "add") {
      if (!namespaces.insert(argv[3]).second) {
        return CommandResult{1, "", "Cannot create namespace file: File exists\n"};
      }
    }
    if (argv.size() == 4 && argv[0] == "ip" && argv[1] == "netns" && argv[2] == "del") {
      if (namespaces.erase(argv[3]) == 0) {
        return CommandResult{1, "", "Cannot remove namespace file: No such file or directory\n"};
      }
    }
    return CommandResult{};
  }

  // Calls whose argv starts with `prefix`.
  std::vector<Call> callsStartingWith(const std::vector<std::string>& prefix) const {
    std::vector<Call> matching;
    for (const Call& call : calls) {
      if (call.argv.size() >= prefix.size() &&
          std::equal(prefix.begin(), prefix.end(), call.argv.begin())) {
        matching.push_back(call);
      }
    }
    return matching;
  }

  bool ran(const std::vector<std::string>& argv) const {
    for (const Call& call : calls) {
      if (call.argv == argv) return true;
    }
    return false;
  }

  std::vector<Call> calls;
  std::set<std::string> namespaces;  // the simulated /run/netns
  std::function<bool(const std::vector<std::string>&)> fail_when;
};

}  // namespace shadan
