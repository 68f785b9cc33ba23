#include "common/trust.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/orders.h"
#include "tests/fakes/fake_clock.h"

namespace shadan {
namespace {

using nlohmann::json;

using testing::FakeClock;

Ed25519KeyPair keyFromByte(uint8_t byte) {
  std::vector<uint8_t> seed(kEd25519SeedBytes, byte);
  return Ed25519KeyPair::fromSeed(seed).value();
}

json keyEntry(const Ed25519KeyPair& key, const std::string& identity,
              const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

class TrustTest : public ::testing::Test {
 protected:
  TrustTest()
      : sato_(keyFromByte(1)),
        sato_laptop_(keyFromByte(2)),
        tanaka_(keyFromByte(3)),
        controller_(keyFromByte(4)),
        agent_(keyFromByte(5)) {}

  json base() const {
    return {{"shadan_trust", 1},
            {"version", 3},
            {"expires_at", "2027-01-01T00:00:00Z"},
            {"keys",
             {keyEntry(sato_, "op:sato", {"operator", "breakglass"}),
              keyEntry(sato_laptop_, "op:sato", {"operator"}),
              keyEntry(tanaka_, "op:tanaka", {"operator", "breakglass"}),
              keyEntry(controller_, "controller", {"controller"}),
              keyEntry(agent_, "agent:core-gw", {"agent"})}}};
  }

  static Result<Trust> parse(const json& doc) { return parseTrust(doc.dump(), "trust.json"); }

  Ed25519KeyPair sato_, sato_laptop_, tanaka_, controller_, agent_;
};

TEST_F(TrustTest, ParsesKeysRolesAndDefaults) {
  auto trust = parse(base());
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->version, 3);
  EXPECT_EQ(trust->expires_at_ms, parseRfc3339UtcMillis("2027-01-01T00:00:00Z").value());
  ASSERT_EQ(trust->keys.size(), 5u);
  const TrustKey* sato = trust->findKey(sato_.keyId());
  ASSERT_NE(sato, nullptr);
  EXPECT_EQ(sato->identity, "op:sato");
  EXPECT_EQ(sato->public_key, sato_.publicKey());
  EXPECT_TRUE(sato->hasRole(TrustRole::kOperator));
  EXPECT_TRUE(sato->hasRole(TrustRole::kBreakglass));
  EXPECT_FALSE(sato->hasRole(TrustRole::kController));
  EXPECT_TRUE(trust->findKey(controller_.keyId())->hasRole(TrustRole::kController));
  EXPECT_EQ(trust->findKey(std::string(64, '0')), nullptr);
  // Defaults from the issue: isolate 1 operator or controller-on-behalf, protected 2,
  // restore 2, break-glass 2.
  EXPECT_EQ(trust->thresholds.isolate_operators, 1);
  EXPECT_TRUE(trust->thresholds.isolate_controller_on_behalf);
  EXPECT_EQ(trust->thresholds.isolate_protected_operators, 2);
  EXPECT_EQ(trust->thresholds.restore_operators, 2);
  EXPECT_EQ(trust->thresholds.breakglass_isolate, 2);
  EXPECT_TRUE(trust->thresholds.release_controller_on_behalf);
}

TEST_F(TrustTest, ParsesTheReleaseRule) {
  json doc = base();
  doc["thresholds"] = {{"release", {{"controller_on_behalf", false}}}};
  auto trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_FALSE(trust->thresholds.release_controller_on_behalf);
  // The release rule is its own: the isolate and restore rules keep their defaults.
  EXPECT_TRUE(trust->thresholds.isolate_controller_on_behalf);
  EXPECT_EQ(trust->thresholds.restore_operators, 2);

  doc["thresholds"] = {{"release", {{"controller_on_behalf", true}}},
                       {"isolate", {{"controller_on_behalf", false}}}};
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_TRUE(trust->thresholds.release_controller_on_behalf);
  EXPECT_FALSE(trust->thresholds.isolate_controller_on_behalf);

  // An empty release object keeps the default.
  doc["thresholds"] = {{"release", json::object()}};
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_TRUE(trust->thresholds.release_controller_on_behalf);
}

TEST_F(TrustTest, ParsesExplicitThresholds) {
  json doc = base();
  doc["thresholds"] = {{"isolate", {{"operators", 2}, {"controller_on_behalf", false}}},
                       {"isolate_protected", {{"operators", 3}}},
                       {"restore", {{"operators", 3}}},
                       {"breakglass_isolate", {{"breakglass", 1}}}};
  auto trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->thresholds.isolate_operators, 2);
  EXPECT_FALSE(trust->thresholds.isolate_controller_on_behalf);
  EXPECT_EQ(trust->thresholds.isolate_protected_operators, 3);
  EXPECT_EQ(trust->thresholds.restore_operators, 3);
  EXPECT_EQ(trust->thresholds.breakglass_isolate, 1);

  // A partial thresholds object keeps the other defaults.
  doc["thresholds"] = {{"restore", {{"operators", 4}}}};
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->thresholds.restore_operators, 4);
  EXPECT_EQ(trust->thresholds.isolate_operators, 1);
}

TEST_F(TrustTest, ScopeApprovalsDefaultToSegmentRulesForHostAndProtectedAbove) {
  auto trust = parse(base());
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  const TrustThresholds& t = trust->thresholds;
  EXPECT_EQ(t.host, ScopeApproval::kAsSegment);
  EXPECT_EQ(t.segment, ScopeApproval::kAsSegment);
  EXPECT_EQ(t.uplink, ScopeApproval::kProtected);
  EXPECT_EQ(t.island, ScopeApproval::kProtected);
  EXPECT_FALSE(t.needsProtectedRule(IsolationScope::kHost, false));
  EXPECT_TRUE(t.needsProtectedRule(IsolationScope::kHost, true));
  EXPECT_FALSE(t.needsProtectedRule(IsolationScope::kSegment, false));
  EXPECT_TRUE(t.needsProtectedRule(IsolationScope::kUplink, false));
  EXPECT_TRUE(t.needsProtectedRule(IsolationScope::kIsland, false));
}

TEST_F(TrustTest, ParsesScopeApprovals) {
  json doc = base();
  doc["thresholds"] = {{"scopes", {{"host", "isolate_protected"}, {"uplink", "as_segment"}}}};
  auto trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  const TrustThresholds& t = trust->thresholds;
  EXPECT_EQ(t.host, ScopeApproval::kProtected);
  EXPECT_EQ(t.segment, ScopeApproval::kAsSegment);  // absent: the default
  EXPECT_EQ(t.uplink, ScopeApproval::kAsSegment);
  EXPECT_EQ(t.island, ScopeApproval::kProtected);  // absent: the default
  EXPECT_TRUE(t.needsProtectedRule(IsolationScope::kHost, false));
  EXPECT_FALSE(t.needsProtectedRule(IsolationScope::kUplink, false));
  // The counts are untouched by scopes.
  EXPECT_EQ(t.isolate_operators, 1);
  EXPECT_EQ(t.isolate_protected_operators, 2);

  doc["thresholds"] = {{"scopes", {{"segment", "isolate_protected"}, {"island", "as_segment"}}},
                       {"isolate_protected", {{"operators", 3}}}};
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->thresholds.segment, ScopeApproval::kProtected);
  EXPECT_EQ(trust->thresholds.island, ScopeApproval::kAsSegment);
  EXPECT_EQ(trust->thresholds.isolate_protected_operators, 3);

  // An empty scopes object keeps every default.
  doc["thresholds"] = {{"scopes", json::object()}};
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->thresholds.uplink, ScopeApproval::kProtected);
  EXPECT_EQ(trust->thresholds.host, ScopeApproval::kAsSegment);
}

TEST_F(TrustTest, RefusesBadFilesNamingThePointer) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* expected;  // substring: the pointer and/or the reason
  };
  const std::vector<Case> cases = {
      {"unknown top-level member", [](json& d) { d["extra"] = 1; }, "/: unknown member"},
      {"missing keys", [](json& d) { d.erase("keys"); }, "missing member \"keys\""},
      {"wrong format", [](json& d) { d["shadan_trust"] = 2; }, "/shadan_trust"},
      {"version zero", [](json& d) { d["version"] = 0; }, "/version"},
      {"version string", [](json& d) { d["version"] = "3"; }, "/version"},
      {"expires not UTC", [](json& d) { d["expires_at"] = "2027-01-01T09:00:00+09:00"; },
       "/expires_at"},
      {"expires no such date", [](json& d) { d["expires_at"] = "2027-02-30T00:00:00Z"; },
       "/expires_at"},
      {"empty keys", [](json& d) { d["keys"] = json::array(); }, "/keys"},
      {"keyid mismatch", [](json& d) { d["keys"][1]["keyid"] = d["keys"][0]["keyid"]; },
       "/keys/1/keyid"},
      {"public key wrong length", [](json& d) { d["keys"][0]["public_key"] = "AAAA"; },
       "/keys/0/public_key"},
      {"public key not base64", [](json& d) { d["keys"][0]["public_key"] = "!!"; },
       "/keys/0/public_key"},
      {"unknown key member", [](json& d) { d["keys"][2]["comment"] = "x"; },
       "/keys/2: unknown member"},
      {"unknown role", [](json& d) { d["keys"][0]["roles"] = {"admin"}; }, "/keys/0/roles/0"},
      {"duplicate role",
       [](json& d) {
         d["keys"][0]["roles"] = {"operator", "operator"};
       },
       "/keys/0/roles/1"},
      {"empty roles", [](json& d) { d["keys"][0]["roles"] = json::array(); }, "/keys/0/roles"},
      {"bad identity", [](json& d) { d["keys"][0]["identity"] = "op sato"; }, "/keys/0/identity"},
      {"empty identity", [](json& d) { d["keys"][0]["identity"] = ""; }, "/keys/0/identity"},
      {"duplicate key", [](json& d) { d["keys"].push_back(d["keys"][0]); }, "/keys/5/keyid"},
      {"controller also operator",
       [](json& d) {
         d["keys"][3]["roles"] = {"controller", "operator"};
       },
       "/keys/3/roles"},
      {"controller identity owns an operator key",
       [](json& d) { d["keys"][0]["identity"] = "controller"; }, "/keys/3/roles"},
      {"agent also operator",
       [](json& d) {
         d["keys"][4]["roles"] = {"agent", "operator"};
       },
       "/keys/4/roles"},
      {"breakglass without operator", [](json& d) { d["keys"][0]["roles"] = {"breakglass"}; },
       "/keys/0/roles"},
      {"threshold zero",
       [](json& d) {
         d["thresholds"] = {{"restore", {{"operators", 0}}}};
       },
       "/thresholds/restore/operators"},
      {"threshold float",
       [](json& d) {
         d["thresholds"] = {{"restore", {{"operators", 1.5}}}};
       },
       "/thresholds/restore/operators"},
      {"unknown action",
       [](json& d) {
         d["thresholds"] = {{"delete", {{"operators", 1}}}};
       },
       "/thresholds: unknown member"},
      {"unknown threshold member",
       [](json& d) {
         d["thresholds"] = {{"restore", {{"controller_on_behalf", true}}}};
       },
       "/thresholds/restore: unknown member"},
      {"on_behalf not bool",
       [](json& d) {
         d["thresholds"] = {{"isolate", {{"controller_on_behalf", 1}}}};
       },
       "/thresholds/isolate/controller_on_behalf"},
      {"release on_behalf not bool",
       [](json& d) {
         d["thresholds"] = {{"release", {{"controller_on_behalf", "yes"}}}};
       },
       "/thresholds/release/controller_on_behalf"},
      {"release with a count",
       [](json& d) {
         d["thresholds"] = {{"release", {{"operators", 1}}}};
       },
       "/thresholds/release: unknown member"},
      {"release not an object",
       [](json& d) {
         d["thresholds"] = {{"release", true}};
       },
       "/thresholds/release: must be an object"},
      {"scopes not an object",
       [](json& d) {
         d["thresholds"] = {{"scopes", {"host"}}};
       },
       "/thresholds/scopes: must be an object"},
      {"unknown scope",
       [](json& d) {
         d["thresholds"] = {{"scopes", {{"building", "as_segment"}}}};
       },
       "/thresholds/scopes: unknown member \"building\""},
      {"unknown scope rule",
       [](json& d) {
         d["thresholds"] = {{"scopes", {{"uplink", "isolate"}}}};
       },
       "/thresholds/scopes/uplink: must be \"as_segment\" or \"isolate_protected\""},
      {"scope rule as a count",
       [](json& d) {
         d["thresholds"] = {{"scopes", {{"island", 2}}}};
       },
       "/thresholds/scopes/island"},
      {"scope rule null",
       [](json& d) {
         d["thresholds"] = {{"scopes", {{"host", nullptr}}}};
       },
       "/thresholds/scopes/host"},
      {"scope rule in another case",
       [](json& d) {
         d["thresholds"] = {{"scopes", {{"segment", "AS_SEGMENT"}}}};
       },
       "/thresholds/scopes/segment"},
  };
  for (const Case& c : cases) {
    json doc = base();
    c.edit(doc);
    auto trust = parse(doc);
    ASSERT_FALSE(trust.ok()) << c.name;
    EXPECT_EQ(trust.error().code, ErrorCode::kParse) << c.name;
    EXPECT_NE(trust.error().message.find("trust.json: "), std::string::npos) << c.name;
    EXPECT_NE(trust.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << trust.error().message;
  }
}

TEST_F(TrustTest, IdentityRoleRuleNamesIdentityRoleAndWhatIsAllowed) {
  using R = TrustRole;
  struct Case {
    std::string identity;
    std::set<TrustRole> roles;
    const char* expected;  // nullptr: accepted
  };
  const std::vector<Case> cases = {
      {"op:sato", {R::kOperator}, nullptr},
      {"op:sato", {R::kOperator, R::kBreakglass}, nullptr},
      {"agent:core-gw", {R::kAgent}, nullptr},
      {"controller", {R::kController}, nullptr},
      {"op:sato",
       {R::kBreakglass},
       "identity \"op:sato\" may not hold the role \"breakglass\" without \"operator\": an "
       "op:<name> identity holds \"operator\", optionally with \"breakglass\""},
      {"op:sato", {R::kController}, "identity \"op:sato\" may not hold the role \"controller\""},
      {"agent:core-gw",
       {R::kOperator},
       "identity \"agent:core-gw\" may not hold the role \"operator\": an agent:<id> identity "
       "holds only \"agent\""},
      {"controller",
       {R::kOperator},
       "identity \"controller\" may not hold the role \"operator\": the controller identity "
       "holds only \"controller\""},
      {"sato",
       {R::kOperator},
       "identity \"sato\" may not hold the role \"operator\": identities are op:<name> "
       "(operator, breakglass), agent:<id> (agent) or controller (controller)"},
      {"op:", {R::kOperator}, "identity \"op:\" may not hold the role \"operator\""},
  };
  for (const Case& c : cases) {
    Status rule = checkIdentityRoles(c.identity, c.roles);
    if (c.expected == nullptr) {
      EXPECT_TRUE(rule.ok()) << c.identity << ": " << rule.error().message;
      continue;
    }
    ASSERT_FALSE(rule.ok()) << c.identity;
    EXPECT_EQ(rule.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(rule.error().message.find(c.expected), std::string::npos) << rule.error().message;
  }
}

// The loader keeps accepting files that break the identity rule (agents must not stop over a
// name), and says which keys do.
TEST_F(TrustTest, LoaderAcceptsAFileThatBreaksTheIdentityRuleAndReportsIt) {
  json doc = base();
  auto trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_TRUE(identityRoleWarnings(*trust).empty());
  doc["keys"][2]["identity"] = "tanaka";
  trust = parse(doc);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  const std::vector<std::string> warnings = identityRoleWarnings(*trust);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].rfind("keys[2]: identity \"tanaka\" may not hold the role", 0), 0u)
      << warnings[0];
}

TEST_F(TrustTest, RefusesDuplicateJsonKeys) {
  std::string text = base().dump();
  text.insert(1, R"("version":99,)");
  auto trust = parseTrust(text, "trust.json");
  ASSERT_FALSE(trust.ok());
  EXPECT_NE(trust.error().message.find("duplicate key"), std::string::npos);
}

TEST_F(TrustTest, AcceptTrustUpdateRefusesRollbackAndExpiry) {
  const Trust trust = parse(base()).value();  // version 3, expires 2027-01-01
  const FakeClock before(parseRfc3339UtcMillis("2026-11-26T10:00:00Z").value());
  const FakeClock after(parseRfc3339UtcMillis("2027-01-01T00:00:00.001Z").value());
  EXPECT_TRUE(acceptTrustUpdate(2, trust, before).ok());
  EXPECT_TRUE(acceptTrustUpdate(3, trust, before).ok());  // the same version: a re-read
  auto rollback = acceptTrustUpdate(4, trust, before);
  ASSERT_FALSE(rollback.ok());
  EXPECT_NE(rollback.error().message.find("older"), std::string::npos);
  auto expired = acceptTrustUpdate(1, trust, after);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
  EXPECT_FALSE(trust.isExpired(before.now()));
  EXPECT_TRUE(trust.isExpired(after.now()));
}

TEST_F(TrustTest, LoadsAFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("shadan-trust-test-" + std::to_string(getpid()) + ".json");
  {
    std::ofstream out(path);
    out << base().dump(2);
  }
  auto trust = loadTrustFile(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_EQ(trust->keys.size(), 5u);
  auto missing = loadTrustFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
}

// Issue #17: drill keys live in lab trust files only, and lab files hold no real operator.
class TrustPurposeTest : public TrustTest {
 protected:
  TrustPurposeTest() : drill_sato_(keyFromByte(6)), drill_kato_(keyFromByte(7)) {}

  json lab() const {
    return {{"shadan_trust", 1},
            {"version", 1},
            {"expires_at", "2027-01-01T00:00:00Z"},
            {"purpose", "lab"},
            {"keys",
             {keyEntry(drill_sato_, "drill:sato", {"drill"}),
              keyEntry(drill_kato_, "drill:kato", {"drill"}),
              keyEntry(controller_, "controller", {"controller"}),
              keyEntry(agent_, "agent:core-gw", {"agent"})}}};
  }

  Ed25519KeyPair drill_sato_, drill_kato_;
};

TEST_F(TrustPurposeTest, PurposeDefaultsToProductionAndReadsLab) {
  auto production = parse(base());
  ASSERT_TRUE(production.ok()) << production.error().message;
  EXPECT_EQ(production->purpose, TrustPurpose::kProduction);
  EXPECT_FALSE(production->isLab());
  json explicit_production = base();
  explicit_production["purpose"] = "production";
  EXPECT_TRUE(parse(explicit_production).ok());

  auto trust = parse(lab());
  ASSERT_TRUE(trust.ok()) << trust.error().message;
  EXPECT_TRUE(trust->isLab());
  EXPECT_STREQ(trustPurposeName(trust->purpose), "lab");
  const TrustKey* sato = trust->findKey(drill_sato_.keyId());
  ASSERT_NE(sato, nullptr);
  EXPECT_TRUE(sato->hasRole(TrustRole::kDrill));
  EXPECT_TRUE(identityRoleWarnings(*trust).empty());

  json bad = lab();
  bad["purpose"] = "staging";
  auto refused = parse(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("trust.json: /purpose: must be \"production\" or \"lab\""),
            std::string::npos)
      << refused.error().message;
}

TEST_F(TrustPurposeTest, ProductionFileWithADrillKeyFailsNamingTheKey) {
  json doc = base();
  doc["keys"].push_back(keyEntry(drill_sato_, "drill:sato", {"drill"}));
  auto trust = parse(doc);
  ASSERT_FALSE(trust.ok());
  EXPECT_EQ(trust.error().code, ErrorCode::kParse);
  const std::string& message = trust.error().message;
  EXPECT_NE(message.find("trust.json: /keys/5/roles: key " + drill_sato_.keyId() +
                         " of \"drill:sato\" is a drill key: drill keys are never accepted by "
                         "a production trust file"),
            std::string::npos)
      << message;

  // A drill: identity is a drill key whatever role it claims.
  doc = base();
  doc["keys"].push_back(keyEntry(drill_sato_, "drill:sato", {"operator"}));
  trust = parse(doc);
  ASSERT_FALSE(trust.ok());
  EXPECT_NE(trust.error().message.find("/keys/5/identity: key " + drill_sato_.keyId()),
            std::string::npos)
      << trust.error().message;

  // The drill role under any other name, too.
  doc = base();
  doc["keys"].push_back(keyEntry(drill_sato_, "op:kato", {"drill"}));
  trust = parse(doc);
  ASSERT_FALSE(trust.ok());
  EXPECT_NE(trust.error().message.find("drill keys are never accepted by a production trust file"),
            std::string::npos);
}

TEST_F(TrustPurposeTest, LabFileRefusesOperatorAndBreakglassRoles) {
  for (const std::vector<std::string>& roles :
       {std::vector<std::string>{"operator"}, std::vector<std::string>{"operator", "breakglass"}}) {
    json doc = lab();
    doc["keys"].push_back(keyEntry(sato_, "op:sato", roles));
    auto trust = parse(doc);
    ASSERT_FALSE(trust.ok());
    EXPECT_NE(trust.error().message.find("trust.json: /keys/4/roles: key " + sato_.keyId() +
                                         " of \"op:sato\" holds \"operator\": a lab trust "
                                         "file holds no operator or breakglass key"),
              std::string::npos)
        << trust.error().message;
  }
}

TEST_F(TrustPurposeTest, DrillIdentityHoldsOnlyTheDrillRole) {
  json doc = lab();
  doc["keys"][0]["roles"] = {"drill", "controller"};
  auto trust = parse(doc);
  ASSERT_FALSE(trust.ok());
  EXPECT_NE(trust.error().message.find("mixes roles"), std::string::npos);

  using R = TrustRole;
  EXPECT_TRUE(checkIdentityRoles("drill:sato", {R::kDrill}).ok());
  for (const std::set<TrustRole>& roles :
       {std::set<TrustRole>{R::kOperator}, std::set<TrustRole>{R::kDrill, R::kOperator},
        std::set<TrustRole>{R::kBreakglass}}) {
    Status rule = checkIdentityRoles("drill:sato", roles);
    ASSERT_FALSE(rule.ok());
    EXPECT_NE(rule.error().message.find("a drill:<name> identity holds only \"drill\""),
              std::string::npos)
        << rule.error().message;
  }
  Status op = checkIdentityRoles("op:sato", {R::kDrill});
  ASSERT_FALSE(op.ok());
  EXPECT_NE(op.error().message.find("may not hold the role \"drill\""), std::string::npos);
  EXPECT_EQ(trustRoleFromName("drill"), R::kDrill);
}

TEST_F(TrustPurposeTest, DrillKeysSignAsOperatorsForDrillOrdersOnly) {
  const Trust trust = parse(lab()).value();
  const TrustKey* drill = trust.findKey(drill_sato_.keyId());
  ASSERT_NE(drill, nullptr);
  EXPECT_TRUE(drill->signsAsOperator(/*drill_order=*/true));
  EXPECT_FALSE(drill->signsAsOperator(/*drill_order=*/false));
  const TrustKey* controller = trust.findKey(controller_.keyId());
  EXPECT_FALSE(controller->signsAsOperator(true));
  const Trust production = parse(base()).value();
  const TrustKey* sato = production.findKey(sato_.keyId());
  EXPECT_TRUE(sato->signsAsOperator(false));
  EXPECT_TRUE(sato->signsAsOperator(true));
}

TEST_F(TrustPurposeTest, SerializeTrustRoundTrips) {
  json with_thresholds = base();
  with_thresholds["thresholds"] = {{"restore", {{"operators", 1}}},
                                   {"release", {{"controller_on_behalf", false}}},
                                   {"scopes", {{"host", "isolate_protected"}}}};
  for (const json& doc : {base(), lab(), with_thresholds}) {
    const Trust trust = parse(doc).value();
    const std::string text = serializeTrust(trust);
    auto again = parseTrust(text, "serialized");
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, trust);
  }
  // A Trust built in code (the drill runner's way) parses as a lab file.
  Trust built;
  built.version = 1;
  built.expires_at_ms = parseRfc3339UtcMillis("2027-01-01T00:00:00Z").value();
  built.purpose = TrustPurpose::kLab;
  built.keys.push_back(
      {drill_sato_.keyId(), drill_sato_.publicKey(), "drill:sato", {TrustRole::kDrill}});
  built.keys.push_back(
      {controller_.keyId(), controller_.publicKey(), "controller", {TrustRole::kController}});
  auto parsed = parseTrust(serializeTrust(built), "built");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, built);
  EXPECT_NE(serializeTrust(built).find(R"("purpose":"lab")"), std::string::npos);
}

}  // namespace
}  // namespace shadan
