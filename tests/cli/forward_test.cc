// shadanctl forward: AlertForwarder and AlertSender over real temp files, a fake transport and
// a fake clock/sleeper (nothing sleeps for real), and the command's options and exit codes.

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/alert_forwarder.h"
#include "cli/forward_cmd.h"
#include "cli/forward_state.h"
#include "cli/shadanctl.h"

namespace shadan {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

// Records every raw request; answers from `answers` first, then 200 with one "acted" result per
// NDJSON line.
struct FakeIntake {
  std::vector<RawApiRequest> calls;
  std::deque<Result<RawApiResponse>> answers;
  std::function<void()> after_call;  // e.g. raise the stop flag

  static size_t recordsIn(const std::string& body) {
    size_t count = 0;
    for (const char c : body) count += c == '\n' ? 1 : 0;
    return count;
  }
  static RawApiResponse ok(size_t count, const std::string& decision = "acted") {
    Json results = Json::array();
    for (size_t i = 0; i < count; ++i) {
      results.push_back({{"decision", decision}, {"order_id", nullptr}, {"reason", "r"}});
    }
    return RawApiResponse{ApiResponse{200, Json{{"results", results}}}, std::nullopt};
  }
  Result<RawApiResponse> answer(const RawApiRequest& request) {
    calls.push_back(request);
    if (after_call) after_call();
    if (!answers.empty()) {
      Result<RawApiResponse> next = std::move(answers.front());
      answers.pop_front();
      return next;
    }
    return ok(recordsIn(request.body));
  }
};

class FakeTransport : public ApiTransport {
 public:
  explicit FakeTransport(FakeIntake& intake) : intake_(intake) {}
  Result<ApiResponse> request(std::string_view, std::string_view,
                              const std::optional<Json>&) override {
    return makeError(ErrorCode::kInternal, "the forwarder sends raw requests only");
  }
  Result<RawApiResponse> requestRaw(const RawApiRequest& request) override {
    return intake_.answer(request);
  }

 private:
  FakeIntake& intake_;
};

std::string alert(int n) {
  return R"({"timestamp":"2024-01-02T03:04:05.000000+0000","event_type":"alert","src_ip":"10.0.0.)" +
         std::to_string(n) + R"(","dest_ip":"10.0.1.1","alert":{"signature_id":1,"severity":1}})";
}
constexpr const char* kFlow = R"({"event_type":"flow","src_ip":"10.0.0.9"})";

class ForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shadan-forward-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    log_ = dir_ + "/eve.json";
    state_ = dir_ + "/state.json";
    env_.now = [this] { return now_; };
    env_.sleep = [this](milliseconds duration) {
      sleeps_.push_back(duration);
      now_ += duration;
      if (stop_after_sleeps_ && sleeps_.size() >= *stop_after_sleeps_) stop_ = true;
    };
    env_.jitter = [] { return 1.0; };  // the whole backoff step
    env_.stop_requested = [this] { return stop_; };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& text) {
    std::ofstream out(log_, std::ios::binary | std::ios::app);
    out << text;
  }
  ForwarderOptions options(ForwardKind kind = ForwardKind::kEve) {
    ForwarderOptions out;
    out.kind = kind;
    out.log = log_;
    out.state_file = state_;
    out.from_start = true;
    out.once = true;
    return out;
  }
  Status forward(const ForwarderOptions& opts) {
    FakeTransport transport(intake_);
    err_.str("");
    AlertForwarder forwarder(opts, transport, env_, err_);
    Status ended = forwarder.run();
    stats_ = forwarder.stats();
    return ended;
  }
  uint64_t persistedOffset() {
    auto state = loadForwardState(state_, "eve", log_);
    EXPECT_TRUE(state.ok() && state->has_value());
    return state.ok() && state->has_value() ? (*state)->position.offset : ~0ull;
  }
  std::vector<std::string> bodies() const {
    std::vector<std::string> out;
    for (const RawApiRequest& call : intake_.calls) out.push_back(call.body);
    return out;
  }

  std::string dir_, log_, state_;
  FakeIntake intake_;
  ForwarderEnv env_;
  std::chrono::steady_clock::time_point now_{};
  std::vector<milliseconds> sleeps_;
  std::optional<size_t> stop_after_sleeps_;
  bool stop_ = false;
  std::ostringstream err_;
  ForwardStats stats_;
};

TEST_F(ForwardTest, EveSendsOnlyAlertsAsNdjsonAndCountsTheRestSkipped) {
  append(alert(1) + "\n" + kFlow + "\n\n" + alert(2) + "\n");
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  ASSERT_EQ(intake_.calls.size(), 1u);
  EXPECT_EQ(intake_.calls[0].path, "/v1/alerts?format=eve");
  EXPECT_EQ(intake_.calls[0].content_type, "application/vnd.suricata.eve+json");
  EXPECT_EQ(intake_.calls[0].body, alert(1) + "\n" + alert(2) + "\n");
  EXPECT_EQ(stats_.sent, 2u);
  EXPECT_EQ(stats_.decisions["acted"], 2u);
  EXPECT_EQ(stats_.skipped, 2u);  // the flow record and the blank line
  EXPECT_EQ(persistedOffset(), std::filesystem::file_size(log_));
}

TEST_F(ForwardTest, ZeekSendsEveryRecordAndRefusesTsvLines) {
  append("#separator \\x09\n{\"note\":\"Scan::Port_Scan\",\"ts\":1.5,\"src\":\"10.0.0.1\"}\n");
  ASSERT_TRUE(forward(options(ForwardKind::kZeekNotice)).ok()) << err_.str();
  ASSERT_EQ(intake_.calls.size(), 1u);
  EXPECT_EQ(intake_.calls[0].path, "/v1/alerts?format=zeek");
  EXPECT_EQ(intake_.calls[0].content_type, "application/vnd.zeek.notice+json");
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[0].body), 1u);
  EXPECT_EQ(stats_.invalid, 1u);
  EXPECT_NE(err_.str().find("offset 0: a Zeek TSV header line: only JSON logs are supported"),
            std::string::npos)
      << err_.str();
}

TEST_F(ForwardTest, OversizeAndGarbageLinesAreReportedWithTheirOffsetAndNotSent) {
  const std::string big = R"({"event_type":"alert","pad":")" + std::string(70000, 'x') + "\"}";
  const std::string garbage = "not json at all";
  const std::string broken = R"({"event_type":"alert","src_ip":})";
  append(big + "\n" + garbage + "\n" + broken + "\n" + alert(1) + "\n");
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  ASSERT_EQ(bodies(), std::vector<std::string>{alert(1) + "\n"});
  EXPECT_EQ(stats_.invalid, 3u);
  const std::string garbage_at = std::to_string(big.size() + 1);
  const std::string broken_at = std::to_string(big.size() + 1 + garbage.size() + 1);
  EXPECT_NE(err_.str().find("offset 0: a line of " + std::to_string(big.size()) + " bytes"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("offset " + garbage_at + ": not a JSON object"), std::string::npos);
  EXPECT_NE(err_.str().find("offset " + broken_at + ": not a JSON object"), std::string::npos);
}

TEST_F(ForwardTest, ASecondRunResumesAtThePersistedOffset) {
  append(alert(1) + "\n");
  ASSERT_TRUE(forward(options()).ok());
  append(alert(2) + "\n" + alert(3) + "\n");
  ASSERT_TRUE(forward(options()).ok());
  EXPECT_EQ(bodies(),
            (std::vector<std::string>{alert(1) + "\n", alert(2) + "\n" + alert(3) + "\n"}));
}

TEST_F(ForwardTest, AFirstRunStartsAtTheEndAndSavesThatPositionAtOnce) {
  append(alert(1) + "\n");
  ForwarderOptions opts = options();
  opts.from_start = false;
  ASSERT_TRUE(forward(opts).ok());
  EXPECT_TRUE(intake_.calls.empty());
  EXPECT_EQ(persistedOffset(), alert(1).size() + 1);
  append(alert(2) + "\n");
  ASSERT_TRUE(forward(opts).ok());
  EXPECT_EQ(bodies(), std::vector<std::string>{alert(2) + "\n"});
}

TEST_F(ForwardTest, BatchesHoldAtMostBatchRecords) {
  std::string text;
  for (int i = 0; i < 1200; ++i) text += alert(i % 250) + "\n";
  append(text);
  ASSERT_TRUE(forward(options()).ok());
  ASSERT_EQ(intake_.calls.size(), 3u);
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[0].body), 500u);
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[1].body), 500u);
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[2].body), 200u);
  EXPECT_EQ(stats_.sent, 1200u);
}

TEST_F(ForwardTest, BatchesStayUnderTheIntakeBodyLimit) {
  const std::string record = R"({"event_type":"alert","pad":")" + std::string(60000, 'p') + "\"}";
  std::string text;
  for (int i = 0; i < 80; ++i) text += record + "\n";
  append(text);
  ASSERT_TRUE(forward(options()).ok());
  ASSERT_EQ(intake_.calls.size(), 2u);
  EXPECT_LE(intake_.calls[0].body.size(), kForwardMaxBatchBytes);
  EXPECT_EQ(
      FakeIntake::recordsIn(intake_.calls[0].body) + FakeIntake::recordsIn(intake_.calls[1].body),
      80u);
}

TEST_F(ForwardTest, APartialBatchIsSentFlushMsAfterItsFirstLine) {
  append(alert(1) + "\n" + alert(2) + "\n");
  ForwarderOptions opts = options();
  opts.once = false;
  opts.flush = milliseconds(500);
  intake_.after_call = [this] { stop_ = true; };
  ASSERT_TRUE(forward(opts).ok()) << err_.str();
  ASSERT_EQ(intake_.calls.size(), 1u);
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[0].body), 2u);
  milliseconds slept{0};
  for (const milliseconds nap : sleeps_) slept += nap;
  EXPECT_EQ(slept, milliseconds(500));  // waited for the flush time, not more
}

TEST_F(ForwardTest, AStopSendsThePendingBatchFirst) {
  append(alert(1) + "\n");
  ForwarderOptions opts = options();
  opts.once = false;
  opts.flush = milliseconds(60000);
  stop_after_sleeps_ = 1;
  ASSERT_TRUE(forward(opts).ok()) << err_.str();
  EXPECT_EQ(bodies(), std::vector<std::string>{alert(1) + "\n"});
  EXPECT_EQ(persistedOffset(), alert(1).size() + 1);
}

TEST_F(ForwardTest, TooManyRequestsWaitsRetryAfterThenSendsAgain) {
  append(alert(1) + "\n");
  intake_.answers.push_back(
      RawApiResponse{ApiResponse{429, Json{{"error", {{"code", "rate_limited"}}}}}, "7"});
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{milliseconds(7000)});
  ASSERT_EQ(intake_.calls.size(), 2u);
  EXPECT_EQ(intake_.calls[1].body, intake_.calls[0].body);
  EXPECT_EQ(stats_.retries, 1u);
  EXPECT_EQ(stats_.sent, 1u);
}

TEST_F(ForwardTest, ServerErrorsAndAnUnreachableControllerBackOffExponentially) {
  append(alert(1) + "\n");
  for (int i = 0; i < 9; ++i)
    intake_.answers.push_back(RawApiResponse{ApiResponse{503, Json()}, std::nullopt});
  intake_.answers.push_back(makeError(ErrorCode::kUnavailable, "cannot connect"));
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  const std::vector<milliseconds> expected = {
      milliseconds(200),   milliseconds(400),  milliseconds(800),   milliseconds(1600),
      milliseconds(3200),  milliseconds(6400), milliseconds(12800), milliseconds(25600),
      milliseconds(30000), milliseconds(30000)};
  EXPECT_EQ(sleeps_, expected);
  EXPECT_EQ(stats_.retries, 10u);
  EXPECT_EQ(stats_.sent, 1u);
}

TEST_F(ForwardTest, JitterWaitsBetweenHalfAndAllOfTheStep) {
  append(alert(1) + "\n");
  env_.jitter = [] { return 0.0; };
  intake_.answers.push_back(RawApiResponse{ApiResponse{500, Json()}, std::nullopt});
  intake_.answers.push_back(RawApiResponse{ApiResponse{502, Json()}, std::nullopt});
  ASSERT_TRUE(forward(options()).ok());
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(100), milliseconds(200)}));
}

TEST_F(ForwardTest, UnauthorizedStopsTheForwarderWithoutMovingTheState) {
  append(alert(1) + "\n");
  intake_.answers.push_back(
      RawApiResponse{ApiResponse{401, Json{{"error", {{"code", "unauthorized"}}}}}, std::nullopt});
  Status ended = forward(options());
  ASSERT_FALSE(ended.ok());
  EXPECT_NE(ended.error().message.find("did not accept the token"), std::string::npos);
  EXPECT_EQ(intake_.calls.size(), 1u);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(persistedOffset(), 0u);
}

TEST_F(ForwardTest, PayloadTooLargeSplitsTheBatchInHalves) {
  for (int i = 0; i < 4; ++i) append(alert(i) + "\n");
  intake_.answers.push_back(RawApiResponse{ApiResponse{413, Json()}, std::nullopt});
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  ASSERT_EQ(intake_.calls.size(), 3u);
  EXPECT_EQ(FakeIntake::recordsIn(intake_.calls[0].body), 4u);
  EXPECT_EQ(intake_.calls[1].body, alert(0) + "\n" + alert(1) + "\n");
  EXPECT_EQ(intake_.calls[2].body, alert(2) + "\n" + alert(3) + "\n");
  EXPECT_EQ(stats_.sent, 4u);
}

TEST_F(ForwardTest, ARecordTooLargeAloneIsReportedAndPassed) {
  append(alert(1) + "\n");
  intake_.answers.push_back(RawApiResponse{ApiResponse{413, Json()}, std::nullopt});
  ASSERT_TRUE(forward(options()).ok());
  EXPECT_EQ(stats_.sent, 0u);
  EXPECT_EQ(stats_.refused, 1u);
  EXPECT_NE(err_.str().find("offset 0: not taken: HTTP 413"), std::string::npos) << err_.str();
}

TEST_F(ForwardTest, ABatchThatFailedIsSentAgainByTheNextRun) {
  append(alert(1) + "\n" + alert(2) + "\n");
  // The controller stays down until the forwarder is stopped (as by a crash or SIGTERM).
  for (int i = 0; i < 3; ++i)
    intake_.answers.push_back(RawApiResponse{ApiResponse{503, Json()}, std::nullopt});
  stop_after_sleeps_ = 3;
  Status ended = forward(options());
  ASSERT_FALSE(ended.ok());
  EXPECT_NE(ended.error().message.find("2 records not acknowledged"), std::string::npos);
  EXPECT_EQ(persistedOffset(), 0u);

  stop_ = false;
  stop_after_sleeps_.reset();
  ASSERT_TRUE(forward(options()).ok());
  ASSERT_EQ(intake_.calls.size(), 4u);
  EXPECT_EQ(intake_.calls[3].body, alert(1) + "\n" + alert(2) + "\n");
  EXPECT_EQ(persistedOffset(), std::filesystem::file_size(log_));
}

TEST_F(ForwardTest, RefusedRecordsAreReportedWithTheirOffsetAndThePositionMoves) {
  append(alert(1) + "\n" + alert(2) + "\n");
  Json results = Json::array(
      {{{"decision", "no_rule"}, {"order_id", nullptr}, {"reason", ""}},
       {{"decision", "refused"}, {"order_id", nullptr}, {"reason", "record 1: /src_ip: bad"}}});
  intake_.answers.push_back(
      RawApiResponse{ApiResponse{200, Json{{"results", results}}}, std::nullopt});
  ASSERT_TRUE(forward(options()).ok());
  EXPECT_EQ(stats_.refused, 1u);
  EXPECT_EQ(stats_.decisions["no_rule"], 1u);
  EXPECT_EQ(stats_.decisions["refused"], 1u);
  const std::string at = std::to_string(alert(1).size() + 1);
  EXPECT_NE(err_.str().find("offset " + at + ": refused by the controller: \"record 1: /src_ip"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(persistedOffset(), std::filesystem::file_size(log_));
}

TEST_F(ForwardTest, ARotatedLogIsFollowedIntoItsNewFile) {
  append(alert(1) + "\n");
  ASSERT_TRUE(forward(options()).ok());
  std::filesystem::rename(log_, log_ + ".1");
  append(alert(2) + "\n");
  ASSERT_TRUE(forward(options()).ok()) << err_.str();
  EXPECT_EQ(bodies(), (std::vector<std::string>{alert(1) + "\n", alert(2) + "\n"}));
  EXPECT_NE(err_.str().find("rotated while not followed"), std::string::npos);
}

TEST_F(ForwardTest, AStateFileOfAnotherLogIsRefused) {
  append(alert(1) + "\n");
  ASSERT_TRUE(forward(options()).ok());
  ForwarderOptions other = options();
  other.log = dir_ + "/other.json";
  Status ended = forward(other);
  ASSERT_FALSE(ended.ok());
  EXPECT_NE(ended.error().message.find("pass another --state FILE"), std::string::npos);
}

// The command: options, exit codes, the summary.
class ForwardCmdTest : public ForwardTest {
 protected:
  int run(std::vector<std::string> args) {
    ForwardCmdEnv env;
    env.controller.make_transport = [this](const ApiClientOptions&) {
      return std::make_unique<FakeTransport>(intake_);
    };
    env.controller.getenv = [this](const std::string& name) -> std::optional<std::string> {
      if (name == "SHADAN_TOKEN") return "detector-token";
      if (name == "HOME") return dir_;
      return std::nullopt;
    };
    env.forwarder = env_;
    args.insert(args.begin(), "forward");
    for (const char* word : {"--controller", "https://ctl.example:8443", "--ca", "ca.pem"}) {
      args.push_back(word);
    }
    out_.str("");
    err_.str("");
    return runForwardCommand(args, out_, err_, env);
  }
  std::ostringstream out_;
};

TEST_F(ForwardCmdTest, OnceReadsToTheEndAndPrintsAJsonSummary) {
  append(alert(1) + "\n" + kFlow + "\n");
  ASSERT_EQ(run({"eve", log_, "--state", state_, "--from-start", "--once", "--json"}), kExitOk)
      << err_.str();
  const Json summary = Json::parse(out_.str());
  EXPECT_EQ(summary["kind"], "eve");
  EXPECT_EQ(summary["log"], log_);
  EXPECT_EQ(summary["sent"], 1);
  EXPECT_EQ(summary["decisions"]["acted"], 1);
  EXPECT_EQ(summary["skipped"], 1);
  EXPECT_EQ(summary["acknowledged"]["offset"], std::filesystem::file_size(log_));
}

TEST_F(ForwardCmdTest, ARefusedTokenExitsOne) {
  append(alert(1) + "\n");
  intake_.answers.push_back(RawApiResponse{ApiResponse{403, Json()}, std::nullopt});
  EXPECT_EQ(run({"eve", log_, "--state", state_, "--from-start", "--once"}), kExitFailure);
  EXPECT_NE(err_.str().find("needs a detector token"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("sent 0"), std::string::npos) << err_.str();
}

TEST_F(ForwardCmdTest, UsageErrorsSendNothing) {
  EXPECT_EQ(run({"suricata", log_}), kExitUsage);
  EXPECT_NE(err_.str().find("(subcommands: eve, zeek-notice)"), std::string::npos);
  EXPECT_EQ(run({"eve"}), kExitUsage);
  EXPECT_NE(err_.str().find("'forward eve' needs FILE"), std::string::npos);
  EXPECT_EQ(run({"eve", log_, "--batch", "1001"}), kExitUsage);
  EXPECT_NE(err_.str().find("--batch must be a whole number from 1 to 1000"), std::string::npos);
  EXPECT_EQ(run({"eve", log_, "--flush-ms", "0"}), kExitUsage);
  EXPECT_EQ(run({"eve", log_, "--token", "x"}), kExitUsage);
  EXPECT_TRUE(intake_.calls.empty());
}

TEST_F(ForwardCmdTest, OnceOnAMissingFileFails) {
  EXPECT_EQ(run({"zeek-notice", log_, "--state", state_, "--once"}), kExitFailure);
  EXPECT_NE(err_.str().find("does not exist"), std::string::npos);
}

TEST(ForwardStatePathTest, TheDefaultDependsOnKindAndPath) {
  const std::string a = defaultForwardStatePath("eve", "/var/log/suricata/eve.json");
  EXPECT_EQ(a.rfind("/var/lib/shadan/forward-eve-", 0), 0u) << a;
  EXPECT_NE(a, defaultForwardStatePath("eve", "/var/log/suricata/eve2.json"));
  EXPECT_NE(a, defaultForwardStatePath("zeek-notice", "/var/log/suricata/eve.json"));
}

TEST(RetryAfterTest, OnlyWholeSecondsCount) {
  EXPECT_EQ(parseRetryAfter("7"), std::chrono::seconds(7));
  EXPECT_EQ(parseRetryAfter(" 0 "), std::chrono::seconds(0));
  EXPECT_FALSE(parseRetryAfter(std::nullopt));
  EXPECT_FALSE(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(parseRetryAfter("-1"));
  EXPECT_FALSE(parseRetryAfter("999999"));
}

}  // namespace
}  // namespace shadan
