// main() of a kernel test binary that manages its own namespaces (the lab tests): gtest, then
// the exit-code contract of tests/support/kernel_suite.h.

#include <gtest/gtest.h>

#include "tests/support/kernel_suite.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return shadan::test_support::kernelSuiteExitCode(RUN_ALL_TESTS());
}
