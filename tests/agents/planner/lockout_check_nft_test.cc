// The self-lockout check against rulesets the kernel really holds: each golden ruleset
// (tests/golden/lockout/NAME.nft) is loaded with nft, listed with `nft -j list ruleset` and
// checked; the findings must equal those of the saved listing NAME.json (so the fixtures are what
// the kernel returns). Needs root: every test runs in a fresh network namespace of its own
// (unshare(CLONE_NEWNET)), never the host's ruleset.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "agents/planner/lockout_check.h"
#include "common/policy.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

const std::filesystem::path kGoldenDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "golden" / "lockout";
const std::filesystem::path kPlannerGoldenDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "golden" / "planner";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs nft with `args` (no shell) and collects what it prints.
CommandResult runNft(const std::vector<std::string>& args) {
  struct FdCloser {
    void operator()(const int* fd) const {
      if (*fd >= 0) ::close(*fd);
      delete fd;
    }
  };
  using UniqueFd = std::unique_ptr<int, FdCloser>;
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

ManagementRule rule(const std::string& description, const char* prefix, L4Proto proto,
                    std::optional<uint16_t> port) {
  auto parsed = IpPrefix::parse(prefix);
  EXPECT_TRUE(parsed.ok()) << prefix;
  return ManagementRule{description, parsed.ok() ? parsed.value() : IpPrefix{}, proto, port};
}

std::vector<ManagementRule> controller() {
  return {rule("controller v4", "10.99.0.10/32", L4Proto::kTcp, 8443),
          rule("controller v6", "fd00:99::10/128", L4Proto::kTcp, 8443)};
}

std::string describeAll(const std::vector<LockoutFinding>& findings) {
  std::string out;
  for (const LockoutFinding& finding : findings) out += describeLockoutFinding(finding) + "\n";
  return out;
}

class LockoutCheckNftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (runs in a private network namespace)";
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    const auto listed = runNft({"list", "ruleset"});
    ASSERT_EQ(listed.exit_code, 0) << listed.output;
    ASSERT_EQ(listed.output, "") << "a fresh namespace has an empty ruleset";
  }

  static void load(const std::filesystem::path& file) {
    const auto loaded = runNft({"-f", file.string()});
    ASSERT_EQ(loaded.exit_code, 0) << file << ": " << loaded.output;
  }

  static json liveRuleset() {
    const auto listed = runNft({"-j", "list", "ruleset"});
    EXPECT_EQ(listed.exit_code, 0) << listed.output;
    json ruleset = json::parse(listed.output, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(ruleset.is_discarded()) << listed.output;
    return ruleset;
  }

  static std::vector<LockoutFinding> check(const json& ruleset,
                                           const std::vector<ManagementRule>& management,
                                           std::string_view own_table = "shadan") {
    auto findings = checkManagementPath(ruleset, management, own_table);
    EXPECT_TRUE(findings.ok()) << findings.error().message;
    return findings.ok() ? findings.value() : std::vector<LockoutFinding>{};
  }
};

TEST_F(LockoutCheckNftTest, LiveListingsGiveTheGoldenFindings) {
  int fixtures = 0;
  for (const auto& item : std::filesystem::directory_iterator(kGoldenDir)) {
    if (item.path().extension() != ".nft") continue;
    SCOPED_TRACE(item.path().filename().string());
    ++fixtures;
    const auto flushed = runNft({"flush", "ruleset"});
    ASSERT_EQ(flushed.exit_code, 0) << flushed.output;
    ASSERT_NO_FATAL_FAILURE(load(item.path()));
    const json live = liveRuleset();

    std::ifstream saved_file(std::filesystem::path(item.path()).replace_extension(".json"));
    const json saved = json::parse(saved_file, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(saved.is_discarded());
    const auto from_live = check(live, controller());
    EXPECT_EQ(from_live, check(saved, controller())) << describeAll(from_live);
    EXPECT_EQ(rulesetHasNat(live), rulesetHasNat(saved));
  }
  EXPECT_GE(fixtures, 10);
}

TEST_F(LockoutCheckNftTest, ForeignDropNextToOurTable) {
  // Our own table (the planner's real output) sits beside a foreign drop: only the foreign
  // table is reported.
  ASSERT_NO_FATAL_FAILURE(load(kPlannerGoldenDir / "default_full.nft"));
  ASSERT_NO_FATAL_FAILURE(load(kGoldenDir / "drop_controller_port.nft"));
  const auto findings = check(liveRuleset(), controller());
  ASSERT_EQ(findings.size(), 1u) << describeAll(findings);
  EXPECT_EQ(findings[0].table, "blocker");
  EXPECT_EQ(findings[0].severity, LockoutSeverity::kDrops);
  EXPECT_FALSE(rulesetHasNat(liveRuleset()));
}

TEST_F(LockoutCheckNftTest, PlannerOutputNeverDropsManagement) {
  // A cross-check of the planner: checked as if it were foreign (own_table ""), our own table
  // must accept every management flow of its policy before any of its drops. A golden script
  // NAME.nft was planned from NAME.policy.json where that exists, else municipality.policy.json.
  int scripts = 0;
  for (const auto& item : std::filesystem::directory_iterator(kPlannerGoldenDir)) {
    if (item.path().extension() != ".nft") continue;
    SCOPED_TRACE(item.path().filename().string());
    ++scripts;
    std::filesystem::path policy_file =
        kPlannerGoldenDir / (item.path().stem().string() + ".policy.json");
    if (!std::filesystem::exists(policy_file)) {
      policy_file = kPlannerGoldenDir / "municipality.policy.json";
    }
    auto loaded = loadPolicyFile(policy_file);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const std::vector<ManagementRule>& management = loaded->policy.always_allow;
    ASSERT_FALSE(management.empty());

    ASSERT_NO_FATAL_FAILURE(load(item.path()));  // replaces inet shadan whole
    const json live = liveRuleset();
    const auto findings = check(live, management, "");
    EXPECT_TRUE(findings.empty()) << describeAll(findings);
    // With our table skipped there is nothing foreign at all.
    EXPECT_TRUE(check(live, management).empty());
  }
  EXPECT_GE(scripts, 5);
}

}  // namespace
}  // namespace shadan::agent
