#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "tests/support/kernel_suite.h"
#include "tests/support/private_netns.h"

namespace shadan::test_support {
namespace {

bool g_private_netns = false;

}  // namespace

bool inPrivateNetns() { return g_private_netns; }

CommandResult runCommand(const std::string& command) {
  struct PipeCloser {
    void operator()(FILE* pipe) const { (void)pclose(pipe); }
  };
  CommandResult result;
  FILE* raw = popen(("{ " + command + "; } 2>&1").c_str(), "r");
  if (raw == nullptr) return result;
  std::unique_ptr<FILE, PipeCloser> pipe(raw);
  char chunk[4096];
  size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe.get())) > 0) result.output.append(chunk, n);
  const int status = pclose(pipe.release());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace shadan::test_support

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before anything opens a netlink socket: every kernel object these tests create lives in
  // this namespace and vanishes with the process. Not root: the kernel cases skip and the binary
  // reports "Skipped" (kernel_suite.h). Root but no namespace: the kernel cases cannot run where
  // they must, which fails the binary before any case runs.
  if (geteuid() == 0) {
    if (unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr,
                   "unshare(CLONE_NEWNET) failed as root: %s; the kernel tests cannot run\n",
                   std::strerror(errno));
      return 1;
    }
    shadan::test_support::g_private_netns = true;
  }
  return shadan::test_support::kernelSuiteExitCode(RUN_ALL_TESTS());
}
