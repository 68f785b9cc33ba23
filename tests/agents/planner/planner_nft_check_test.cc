// Feeds every golden script, and the plans of every (segment, profile) of the golden policies, to
// the real nft. Needs root: the whole process first moves into a fresh, empty network namespace
// (unshare(CLONE_NEWNET)), so nothing here can see or touch the host's ruleset, and the namespace
// disappears with the process even if a test crashes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "agents/planner/planner.h"
#include "common/policy.h"

namespace shadan::agent {
namespace {

const std::filesystem::path kGoldenDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "golden" / "planner";

struct FdCloser {
  void operator()(const int* fd) const {
    if (*fd >= 0) ::close(*fd);
    delete fd;
  }
};
using UniqueFd = std::unique_ptr<int, FdCloser>;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs nft with `args` (no shell) and collects what it prints.
CommandResult runNft(const std::vector<std::string>& args) {
  CommandResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  UniqueFd read_end(new int(fds[0]));
  UniqueFd write_end(new int(fds[1]));
  std::vector<std::string> argv_storage = {"nft"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::dup2(*write_end, STDOUT_FILENO);
    ::dup2(*write_end, STDERR_FILENO);
    ::execvp("nft", argv.data());
    ::_exit(127);
  }
  write_end.reset();
  char buffer[4096];
  ssize_t got;
  while ((got = ::read(*read_end, buffer, sizeof buffer)) > 0) {
    result.output.append(buffer, static_cast<size_t>(got));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string readFile(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) return "";
  std::string text(size, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

std::vector<std::filesystem::path> filesEndingWith(const std::string& suffix) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > suffix.size() && name.ends_with(suffix)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class PlannerNftCheckTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    // Once per process: every later test (and every nft child) runs in this empty namespace.
    if (!in_private_netns_) {
      if (::unshare(CLONE_NEWNET) != 0) {
        unshare_error_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
        return;
      }
      in_private_netns_ = true;
    }
    char pattern[] = "/tmp/shadan-planner-nft-XXXXXX";
    if (::mkdtemp(pattern) != nullptr) scratch_dir_ = pattern;
  }

  static void TearDownTestSuite() {
    if (!scratch_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir_, ignored);
    }
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (nft talks to the kernel)";
    // Never run nft outside the private namespace: that would be the host's ruleset.
    ASSERT_TRUE(in_private_netns_) << unshare_error_;
    ASSERT_FALSE(scratch_dir_.empty()) << "mkdtemp failed";
    // Each test starts from an empty ruleset.
    const CommandResult flush = runNft({"flush", "ruleset"});
    ASSERT_EQ(flush.exit_code, 0) << flush.output;
  }

  // Writes `script` to a scratch file and checks it with `nft -c -f`.
  static CommandResult checkScript(const std::string& script, const std::string& label) {
    const std::filesystem::path path = scratch_dir_ / (label + ".nft");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << script;
    return runNft({"-c", "-f", path.string()});
  }

  static inline bool in_private_netns_ = false;
  static inline std::string unshare_error_;
  static inline std::filesystem::path scratch_dir_;
};

TEST_F(PlannerNftCheckTest, EveryGoldenScriptPassesNftCheck) {
  const std::vector<std::filesystem::path> goldens = filesEndingWith(".nft");
  // The unit test's table has 12 cases; a missing directory must not pass vacuously.
  ASSERT_GE(goldens.size(), 12u);
  for (const std::filesystem::path& path : goldens) {
    const CommandResult check = runNft({"-c", "-f", path.string()});
    EXPECT_EQ(check.exit_code, 0) << path << ":\n" << check.output;
  }
}

TEST_F(PlannerNftCheckTest, EveryGoldenScriptAppliesReplacesAndIsRemovedByTheEmptyPlan) {
  const std::filesystem::path none = kGoldenDir / "none.nft";
  ASSERT_TRUE(std::filesystem::exists(none));
  for (const std::filesystem::path& path : filesEndingWith(".nft")) {
    SCOPED_TRACE(path.string());
    const bool removes_table = readFile(path).find("table inet shadan {") == std::string::npos;
    // Twice: the second run replaces an existing table in one transaction.
    for (int round = 0; round < 2; ++round) {
      const CommandResult apply = runNft({"-f", path.string()});
      ASSERT_EQ(apply.exit_code, 0) << apply.output;
    }
    const CommandResult listed = runNft({"list", "table", "inet", "shadan"});
    EXPECT_EQ(listed.exit_code == 0, !removes_table) << listed.output;
    if (!removes_table) {
      EXPECT_NE(listed.output.find("chain forward"), std::string::npos) << listed.output;
    }
    const CommandResult remove = runNft({"-f", none.string()});
    ASSERT_EQ(remove.exit_code, 0) << remove.output;
    const CommandResult tables = runNft({"list", "tables"});
    EXPECT_EQ(tables.exit_code, 0) << tables.output;
    EXPECT_EQ(tables.output, "") << "the empty plan must leave no table";
  }
}

TEST_F(PlannerNftCheckTest, EveryPlanOfTheGoldenPoliciesPassesNftCheck) {
  const std::vector<std::filesystem::path> policies = filesEndingWith(".policy.json");
  ASSERT_GE(policies.size(), 2u);
  int checked = 0;
  for (const std::filesystem::path& path : policies) {
    Result<LoadedPolicy> loaded = loadPolicyFile(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const Policy& policy = loaded->policy;
    for (const auto& [gateway_id, gateway] : policy.gateways) {
      std::vector<Isolation> everything;
      for (const std::string& segment : gateway.borders) {
        for (const auto& [profile, unused] : policy.profiles) {
          const Isolation isolation{segment, profile};
          everything.push_back(isolation);
          Result<DataplanePlan> plan = planGateway(policy, gateway_id, {isolation});
          ASSERT_TRUE(plan.ok()) << plan.error().message;
          const std::string label = gateway_id + "-" + segment + "-" + profile;
          const CommandResult check = checkScript(plan->nft_script, label);
          EXPECT_EQ(check.exit_code, 0) << label << ":\n" << plan->nft_script << check.output;
          ++checked;
        }
      }
      Result<DataplanePlan> plan = planGateway(policy, gateway_id, everything);
      ASSERT_TRUE(plan.ok()) << plan.error().message;
      const CommandResult check = checkScript(plan->nft_script, gateway_id + "-everything");
      EXPECT_EQ(check.exit_code, 0) << gateway_id << " everything:\n"
                                    << plan->nft_script << check.output;
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace shadan::agent
