// shadanctl: flags -> command -> exit code. Everything else lives in cli/shadanctl.cc.

#include <iostream>
#include <string>
#include <vector>

#include "cli/lab/command_runner.h"
#include "cli/shadanctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  shadan::ProcessCommandRunner runner;
  return shadan::runShadanctl(args, std::cout, std::cerr, runner);
}
