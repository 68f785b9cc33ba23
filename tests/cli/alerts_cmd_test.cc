// The operator's side of automated response: shadanctl alerts, confirm, release, breaker, the
// automatic section of approvals and the automatic response block of status, against a fake
// transport with the controller's answers (controller/api_router.cc handleResponse).

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/controller_cmd.h"
#include "cli/shadanctl.h"
#include "common/ed25519.h"
#include "tests/cli/fake_api_transport.h"
#include "tests/fakes/fake_clock.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

class AlertsCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.make_transport = [this](const ApiClientOptions& options) -> std::unique_ptr<ApiTransport> {
      fake_.last_options = options;
      return std::make_unique<FakeTransport>(fake_);
    };
    // Only the token: no HOME, so no config file is looked for.
    env_.getenv = [](const std::string& name) -> std::optional<std::string> {
      if (name == "SHADAN_TOKEN") return std::string("s3cr3t-token-for-tests");
      return std::nullopt;
    };
    env_.clock = &clock_;
  }

  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.end(),
                {"--controller", "https://127.0.0.1:8443", "--ca", "/nonexistent/ca.crt"});
    return runControllerCommand(args, out_, err_, env_);
  }
  bool outSays(const std::string& part) const { return out_.str().find(part) != std::string::npos; }
  bool errSays(const std::string& part) const { return err_.str().find(part) != std::string::npos; }
  static Json refusal(const std::string& code, const std::string& message) {
    return {{"error", {{"code", code}, {"message", message}}}};
  }

  FakeApi fake_;
  testing::FakeClock clock_{1795687260000};
  ControllerCmdEnv env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

// Two decisions as GET /v1/alerts answers them, newest first.
Json alertsAnswer() {
  return {{"alerts",
           {{{"decision", "acted"},
             {"order_id", "o-7"},
             {"reason",
              "quarantine-host host 10.20.0.5 of segment lgwan for 3600 s; escalation "
              "(3 hosts of lgwan quarantined within 600 s): acted: isolate-segment "
              "segment lgwan for 3600 s"},
             {"rule", "c2-beacon"},
             {"escalation", {{"order_id", "o-8"}}},
             {"detector", "ids-1"},
             {"time", "2026-11-26T10:01:02.000Z"},
             {"alert",
              {{"format", "eve"},
               {"source", "suricata"},
               {"rule", "ET MALWARE beacon"},
               {"severity", "high"},
               {"src", "10.20.0.5"},
               {"dst", "203.0.113.9"},
               {"time", "2026-11-26T10:01:01.000Z"},
               {"signature_id", 2030001}}}},
            {{"decision", "refused"},
             {"order_id", nullptr},
             {"reason", "bad record\x1b[31m"},
             {"detector", "ids-1"},
             {"time", "2026-11-26T10:00:00.000Z"}}}}};
}

TEST_F(AlertsCmdTest, AlertsPrintsOneRowPerDecisionNewestFirst) {
  fake_.answer(200, alertsAnswer());
  ASSERT_EQ(run({"alerts"}), kExitOk) << err_.str();
  ASSERT_EQ(fake_.calls.size(), 1u);
  EXPECT_EQ(fake_.calls[0].method, "GET");
  EXPECT_EQ(fake_.calls[0].path, "/v1/alerts");  // the controller's default limit
  std::istringstream lines(out_.str());
  std::string header, first, second, extra;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(std::getline(lines, extra)) << out_.str();
  for (const char* column : {"TIME", "DETECTOR", "DECISION", "RULE", "SRC -> DST", "ORDER"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << " in " << header;
  }
  EXPECT_EQ(header.rfind("REASON"), header.size() - 6) << header;
  for (const char* cell : {"2026-11-26T10:01:02.000Z", "ids-1", "acted", "c2-beacon",
                           "10.20.0.5 -> 203.0.113.9", "o-7 (escalation o-8)"}) {
    EXPECT_NE(first.find(cell), std::string::npos) << cell << " in " << first;
  }
  // The reason is cut to 60 characters so the row stays on a screen.
  EXPECT_NE(first.find("quarantine-host host 10.20.0.5 of segment lgwan for 3600 ..."),
            std::string::npos)
      << first;
  EXPECT_EQ(first.find("isolate-segment"), std::string::npos) << first;
  // A record that did not parse: no alert, no rule, no order; its text never reaches the
  // terminal raw.
  EXPECT_NE(second.find("refused"), std::string::npos) << second;
  EXPECT_NE(second.find("bad record\\x1b[31m"), std::string::npos) << second;
  EXPECT_EQ(out_.str().find('\x1b'), std::string::npos);
}

TEST_F(AlertsCmdTest, AlertsLimitAndJson) {
  fake_.answer(200, alertsAnswer());
  ASSERT_EQ(run({"alerts", "--limit", "5", "--json"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].path, "/v1/alerts?limit=5");
  EXPECT_EQ(Json::parse(out_.str()), alertsAnswer());

  fake_.answer(200, {{"alerts", Json::array()}});
  ASSERT_EQ(run({"alerts", "--limit=1000"}), kExitOk);
  EXPECT_EQ(fake_.calls[1].path, "/v1/alerts?limit=1000");
  EXPECT_EQ(out_.str(),
            "no alerts since the controller started (it keeps the latest in memory; the audit "
            "log has them all)\n");
}

struct UsageCase {
  std::vector<std::string> args;
  const char* expected;
};

TEST_F(AlertsCmdTest, BadArgumentsAreUsageErrorsAndSendNothing) {
  const std::vector<UsageCase> cases = {
      {{"alerts", "--limit", "0"}, "--limit must be a whole number from 1 to 1000, not \"0\""},
      {{"alerts", "--limit", "1001"}, "--limit must be a whole number from 1 to 1000"},
      {{"alerts", "--limit", "ten"}, "--limit must be a whole number"},
      {{"alerts", "recent"}, "'alerts' takes no argument \"recent\""},
      {{"alerts", "--reason", "x"}, "unknown option \"--reason\" for 'alerts'"},
      {{"confirm"}, "'confirm' needs an ACTION_ID"},
      {{"confirm", "o-7"}, "'confirm' needs --reason TEXT (it is audited)"},
      {{"confirm", "o-7", "--reason", ""}, "--reason must not be empty"},
      {{"confirm", "o-7", "--reason", "a\nb"}, "--reason holds a control character"},
      {{"confirm", "o-7", "--reason", std::string(513, 'x')}, "longer than 512"},
      {{"confirm", "../o-7", "--reason", "r"}, "invalid action id \"../o-7\""},
      {{"confirm", "o-7", "o-8", "--reason", "r"}, "'confirm' takes no argument \"o-8\""},
      {{"release"}, "'release' needs an ACTION_ID"},
      {{"release", "o-7"}, "'release' needs --reason TEXT"},
      {{"release", "o?x", "--reason", "r"}, "invalid action id"},
      {{"breaker", "frob"}, "unknown breaker subcommand \"frob\" (subcommands: open, close)"},
      {{"breaker", "open"}, "'breaker open' needs --reason TEXT"},
      {{"breaker", "close", "--reason", ""}, "--reason must not be empty"},
      {{"breaker", "--reason", "r"}, "--reason is for 'breaker open' and 'close'"},
      {{"breaker", "open", "close", "--reason", "r"}, "'breaker' takes no argument \"close\""},
      {{"breaker", "--token", "t"}, "there is no --token"},
  };
  for (const UsageCase& c : cases) {
    EXPECT_EQ(run(c.args), kExitUsage) << c.expected;
    EXPECT_TRUE(errSays(c.expected)) << "expected '" << c.expected << "' in: " << err_.str();
    EXPECT_TRUE(out_.str().empty()) << c.expected;
  }
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(AlertsCmdTest, ConfirmSendsTheReasonAndNamesTheNewOrder) {
  fake_.answer(200, {{"id", "o-7"},
                     {"state", "confirmed"},
                     {"order",
                      {{"order_id", "o-9"},
                       {"state", "dispatched"},
                       {"gateways", {"core-gw"}},
                       {"scope", "host"},
                       {"segment", "lgwan"},
                       {"hosts", {"10.20.0.5"}}}}});
  ASSERT_EQ(run({"confirm", "o-7", "--reason", "EDR agrees INC-4720"}), kExitOk) << err_.str();
  ASSERT_EQ(fake_.calls.size(), 1u);
  EXPECT_EQ(fake_.calls[0].method, "POST");
  EXPECT_EQ(fake_.calls[0].path, "/v1/orders/o-7/confirm");
  EXPECT_EQ(*fake_.calls[0].body, (Json{{"reason", "EDR agrees INC-4720"}}));
  EXPECT_EQ(out_.str(),
            "confirmed automatic action o-7: order o-9 isolates host 10.20.0.5 in lgwan in your "
            "name, without a TTL; state dispatched\n"
            "follow it with: shadanctl status --order o-9\n");
}

TEST_F(AlertsCmdTest, ConfirmWhoseOrderAwaitsApprovalExitsFour) {
  const Json answer = {{"id", "p-1"},
                       {"state", "confirmed"},
                       {"order",
                        {{"order_id", "o-10"},
                         {"state", "awaiting_approval"},
                         {"gateways", Json::array()},
                         {"scope", "segment"},
                         {"segment", "dmz"},
                         {"approval_id", "ap-3"},
                         {"needed", 2},
                         {"have", 1}}}};
  fake_.answer(200, answer);
  EXPECT_EQ(run({"confirm", "p-1", "--reason", "r"}), kExitAwaitingApproval) << err_.str();
  EXPECT_TRUE(
      outSays("confirmed automatic action p-1: order o-10 isolates segment dmz in your "
              "name, without a TTL; awaiting approval ap-3 (1 of 2 operator signatures)"))
      << out_.str();
  EXPECT_TRUE(outSays("approve with: shadanctl approve ap-3 --key YOUR.key"));
  fake_.answer(200, answer);
  EXPECT_EQ(run({"confirm", "p-1", "--reason", "r", "--json"}), kExitAwaitingApproval);
  EXPECT_EQ(Json::parse(out_.str()), answer);
}

TEST_F(AlertsCmdTest, ReleaseNamesTheReleaseOrderAndDeclinesAProposal) {
  fake_.answer(200, {{"id", "o-7"},
                     {"state", "released"},
                     {"order",
                      {{"order_id", "o-11"},
                       {"state", "dispatched"},
                       {"gateways", {"core-gw"}},
                       {"scope", "host"},
                       {"segment", "lgwan"},
                       {"hosts", {"10.20.0.5"}}}}});
  ASSERT_EQ(run({"release", "o-7", "--reason", "false positive"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].path, "/v1/orders/o-7/release");
  EXPECT_EQ(*fake_.calls[0].body, (Json{{"reason", "false positive"}}));
  EXPECT_TRUE(
      outSays("released automatic action o-7: order o-11 lifts host 10.20.0.5 in lgwan "
              "(the gateways refuse it if the isolation is no longer automatic); state "
              "dispatched\n"))
      << out_.str();
  EXPECT_TRUE(outSays("follow it with: shadanctl status --order o-11"));

  const Json declined = {{"id", "p-2"}, {"state", "declined"}, {"order", nullptr}};
  fake_.answer(200, declined);
  ASSERT_EQ(run({"release", "p-2", "--reason", "scanner, known"}), kExitOk);
  EXPECT_EQ(out_.str(), "declined proposal p-2: nothing had been cut, nothing to lift\n");
  fake_.answer(200, declined);
  ASSERT_EQ(run({"release", "p-2", "--reason", "scanner, known", "--json"}), kExitOk);
  EXPECT_EQ(Json::parse(out_.str()), declined);
}

TEST_F(AlertsCmdTest, RefusedConfirmAndReleaseExitOneWithTheControllersReason) {
  fake_.answer(403, refusal("forbidden", "role auditor may not call POST /v1/orders/o-7/confirm"));
  EXPECT_EQ(run({"confirm", "o-7", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("refused the confirmation of o-7: not allowed for this token")) << err_.str();
  EXPECT_FALSE(errSays("shadanctl approvals"));

  fake_.answer(404, refusal("not_found", "no automatic action o-7"));
  EXPECT_EQ(run({"release", "o-7", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(
      errSays("refused the release of o-7: HTTP 404 \"not_found\": \"no automatic action "
              "o-7\""))
      << err_.str();
  EXPECT_TRUE(errSays("listed by 'shadanctl approvals'"));

  fake_.answer(409, refusal("conflict", "automatic action o-7 is released"));
  EXPECT_EQ(run({"confirm", "o-7", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("HTTP 409 \"conflict\": \"automatic action o-7 is released\"")) << err_.str();
  EXPECT_TRUE(out_.str().empty());

  fake_.answers.push_back(makeError(ErrorCode::kUnavailable, "cannot connect to x: refused"));
  EXPECT_EQ(run({"release", "o-7", "--reason", "r"}), kExitUnreachable);
}

Json breakerAnswer(bool open, Json since, const std::string& by, const std::string& reason) {
  return {{"open", open},    {"since", std::move(since)}, {"reason", reason},
          {"by", by},        {"actions_in_window", 11},   {"max_actions", 10},
          {"window_s", 600}, {"max_segments_percent", 50}};
}

TEST_F(AlertsCmdTest, BreakerShowsItsStateAndItsLimits) {
  fake_.answer(200, breakerAnswer(false, nullptr, "", ""));
  ASSERT_EQ(run({"breaker"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].method, "GET");
  EXPECT_EQ(fake_.calls[0].path, "/v1/breaker");
  EXPECT_FALSE(fake_.calls[0].body.has_value());
  EXPECT_EQ(out_.str(),
            "circuit breaker: closed\n"
            "window: 11 automatic action(s) in the last 600 s (it opens above 10, or when an "
            "action would leave more than 50% of the segments isolated)\n");

  const Json open = breakerAnswer(true, "2026-11-26T10:05:00.000Z", "automatic",
                                  "more than 10 automatic actions within 600 s");
  fake_.answer(200, open);
  ASSERT_EQ(run({"breaker"}), kExitOk);
  EXPECT_TRUE(
      outSays("circuit breaker: OPEN since 2026-11-26T10:05:00.000Z by automatic: more "
              "than 10 automatic actions within 600 s\n"))
      << out_.str();
  EXPECT_TRUE(outSays("close it with: shadanctl breaker close --reason TEXT"));
  fake_.answer(200, open);
  ASSERT_EQ(run({"breaker", "--json"}), kExitOk);
  EXPECT_EQ(Json::parse(out_.str()), open);
}

TEST_F(AlertsCmdTest, BreakerOpenAndCloseSendTheReason) {
  fake_.answer(200, breakerAnswer(true, "2026-11-26T10:05:00.000Z", "op:sato", "IDS misfiring"));
  ASSERT_EQ(run({"breaker", "open", "--reason", "IDS misfiring"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].method, "POST");
  EXPECT_EQ(fake_.calls[0].path, "/v1/breaker/open");
  EXPECT_EQ(*fake_.calls[0].body, (Json{{"reason", "IDS misfiring"}}));
  EXPECT_TRUE(
      outSays("circuit breaker: OPEN since 2026-11-26T10:05:00.000Z by op:sato: IDS "
              "misfiring\n"))
      << out_.str();

  fake_.answer(200, breakerAnswer(false, "2026-11-26T11:00:00.000Z", "op:ito", "rules fixed"));
  ASSERT_EQ(run({"breaker", "close", "--reason", "rules fixed"}), kExitOk);
  EXPECT_EQ(fake_.calls[1].path, "/v1/breaker/close");
  EXPECT_TRUE(
      outSays("circuit breaker: closed since 2026-11-26T11:00:00.000Z by op:ito: rules "
              "fixed\n"))
      << out_.str();
  EXPECT_FALSE(outSays("close it with"));
}

TEST_F(AlertsCmdTest, BreakerRefusalsExitOne) {
  fake_.answer(409, refusal("conflict", "the circuit breaker is already open"));
  EXPECT_EQ(run({"breaker", "open", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(
      errSays("shadanctl: the controller refused to open the circuit breaker: HTTP 409 "
              "\"conflict\": \"the circuit breaker is already open\""))
      << err_.str();
  fake_.answer(403, refusal("forbidden", "role auditor may not call POST /v1/breaker/close"));
  EXPECT_EQ(run({"breaker", "close", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("refused to close the circuit breaker: not allowed for this token"));
  fake_.answer(404, refusal("not_found", "no such endpoint: GET /v1/breaker"));
  EXPECT_EQ(run({"breaker"}), kExitFailure);
  EXPECT_TRUE(errSays("refused the breaker request: HTTP 404"));
  EXPECT_TRUE(out_.str().empty());
}

// GET /v1/approvals with one signature approval (whose payload does not decode here: its row
// says so, as before) and two automatic actions.
Json automaticAction(const std::string& id, const std::string& state, const std::string& scope) {
  Json action = {{"id", id},
                 {"state", state},
                 {"detector", "ids-1"},
                 {"rule", "c2-beacon"},
                 {"scope", scope},
                 {"segment", "lgwan"},
                 {"host", scope == "host" ? Json("10.20.0.5") : Json(nullptr)},
                 {"profile", "full"},
                 {"ttl_s", 3600},
                 {"created_at", "2026-11-26T10:01:02.000Z"},
                 {"expires_at", "2026-11-26T11:01:02.000Z"},
                 {"why", "rule c2-beacon"},
                 {"alerts", 3},
                 {"awaiting", "confirm or release"},
                 {"kind", "automatic"}};
  return action;
}

TEST_F(AlertsCmdTest, ApprovalsListsAutomaticActionsInTheirOwnSection) {
  // As the controller answers: signature approvals and automatic actions apart.
  const Json answer = {
      {"approvals", Json::array({{{"approval_id", "ap-7"}, {"needed", 2}, {"have", 0}}})},
      {"automatic", Json::array({automaticAction("o-7", "active", "host"),
                                 automaticAction("p-1", "proposed", "segment")})}};
  fake_.answer(200, answer);
  ASSERT_EQ(run({"approvals"}), kExitOk) << err_.str();
  const std::string text = out_.str();
  const size_t section = text.find("\nautomatic actions: confirm or release\n");
  ASSERT_NE(section, std::string::npos) << text;
  // The signature approvals first, as before; the automatic actions never as approvals.
  EXPECT_LT(text.find("APPROVAL"), section);
  EXPECT_LT(text.find("ap-7"), section);
  EXPECT_EQ(text.find("-/-"), std::string::npos) << text;
  EXPECT_EQ(text.find("o-7"), text.rfind("o-7")) << text;
  const std::string automatic = text.substr(section);
  for (const char* column : {"ID", "STATE", "TARGET", "DETECTOR/RULE", "EXPIRES", "WHY"}) {
    EXPECT_NE(automatic.find(column), std::string::npos) << column;
  }
  EXPECT_NE(automatic.find("o-7  active    host 10.20.0.5 in lgwan  ids-1/c2-beacon  "
                           "2026-11-26T11:01:02.000Z  rule c2-beacon"),
            std::string::npos)
      << automatic;
  EXPECT_NE(automatic.find("p-1  proposed  segment lgwan            ids-1/c2-beacon"),
            std::string::npos)
      << automatic;
  EXPECT_NE(automatic.find("confirm: shadanctl confirm ID --reason TEXT   release: shadanctl "
                           "release ID --reason TEXT"),
            std::string::npos);

  // Only automatic actions: their section alone.
  fake_.answer(200, {{"approvals", Json::array()},
                     {"automatic", Json::array({automaticAction("o-7", "active", "host")})}});
  ASSERT_EQ(run({"approvals"}), kExitOk);
  EXPECT_EQ(out_.str().rfind("automatic actions: confirm or release\n", 0), 0u) << out_.str();
  EXPECT_FALSE(outSays("APPROVAL"));

  fake_.answer(200, answer);
  ASSERT_EQ(run({"approvals", "--json"}), kExitOk);
  EXPECT_EQ(Json::parse(out_.str()), answer);
}

TEST_F(AlertsCmdTest, ApproveRefusesAnAutomaticActionAndSaysWhatToDo) {
  // The key is read before anything is sent: give it one.
  const std::string key_file = ::testing::TempDir() + "alerts-cmd-op.key";
  ASSERT_TRUE(writePrivateKeyFile(key_file, Ed25519KeyPair::generate()).ok());
  fake_.answer(200, Json::array({automaticAction("o-7", "active", "host")}));
  EXPECT_EQ(run({"approve", "o-7", "--key", key_file, "--yes"}), kExitFailure);
  EXPECT_TRUE(
      errSays("o-7 is an automatic action, not an order awaiting signatures: confirm or "
              "release it (shadanctl confirm|release o-7 --reason TEXT)"))
      << err_.str();
  ASSERT_EQ(fake_.calls.size(), 1u);  // nothing was signed
  std::remove(key_file.c_str());
}

TEST_F(AlertsCmdTest, StatusShowsTheAutomaticResponseBlockOnlyWhenReported) {
  const Json segments = {{"lgwan", {{"state", "open"}, {"profile", "-"}, {"gen", 3}}}};
  fake_.answer(200, {{"segments", segments}});
  ASSERT_EQ(run({"status"}), kExitOk) << err_.str();
  const std::string without = out_.str();
  EXPECT_EQ(without.find("automatic response"), std::string::npos) << without;

  Json response = {{"breaker", breakerAnswer(true, "2026-11-26T10:05:00.000Z", "automatic",
                                             "more than 10 automatic actions within 600 s")},
                   {"rate", {{"per_detector_per_min", 10}, {"intake_per_s", 100}}},
                   {"rules", 2},
                   {"detectors", Json::array()},
                   {"actions", Json::array({automaticAction("o-7", "active", "host"),
                                            automaticAction("p-1", "proposed", "segment"),
                                            automaticAction("p-2", "proposed", "segment")})},
                   {"alerts", {{"acted", 1}, {"breaker_open", 2}, {"deduplicated", 4}}}};
  fake_.answer(200, {{"segments", segments}, {"response", response}});
  ASSERT_EQ(run({"status"}), kExitOk) << err_.str();
  // The same table, then the block.
  EXPECT_EQ(out_.str().rfind(without, 0), 0u) << out_.str();
  EXPECT_EQ(out_.str().substr(without.size()),
            "\nautomatic response:\n"
            "  breaker       OPEN since 2026-11-26T10:05:00.000Z by automatic: more than 10 "
            "automatic actions within 600 s\n"
            "  open actions  3 (1 active, 2 proposed): confirm or release them, see shadanctl "
            "approvals\n"
            "  alerts        acted 1, breaker_open 2, deduplicated 4\n");

  response["breaker"] = breakerAnswer(false, nullptr, "", "");
  response["actions"] = Json::array();
  response["alerts"] = Json::object();
  fake_.answer(200, {{"response", response}});
  ASSERT_EQ(run({"status"}), kExitOk);
  EXPECT_EQ(out_.str(),
            "\nautomatic response:\n"
            "  breaker       closed\n"
            "  open actions  none\n");
}

}  // namespace
}  // namespace shadan
