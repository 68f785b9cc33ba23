#pragma once

// How a kernel test binary (label `integration`, one ctest test per binary) reports to ctest.
//
// Such a binary skips its kernel cases when it cannot reach the kernel (not root). gtest then
// exits 0, and ctest would print "Passed" for a suite that tested nothing. The contract here:
//
//   - a failed case fails the binary (gtest's own exit code), whatever else happened;
//   - not root, and some case skipped: exit kSkipExitCode, which every kernel suite declares as
//     its SKIP_RETURN_CODE (tests/CMakeLists.txt), so ctest shows "Skipped";
//   - root, and some case skipped: exit 1. As root the kernel tests can run, so a skip means they
//     silently did not (e.g. unshare refused in a container): `make test` must fail, not pass.

namespace shadan::test_support {

inline constexpr int kSkipExitCode = 77;

// Maps RUN_ALL_TESTS()'s result to the binary's exit code, per the contract above, and says on
// stderr why when it is not gtest's own.
int kernelSuiteExitCode(int run_all_tests_result);

}  // namespace shadan::test_support
