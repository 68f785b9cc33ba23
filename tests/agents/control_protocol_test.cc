#include "agents/control_protocol.h"

#include <gtest/gtest.h>

namespace shadan::agent {
namespace {

TEST(ControlProtocolTest, ParsesEachOp) {
  auto isolate =
      parseControlRequest(R"({"op":"isolate","segment":"office","profile":"full","ttl_ms":4000})");
  ASSERT_TRUE(isolate.ok()) << isolate.error().message;
  EXPECT_EQ(isolate->op, "isolate");
  EXPECT_EQ(isolate->segment, "office");
  EXPECT_EQ(isolate->ttl, std::chrono::milliseconds(4000));
  EXPECT_EQ(isolate->toJson(), nlohmann::json::parse(
                                   R"({"op":"isolate","segment":"office","profile":"full",
                                       "ttl_ms":4000})"));

  auto all = parseControlRequest(R"({"op":"restore","all":true})");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->all);
  EXPECT_TRUE(parseControlRequest(R"({"op":"status"})").ok());

  // Envelope commands travel to the daemon with their file's text.
  auto apply = parseControlRequest(R"({"op":"apply_file","envelope":"{\"payload\":\"x\"}"})");
  ASSERT_TRUE(apply.ok()) << apply.error().message;
  EXPECT_EQ(apply->envelope, R"({"payload":"x"})");
  EXPECT_TRUE(parseControlRequest(apply->toJson().dump()).ok());
  auto refused =
      parseControlRequest(R"({"op":"refused","command":"isolate","reason":"policy: bad"})");
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_EQ(refused->command, "isolate");
  EXPECT_EQ(refused->reason, "policy: bad");
  EXPECT_EQ(parseControlRequest(refused->toJson().dump())->toJson(), refused->toJson());
}

TEST(ControlProtocolTest, RejectsHostileOrMalformedRequestsWithAReason) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "control request"},
      {"[1,2]", "not a JSON object"},
      {R"({"op":"isolate"})", "isolate needs \"segment\""},
      {R"({"op":"isolate","segment":"a","segment":"b"})", "duplicate key"},
      {R"({"op":"isolate","segment":"a","sudo":true})", "unknown field"},
      {R"({"op":"isolate","segment":7})", "\"segment\" must be a non-empty string"},
      {R"({"op":"isolate","segment":""})", "\"segment\" must be a non-empty string"},
      {R"({"op":"isolate","segment":"a","ttl_ms":-1})", "\"ttl_ms\" must be a positive"},
      {R"({"op":"isolate","segment":"a","ttl_ms":1.5})", "control request"},
      {R"({"op":"restore"})", "restore needs \"segment\" or \"all\""},
      {R"({"op":"refused","command":"status","reason":"x"})", "refused needs \"command\""},
      {R"({"op":"refused","command":"isolate"})", "refused needs"},
      {R"({"op":"refused","command":"isolate","reason":"x","segment":"a"})", "takes only"},
      {R"({"op":"isolate","segment":"a","command":"x"})", "only for refused"},
      {R"({"op":"status","reason":"x"})", "only for isolate, restore and refused"},
      {R"({"op":"status","sudo_user":"sato"})", "only for isolate and restore"},
      {R"({"op":"isolate","segment":"a","sudo_user":"sa to"})", "sudo_user"},
      {R"({"op":"isolate","segment":"a","policy_sha256":"ABC"})", "64 lower-case hex"},
      {R"({"op":"isolate","segment":"a","gateway":""})", "\"gateway\" must be"},
      {R"({"op":"status","envelope":"x"})", "\"envelope\" is only for verify and apply_file"},
      {R"({"op":"restore","segment":"a","all":true})", "restore needs \"segment\" or \"all\""},
      {R"({"op":"restore","all":true,"profile":"full"})", "does not go with"},
      {R"({"op":"restore","segment":"a","ttl_ms":5})", "only for isolate"},
      {R"({"op":"status","segment":"a"})", "status takes no arguments"},
      {R"({"op":"reboot"})", "unknown op"},
      {std::string(kMaxControlRequestBytes + 1, ' '), "control request"},
  };
  for (const auto& c : cases) {
    auto parsed = parseControlRequest(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text.substr(0, 80);
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in: " << parsed.error().message;
  }
}

TEST(ControlProtocolTest, ErrorAnswersRoundTrip) {
  const auto answer = errorAnswer("isolate", makeError(ErrorCode::kKernel, "no"));
  const auto error = answerError(answer);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::kKernel);
  EXPECT_EQ(error->message, "no");
  EXPECT_FALSE(answerError(nlohmann::json{{"ok", true}}).has_value());
}

}  // namespace
}  // namespace shadan::agent
