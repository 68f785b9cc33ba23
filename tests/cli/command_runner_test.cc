#include "cli/lab/command_runner.h"

#include <gtest/gtest.h>

namespace shadan {
namespace {

TEST(ProcessCommandRunnerTest, CapturesStdoutStderrAndExitCode) {
  ProcessCommandRunner runner;
  auto result = runner.run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");
  EXPECT_EQ(result->exit_code, 3);
}

TEST(ProcessCommandRunnerTest, PassesArgumentsVerbatimWithoutAShell) {
  ProcessCommandRunner runner;
  auto result = runner.run({"printf", "%s|", "a b", "$HOME", "*", ";true"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->out, "a b|$HOME|*|;true|");
}

TEST(ProcessCommandRunnerTest, FeedsStdinIncludingLargeInputs) {
  ProcessCommandRunner runner;
  const std::string big(1 << 20, 'x');  // larger than a pipe buffer: needs the poll loop
  auto result = runner.run({"wc", "-c"}, big);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(std::stoul(result->out), big.size());
}

TEST(ProcessCommandRunnerTest, SurvivesAProgramThatIgnoresItsStdin) {
  ProcessCommandRunner runner;
  auto result = runner.run({"true"}, std::string(1 << 20, 'x'));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
}

TEST(ProcessCommandRunnerTest, MissingProgramIsAnError) {
  ProcessCommandRunner runner;
  auto result = runner.run({"shadan-no-such-program"});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("cannot run shadan-no-such-program"), std::string::npos);
}

TEST(ProcessCommandRunnerTest, KillsAProgramThatOverrunsItsTimeout) {
  ProcessCommandRunner runner(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  auto result = runner.run({"sleep", "5"});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("timed out"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(ProcessCommandRunnerTest, SignalDeathIs128PlusSignal) {
  ProcessCommandRunner runner;
  auto result = runner.run({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 128 + 15);
}

TEST(RunCheckedTest, NonZeroExitBecomesAnErrorNamingCommandAndStderr) {
  ProcessCommandRunner runner;
  auto result =
      runChecked(runner, {"sh", "-c", "echo 'RTNETLINK answers: File exists' >&2; exit 2"});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "`sh -c 'echo '\\''RTNETLINK answers: File exists'\\'' >&2; exit 2'` exited with 2: "
            "RTNETLINK answers: File exists");
}

TEST(FormatArgvTest, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(formatArgv({"ip", "-n", "sd-x-gw", "link"}), "ip -n sd-x-gw link");
  EXPECT_EQ(formatArgv({"echo", "a b", ""}), "echo 'a b' ''");
}

}  // namespace
}  // namespace shadan
