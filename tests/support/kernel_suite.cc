#include "tests/support/kernel_suite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

namespace shadan::test_support {

int kernelSuiteExitCode(int run_all_tests_result) {
  if (run_all_tests_result != 0) return run_all_tests_result;
  const int skipped = ::testing::UnitTest::GetInstance()->skipped_test_count();
  if (skipped == 0) return 0;
  if (::geteuid() == 0) {
    std::fprintf(stderr,
                 "kernel suite: running as root, yet %d test(s) skipped: the kernel tests did not "
                 "run; that is a failure\n",
                 skipped);
    return 1;
  }
  std::fprintf(stderr, "kernel suite: not root, %d test(s) skipped: exit %d (ctest: Skipped)\n",
               skipped, kSkipExitCode);
  return kSkipExitCode;
}

}  // namespace shadan::test_support
