#include "cli/sign_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli/shadanctl.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "tests/fakes/fake_clock.h"

namespace shadan {
namespace {

using testing::FakeClock;

constexpr int64_t kNowMs = 1795687260000;  // 2026-11-26T10:01:00Z

class SignCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shadan-sign-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(writePrivateKeyFile(path("sato.key"), sato_).ok());
    ASSERT_TRUE(writePrivateKeyFile(path("ito.key"), ito_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), "sign");
    return runSignCommand(args, out_, err_, clock_);
  }

  std::vector<std::string> goodArgs(const std::string& out_name) const {
    return {"--action",     "isolate",       "--segment",
            "lgwan",        "--targets",     "core-gw,inet-gw",
            "--reason",     "JPCERT notice", "--requested-by",
            "op:sato",      "--key",         path("sato.key"),
            "--key",        path("ito.key"), "--segment-gen",
            "57",           "--expires-in",  "30m",
            "--breakglass", "--out",         path(out_name)};
  }

  static std::string readFile(const std::string& file) {
    std::ifstream in(file);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

  std::filesystem::path dir_;
  Ed25519KeyPair sato_ = Ed25519KeyPair::generate();
  Ed25519KeyPair ito_ = Ed25519KeyPair::generate();
  FakeClock clock_{kNowMs};
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(SignCmdTest, WritesAnEnvelopeThatVerifiesWithBothKeysAndParses) {
  ASSERT_EQ(run(goodArgs("order.json")), kExitOk) << err_.str();
  const std::string text = readFile(path("order.json"));
  auto envelope = parseDsseEnvelope(text, "order.json");
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->payload_type, kAuthzPayloadType);
  ASSERT_EQ(envelope->signatures.size(), 2u);
  EXPECT_EQ(envelope->signatures[0].keyid, sato_.keyId());
  EXPECT_EQ(envelope->signatures[1].keyid, ito_.keyId());

  const auto lookup = [&](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
    if (keyid == sato_.keyId()) return sato_.publicKey();
    if (keyid == ito_.keyId()) return ito_.publicKey();
    return std::nullopt;
  };
  auto verification = verifyDsse(*envelope, kAuthzPayloadType, lookup);
  ASSERT_TRUE(verification.ok()) << verification.error().message;
  EXPECT_TRUE(verification->allValid());
  EXPECT_EQ(verification->validKeyIds().size(), 2u);
  // The signature is over PAE: verifying the bare payload must fail.
  EXPECT_FALSE(ed25519Verify(sato_.publicKey(), envelope->payload, envelope->signatures[0].sig));

  auto authz = parseAuthz(envelope->payload);
  ASSERT_TRUE(authz.ok()) << authz.error().message;
  EXPECT_EQ(authz->action, OrderAction::kIsolate);
  EXPECT_EQ(authz->segment, "lgwan");
  EXPECT_EQ(authz->profile, "full");
  EXPECT_EQ(authz->segment_gen, 57);
  EXPECT_EQ(authz->targets, (std::vector<std::string>{"core-gw", "inet-gw"}));
  EXPECT_EQ(authz->requested_by, "op:sato");
  EXPECT_EQ(authz->reason, "JPCERT notice");
  EXPECT_EQ(authz->issued_at_ms, kNowMs);
  EXPECT_EQ(authz->expires_at_ms, kNowMs + 30 * 60 * 1000);
  EXPECT_FALSE(authz->ttl_s.has_value());
  EXPECT_FALSE(authz->on_behalf_of.has_value());
  EXPECT_EQ(out_.str(), authz->command_id + "\n");
  EXPECT_NE(err_.str().find("shadan-agent apply-file"), std::string::npos);
}

TEST_F(SignCmdTest, EachRunGetsANewCommandId) {
  ASSERT_EQ(run(goodArgs("a.json")), kExitOk);
  const std::string first = out_.str();
  ASSERT_EQ(run(goodArgs("b.json")), kExitOk);
  EXPECT_NE(first, out_.str());
  const std::string uuid = randomUuid();
  EXPECT_EQ(uuid.size(), 36u);
  EXPECT_EQ(uuid[14], '4');
}

TEST_F(SignCmdTest, OptionalFieldsReachThePayload) {
  ASSERT_EQ(run({"--action",        "isolate",
                 "--segment",       "dmz",
                 "--profile",       "inbound",
                 "--targets",       "edge",
                 "--reason",        "drill",
                 "--requested-by",  "op:ito",
                 "--key",           path("ito.key"),
                 "--segment-gen",   "3",
                 "--expires-in",    "2h",
                 "--ttl",           "15m",
                 "--ticket",        "INC-1",
                 "--drill",         "--out",
                 path("drill.json")}),
            kExitOk)
      << err_.str();
  auto envelope = parseDsseEnvelope(readFile(path("drill.json")), "drill.json");
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ(envelope->signatures.size(), 1u);
  auto authz = parseAuthz(envelope->payload);
  ASSERT_TRUE(authz.ok());
  EXPECT_EQ(authz->profile, "inbound");
  EXPECT_EQ(authz->ttl_s, 900);
  EXPECT_EQ(authz->ticket, "INC-1");
  EXPECT_TRUE(authz->drill);
}

TEST_F(SignCmdTest, RefusesToOverwriteTheOutputFile) {
  ASSERT_EQ(run(goodArgs("order.json")), kExitOk);
  const std::string before = readFile(path("order.json"));
  EXPECT_EQ(run(goodArgs("order.json")), kExitFailure);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos);
  EXPECT_EQ(readFile(path("order.json")), before);
}

struct BadSignCase {
  std::vector<std::pair<std::string, std::string>> replace;  // option -> new value ("" drops)
  std::string expected;
};

TEST_F(SignCmdTest, BadArgumentsAreUsageErrors) {
  const std::vector<BadSignCase> cases = {
      {{{"--out", ""}}, "'sign' needs --out"},
      {{{"--reason", ""}}, "'sign' needs --reason"},
      {{{"--requested-by", ""}}, "'sign' needs --requested-by"},
      {{{"--action", "explode"}}, "--action must be isolate or restore"},
      {{{"--action", "restore"}}, "--breakglass files can only isolate"},
      {{{"--expires-in", "2h"}}, "--expires-in for --breakglass is at most 1h"},
      {{{"--expires-in", "soon"}}, "--expires-in: invalid duration"},
      {{{"--segment-gen", "-1"}}, "--segment-gen must be a whole number"},
      {{{"--targets", "gw1,gw1"}}, "gateway gw1 appears twice"},
      {{{"--targets", "gw1,,gw2"}}, "invalid gateway in --targets"},
      {{{"--segment", "a/b"}}, "invalid --segment"},
      {{{"--key2", ""}}, "is the same key"},
  };
  for (const BadSignCase& c : cases) {
    std::vector<std::string> args = goodArgs("never.json");
    for (const auto& [option, value] : c.replace) {
      if (option == "--key2") {
        args[13] = path("sato.key");  // the second --key names the first file again
        continue;
      }
      auto it = std::find(args.begin(), args.end(), option);
      ASSERT_NE(it, args.end()) << option;
      if (value.empty()) {
        args.erase(it, it + 2);
      } else {
        *(it + 1) = value;
      }
    }
    EXPECT_EQ(run(args), kExitUsage) << c.expected;
    EXPECT_NE(err_.str().find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in: " << err_.str();
    EXPECT_FALSE(std::filesystem::exists(path("never.json"))) << c.expected;
  }
  EXPECT_EQ(run({"--action", "isolate", "--bogus"}), kExitUsage);
  EXPECT_NE(err_.str().find("unknown option"), std::string::npos);
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("usage: shadanctl sign"), std::string::npos);
}

TEST_F(SignCmdTest, RefusesAPrivateKeyReadableByOthers) {
  ASSERT_EQ(::chmod(path("ito.key").c_str(), 0644), 0);
  EXPECT_EQ(run(goodArgs("order.json")), kExitUsage);
  EXPECT_NE(err_.str().find("--key:"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path("order.json")));
}

constexpr const char* kPolicy = R"({
  "shadan_policy": 1,
  "name": "sign-test",
  "segments": {
    "lgwan":    {"prefixes": ["10.20.0.0/24"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"default": true}
  },
  "gateways": {"core-gw": {"borders": ["lgwan", "mgmt", "internet"]},
               "inet-gw": {"borders": ["internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
  "profiles": {"full": {}, "internet-only": {"peers": ["internet"]}}
})";

TEST_F(SignCmdTest, PolicyRefusesAnUnknownSegmentOrProfileAndWritesNothing) {
  std::ofstream(path("policy.json")) << kPolicy;
  struct Case {
    std::string option;
    std::string value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"--segment", "lgwan2",
       "--segment \"lgwan2\" is not in the policy " + path("policy.json") +
           " (segments: internet, lgwan, mgmt)"},
      {"--profile", "outbound",
       "--profile \"outbound\" is not in the policy " + path("policy.json") +
           " (profiles: full, internet-only)"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = goodArgs("never.json");
    args.insert(args.end(), {"--policy", path("policy.json"), c.option, c.value});
    if (c.option == "--segment") {
      auto it = std::find(args.begin(), args.end(), "--segment");
      args.erase(it, it + 2);  // the first --segment; the case's one is last
    }
    EXPECT_EQ(run(args), kExitUsage) << c.expected;
    EXPECT_NE(err_.str().find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in: " << err_.str();
    EXPECT_EQ(out_.str(), "") << c.expected;
    EXPECT_FALSE(std::filesystem::exists(path("never.json"))) << c.expected;
  }
  // An unreadable policy is a usage error too: nothing is signed on a guess.
  std::vector<std::string> args = goodArgs("never.json");
  args.insert(args.end(), {"--policy", path("missing.json")});
  EXPECT_EQ(run(args), kExitUsage);
  EXPECT_NE(err_.str().find(path("missing.json")), std::string::npos) << err_.str();
  EXPECT_FALSE(std::filesystem::exists(path("never.json")));
}

TEST_F(SignCmdTest, PolicyAcceptsNamesItHas) {
  std::ofstream(path("policy.json")) << kPolicy;
  std::vector<std::string> args = goodArgs("order.json");
  args.insert(args.end(), {"--policy", path("policy.json"), "--profile", "internet-only"});
  ASSERT_EQ(run(args), kExitOk) << err_.str();
  auto envelope = parseDsseEnvelope(readFile(path("order.json")), "order.json");
  ASSERT_TRUE(envelope.ok());
  auto authz = parseAuthz(envelope->payload);
  ASSERT_TRUE(authz.ok());
  EXPECT_EQ(authz->profile, "internet-only");
}

// goodArgs without --segment (or with it, when `keep_segment`), plus `extra`.
std::vector<std::string> rungArgs(std::vector<std::string> args,
                                  const std::vector<std::string>& extra,
                                  bool keep_segment = false) {
  if (!keep_segment) {
    auto segment = std::find(args.begin(), args.end(), "--segment");
    args.erase(segment, segment + 2);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class SignRungTest : public SignCmdTest {
 protected:
  // Runs `args`, expecting success, and returns the authz written to `out_name`.
  Authz signedAuthz(const std::vector<std::string>& args, const std::string& out_name) {
    EXPECT_EQ(run(args), kExitOk) << err_.str();
    auto envelope = parseDsseEnvelope(readFile(path(out_name)), out_name);
    EXPECT_TRUE(envelope.ok()) << out_name;
    if (!envelope.ok()) return {};
    auto authz = parseAuthz(envelope->payload);
    EXPECT_TRUE(authz.ok()) << authz.error().message;
    return authz.ok() ? *authz : Authz{};
  }

  void expectUsage(const std::vector<std::string>& args, const std::string& expected) {
    EXPECT_EQ(run(args), kExitUsage) << expected;
    EXPECT_NE(err_.str().find(expected), std::string::npos)
        << "expected '" << expected << "' in: " << err_.str();
    EXPECT_EQ(out_.str(), "") << expected;
    EXPECT_FALSE(std::filesystem::exists(path("never.json"))) << expected;
  }
};

TEST_F(SignRungTest, HostOrderWithItsSegment) {
  const Authz authz = signedAuthz(
      rungArgs(goodArgs("host.json"), {"--host", "10.20.0.5,10.20.0.64/26,fd00:20::7"}, true),
      "host.json");
  EXPECT_EQ(authz.scope, IsolationScope::kHost);
  EXPECT_EQ(authz.segment, "lgwan");
  EXPECT_EQ(authz.hosts, (std::vector<IpPrefix>{IpPrefix::parse("10.20.0.5").value(),
                                                IpPrefix::parse("10.20.0.64/26").value(),
                                                IpPrefix::parse("fd00:20::7").value()}));
  EXPECT_FALSE(authz.link_down);
  EXPECT_NE(err_.str().find("isolate 3 host(s) of lgwan:full on 2 gateway(s)"), std::string::npos)
      << err_.str();
  // Without --policy nothing could say which segment the hosts are in.
  expectUsage(rungArgs(goodArgs("never.json"), {"--host", "10.20.0.5"}),
              "--host needs --segment, or --policy to find the segment in");
}

TEST_F(SignRungTest, HostOrderTakesItsSegmentFromThePolicy) {
  std::ofstream(path("policy.json")) << kPolicy;
  const Authz authz =
      signedAuthz(rungArgs(goodArgs("host.json"),
                           {"--host", "10.20.0.5,10.20.0.7", "--policy", path("policy.json")}),
                  "host.json");
  EXPECT_EQ(authz.scope, IsolationScope::kHost);
  EXPECT_EQ(authz.segment, "lgwan");
  EXPECT_EQ(authz.hosts.size(), 2u);
  // --segment and --policy together: the hosts must lie in --segment.
  const Authz both =
      signedAuthz(rungArgs(goodArgs("both.json"),
                           {"--host", "10.20.0.5", "--policy", path("policy.json")}, true),
                  "both.json");
  EXPECT_EQ(both.segment, "lgwan");
  EXPECT_EQ(both.hosts.size(), 1u);
}

TEST_F(SignRungTest, PolicyRefusesHostsOutsideOneSegment) {
  std::ofstream(path("policy.json")) << kPolicy;
  struct Case {
    std::vector<std::string> extra;
    bool keep_segment;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--host", "10.20.0.5,10.99.0.20"},
       false,
       "--host 10.99.0.20 is in segment \"mgmt\", not in \"lgwan\": one order quarantines hosts "
       "of one segment"},
      {{"--host", "10.99.0.20"},
       true,
       "--host 10.99.0.20 is in segment \"mgmt\", not in \"lgwan\""},
      {{"--host", "10.99.0.10"},
       false,
       "--host host 10.99.0.10: overlaps the management prefix 10.99.0.10"},
      {{"--host", "192.0.2.7"}, false, "is in the default segment \"internet\""},
  };
  for (const Case& c : cases) {
    std::vector<std::string> extra = c.extra;
    extra.insert(extra.end(), {"--policy", path("policy.json")});
    expectUsage(rungArgs(goodArgs("never.json"), extra, c.keep_segment), c.expected);
  }
  // A --segment the policy does not have is refused for a host order too.
  expectUsage(rungArgs(goodArgs("never.json"), {"--host", "10.20.0.5", "--segment", "nope",
                                                "--policy", path("policy.json")}),
              "--host 10.20.0.5 is in segment \"lgwan\", not in \"nope\"");
}

TEST_F(SignRungTest, RefusesMalformedHosts) {
  std::string list;
  for (int i = 0; i <= 256; ++i) {
    list += (list.empty() ? "" : ",") + std::string("10.20.") + std::to_string(i / 256) + "." +
            std::to_string(i % 256);
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10.20.0.0/23", "--host 10.20.0.0/23 is wider than /24 (isolate the segment instead)"},
      {"fd00:20::/119", "--host fd00:20::/119 is wider than /120"},
      {"10.20.0.5,10.20.0.5/32", "--host 10.20.0.5 appears twice"},
      {"10.20.0.300", "--host: "},
      {"10.20.0.1/24", "--host: "},
      {"10.20.0.5,", "--host: "},
      {list, "--host names 257 addresses; one order takes at most 256"},
  };
  for (const auto& [hosts, expected] : cases) {
    expectUsage(rungArgs(goodArgs("never.json"), {"--host", hosts}, true), expected);
  }
}

TEST_F(SignRungTest, UplinkAndIslandOrders) {
  const Authz uplink =
      signedAuthz(rungArgs(goodArgs("uplink.json"), {"--uplink", "--link-down"}), "uplink.json");
  EXPECT_EQ(uplink.scope, IsolationScope::kUplink);
  EXPECT_EQ(uplink.segment, "");
  EXPECT_TRUE(uplink.link_down);
  EXPECT_NE(err_.str().find("isolate @uplink:full (link down) on 2 gateway(s)"), std::string::npos)
      << err_.str();

  const Authz plain = signedAuthz(rungArgs(goodArgs("plain.json"), {"--uplink"}), "plain.json");
  EXPECT_EQ(plain.scope, IsolationScope::kUplink);
  EXPECT_FALSE(plain.link_down);

  std::ofstream(path("policy.json")) << kPolicy;
  const Authz island = signedAuthz(
      rungArgs(goodArgs("island.json"),
               {"--island", "--profile", "internet-only", "--policy", path("policy.json")}),
      "island.json");
  EXPECT_EQ(island.scope, IsolationScope::kIsland);
  EXPECT_EQ(island.segment, "");
  EXPECT_EQ(island.profile, "internet-only");
  EXPECT_NE(err_.str().find("isolate @island:internet-only on"), std::string::npos) << err_.str();
  // The policy still checks the profile of an island or uplink order.
  expectUsage(rungArgs(goodArgs("never.json"),
                       {"--uplink", "--profile", "outbound", "--policy", path("policy.json")}),
              "--profile \"outbound\" is not in the policy");
}

TEST_F(SignRungTest, RungsExcludeEachOtherAndLinkDownIsForUplinkIsolates) {
  struct Case {
    std::vector<std::string> extra;
    bool keep_segment;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--host", "10.20.0.5", "--uplink"},
       true,
       "--host, --uplink and --island exclude each other"},
      {{"--uplink", "--island"}, false, "--host, --uplink and --island exclude each other"},
      {{"--uplink"}, true, "--uplink takes no --segment"},
      {{"--island"}, true, "--island takes no --segment"},
      {{"--link-down"}, true, "--link-down is for --uplink only"},
      {{"--island", "--link-down"}, false, "--link-down is for --uplink only"},
      {{"--host", "10.20.0.5", "--link-down"}, true, "--link-down is for --uplink only"},
      {{}, false, "'sign' needs --segment (or --host, --uplink or --island)"},
  };
  for (const Case& c : cases) {
    expectUsage(rungArgs(goodArgs("never.json"), c.extra, c.keep_segment), c.expected);
  }
  // A restore sets the links up again by itself: --link-down belongs to the isolate.
  std::vector<std::string> restore = rungArgs(goodArgs("never.json"), {"--uplink", "--link-down"});
  restore.erase(std::find(restore.begin(), restore.end(), "--breakglass"));
  *(std::find(restore.begin(), restore.end(), "isolate")) = "restore";
  expectUsage(restore, "--link-down is for isolate only (a restore sets the links up again)");
}

TEST_F(SignCmdTest, SegmentGenIsOptionalOnlyForBreakglass) {
  std::vector<std::string> args = goodArgs("bg.json");
  auto gen = std::find(args.begin(), args.end(), "--segment-gen");
  args.erase(gen, gen + 2);
  ASSERT_EQ(run(args), kExitOk) << err_.str();
  auto envelope = parseDsseEnvelope(readFile(path("bg.json")), "bg.json");
  ASSERT_TRUE(envelope.ok());
  auto authz = parseAuthz(envelope->payload);
  ASSERT_TRUE(authz.ok());
  EXPECT_EQ(authz->segment_gen, 0);

  // Without --breakglass the generation decides whether agents apply the order.
  auto breakglass = std::find(args.begin(), args.end(), "--breakglass");
  args.erase(breakglass);
  *(std::find(args.begin(), args.end(), path("bg.json"))) = path("plain.json");
  EXPECT_EQ(run(args), kExitUsage);
  EXPECT_NE(err_.str().find("'sign' needs --segment-gen (it may be omitted only with "
                            "--breakglass)"),
            std::string::npos)
      << err_.str();
  EXPECT_FALSE(std::filesystem::exists(path("plain.json")));
}

TEST_F(SignCmdTest, HelpShowsTheRungs) {
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("(--segment S | --host ADDR[,ADDR...] [--segment S] | --uplink "
                            "[--link-down]\n                       | --island)"),
            std::string::npos)
      << out_.str();
  for (const char* option : {"--host ADDR[,ADDR...]:", "--uplink:", "--link-down:", "--island:"}) {
    EXPECT_NE(out_.str().find(option), std::string::npos) << option << "\n" << out_.str();
  }
}

TEST_F(SignCmdTest, HelpShowsPolicyAndWhenSegmentGenMayBeOmitted) {
  EXPECT_EQ(run({"--help"}), kExitOk);
  EXPECT_NE(out_.str().find("[--policy FILE] --out FILE"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("[--segment-gen N]"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("With --breakglass it may be omitted (0 is written)"),
            std::string::npos)
      << out_.str();
}

}  // namespace
}  // namespace shadan
