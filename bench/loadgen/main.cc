// shadan-loadgen: a fleet of simulated gateways against a real controller (bench/loadgen/).
#include <iostream>
#include <string>
#include <vector>

#include "bench/loadgen/loadgen_cli.h"

int main(int argc, char** argv) {
  return shadan::loadgen::runLoadgen(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                     std::cerr);
}
