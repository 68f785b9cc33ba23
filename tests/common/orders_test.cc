#include "common/orders.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace shadan {
namespace {

using nlohmann::json;

constexpr const char* kAuthzExample =
    R"({"v":1, "command_id":"5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f",
  "action":"isolate", "segment":"lgwan", "profile":"full", "segment_gen":57,
  "targets":["core-gw","inet-gw"], "ttl_s": 1800,
  "requested_by":"op:sato", "reason":"JPCERT notice 2026-11-26", "ticket":"INC-4711",
  "correlation_id":"inc-4711", "drill": false,
  "issued_at":"2026-11-26T10:01:00Z", "expires_at":"2026-11-26T10:31:00Z"})";

constexpr const char* kAckExample = R"({"v":1, "agent_id":"core-gw", "seq":1842,
  "command_id":"5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f",
  "result":"applied", "reason":null,
  "state_after":{"isolated":["lgwan:full"]},
  "ruleset_sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "received_at":"2026-11-26T10:01:02Z", "applied_at":"2026-11-26T10:01:02.250Z",
  "audit":{"log_seq":90211,
           "entry_hash":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}})";

int64_t ms(const char* text) { return parseRfc3339UtcMillis(text).value(); }

struct BadCase {
  const char* name;
  std::function<void(json&)> edit;
  const char* expected;  // substring of the error: the pointer and/or reason
};

TEST(OrdersTimeTest, ParsesUtcOnly) {
  EXPECT_EQ(parseRfc3339UtcMillis("1970-01-01T00:00:00Z").value(), 0);
  EXPECT_EQ(parseRfc3339UtcMillis("2026-11-18T11:13:21.5Z").value(), 1'795'000'401'500);
  EXPECT_EQ(parseRfc3339UtcMillis("2026-11-18T11:13:21.123456789Z").value(), 1'795'000'401'123);
  EXPECT_EQ(parseRfc3339UtcMillis("2024-02-29T00:00:00Z").value(), 1'709'164'800'000);
  for (const char* bad :
       {"2026-11-18T20:13:21+09:00", "2026-11-18T11:13:21", "2026-11-18 11:13:21Z",
        "2026-11-18t11:13:21Z", "2026-11-18T11:13:21z", "2026-13-18T11:13:21Z",
        "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-18T24:00:00Z", "2026-11-18T11:60:00Z", "2026-12-31T23:59:60Z",
        "2026-11-18T11:13:21.Z", "2026-11-18T11:13:21.1234567890Z", "1969-12-31T23:59:59Z",
        "2026-11-18T11:13:21ZZ", "", "+2026-11-18T11:13:21Z", "2026-1-18T11:13:21Z"}) {
    EXPECT_FALSE(parseRfc3339UtcMillis(bad).ok()) << bad;
  }
}

TEST(OrdersTest, PayloadTypesAreDistinct) {
  EXPECT_EQ(kAuthzPayloadType, "application/vnd.shadan.authz.v1+json");
  EXPECT_EQ(kDispatchPayloadType, "application/vnd.shadan.dispatch.v1+json");
  EXPECT_EQ(kAckPayloadType, "application/vnd.shadan.ack.v1+json");
}

TEST(OrdersTest, ParsesTheProtocolAuthzExample) {
  auto authz = parseAuthz(kAuthzExample);
  ASSERT_TRUE(authz.ok()) << authz.error().message;
  EXPECT_EQ(authz->command_id, "5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f");
  EXPECT_EQ(authz->action, OrderAction::kIsolate);
  EXPECT_EQ(authz->segment, "lgwan");
  EXPECT_EQ(authz->profile, "full");
  EXPECT_EQ(authz->segment_gen, 57);
  EXPECT_EQ(authz->targets, (std::vector<std::string>{"core-gw", "inet-gw"}));
  EXPECT_EQ(authz->ttl_s, 1800);
  EXPECT_EQ(authz->requested_by, "op:sato");
  EXPECT_EQ(authz->reason, "JPCERT notice 2026-11-26");
  EXPECT_EQ(authz->ticket, "INC-4711");
  EXPECT_EQ(authz->correlation_id, "inc-4711");
  EXPECT_FALSE(authz->drill);
  EXPECT_EQ(authz->issued_at_ms, ms("2026-11-26T10:01:00Z"));
  EXPECT_EQ(authz->expires_at_ms, ms("2026-11-26T10:31:00Z"));
  EXPECT_FALSE(authz->on_behalf_of.has_value());
  // Round trip.
  auto again = parseAuthz(serializeAuthz(*authz));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *authz);
}

TEST(OrdersTest, AuthzOptionalMembersMayBeAbsent) {
  json doc = json::parse(kAuthzExample);
  for (const char* name : {"ttl_s", "ticket", "correlation_id"}) doc.erase(name);
  doc["action"] = "restore";
  doc["on_behalf_of"] = "detector:ids-1";
  auto authz = parseAuthz(doc.dump());
  ASSERT_TRUE(authz.ok()) << authz.error().message;
  EXPECT_EQ(authz->action, OrderAction::kRestore);
  EXPECT_FALSE(authz->ttl_s.has_value());
  EXPECT_FALSE(authz->ticket.has_value());
  EXPECT_EQ(authz->on_behalf_of, "detector:ids-1");
  EXPECT_EQ(parseAuthz(serializeAuthz(*authz)).value(), *authz);
}

TEST(OrdersTest, RefusesBadAuthz) {
  const std::vector<BadCase> cases = {
      {"unknown member", [](json& d) { d["priority"] = 1; }, "/: unknown member"},
      {"missing reason", [](json& d) { d.erase("reason"); }, "missing member \"reason\""},
      {"empty reason", [](json& d) { d["reason"] = ""; }, "/reason: must not be empty"},
      {"missing drill", [](json& d) { d.erase("drill"); }, "missing member \"drill\""},
      {"version 2", [](json& d) { d["v"] = 2; }, "/v"},
      {"bad uuid", [](json& d) { d["command_id"] = "not-a-uuid"; }, "/command_id"},
      {"upper-case uuid", [](json& d) { d["command_id"] = "5F0C7A4E-2B1D-4C3A-9E8F-0A1B2C3D4E5F"; },
       "/command_id"},
      {"unknown action", [](json& d) { d["action"] = "delete"; }, "/action"},
      {"negative gen", [](json& d) { d["segment_gen"] = -1; }, "/segment_gen"},
      {"float gen", [](json& d) { d["segment_gen"] = 57.5; }, "/segment_gen"},
      {"gen as string", [](json& d) { d["segment_gen"] = "57"; }, "/segment_gen"},
      {"empty targets", [](json& d) { d["targets"] = json::array(); }, "/targets"},
      {"target not string", [](json& d) { d["targets"][1] = 7; }, "/targets/1"},
      {"duplicate target", [](json& d) { d["targets"][1] = "core-gw"; }, "/targets/1"},
      {"ttl zero", [](json& d) { d["ttl_s"] = 0; }, "/ttl_s"},
      {"ttl on restore", [](json& d) { d["action"] = "restore"; }, "/ttl_s"},
      {"null ticket", [](json& d) { d["ticket"] = nullptr; }, "/ticket"},
      {"drill as string", [](json& d) { d["drill"] = "false"; }, "/drill"},
      {"local time", [](json& d) { d["issued_at"] = "2026-11-26T19:01:00+09:00"; }, "/issued_at"},
      {"expires before issued", [](json& d) { d["expires_at"] = "2026-11-26T10:00:00Z"; },
       "/expires_at"},
      {"expires equal issued", [](json& d) { d["expires_at"] = d["issued_at"]; }, "/expires_at"},
      {"control character", [](json& d) { d["reason"] = "a\nb"; }, "/reason"},
      {"empty on_behalf_of", [](json& d) { d["on_behalf_of"] = ""; }, "/on_behalf_of"},
      {"automatic written false", [](json& d) { d["automatic"] = false; },
       "/automatic: must be true when present"},
      {"automatic as string", [](json& d) { d["automatic"] = "true"; }, "/automatic"},
      {"automatic as number", [](json& d) { d["automatic"] = 1; }, "/automatic"},
      {"automatic null", [](json& d) { d["automatic"] = nullptr; }, "/automatic"},
      {"not an object", [](json& d) { d = json::array(); }, "must be an object"},
  };
  for (const BadCase& c : cases) {
    json doc = json::parse(kAuthzExample);
    c.edit(doc);
    auto authz = parseAuthz(doc.dump());
    ASSERT_FALSE(authz.ok()) << c.name;
    EXPECT_EQ(authz.error().code, ErrorCode::kParse) << c.name;
    EXPECT_NE(authz.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << authz.error().message;
    EXPECT_EQ(authz.error().message.rfind("authz: ", 0), 0u) << authz.error().message;
  }
}

// The example as an order of another rung: scope set, segment as the rung needs it.
json rungDoc(const char* scope) {
  json doc = json::parse(kAuthzExample);
  doc["scope"] = scope;
  if (std::string(scope) == "host") {
    doc["hosts"] = {"10.20.0.5", "10.20.0.64/26", "fd00:20::7"};
  } else if (std::string(scope) != "segment") {
    doc.erase("segment");
  }
  return doc;
}

TEST(OrdersTest, AuthzOfEveryRungRoundTrips) {
  auto host = parseAuthz(rungDoc("host").dump());
  ASSERT_TRUE(host.ok()) << host.error().message;
  EXPECT_EQ(host->scope, IsolationScope::kHost);
  EXPECT_EQ(host->segment, "lgwan");
  const std::vector<IpPrefix> hosts = {IpPrefix::parse("10.20.0.5").value(),
                                       IpPrefix::parse("10.20.0.64/26").value(),
                                       IpPrefix::parse("fd00:20::7").value()};
  EXPECT_EQ(host->hosts, hosts);
  EXPECT_FALSE(host->link_down);

  json uplink_doc = rungDoc("uplink");
  uplink_doc["link_down"] = true;
  auto uplink = parseAuthz(uplink_doc.dump());
  ASSERT_TRUE(uplink.ok()) << uplink.error().message;
  EXPECT_EQ(uplink->scope, IsolationScope::kUplink);
  EXPECT_EQ(uplink->segment, "");
  EXPECT_TRUE(uplink->hosts.empty());
  EXPECT_TRUE(uplink->link_down);

  auto island = parseAuthz(rungDoc("island").dump());
  ASSERT_TRUE(island.ok()) << island.error().message;
  EXPECT_EQ(island->scope, IsolationScope::kIsland);
  EXPECT_EQ(island->segment, "");
  EXPECT_FALSE(island->link_down);

  // "scope": "segment" spelt out is the same order as the scope left out.
  auto segment = parseAuthz(rungDoc("segment").dump());
  ASSERT_TRUE(segment.ok()) << segment.error().message;
  EXPECT_EQ(*segment, parseAuthz(kAuthzExample).value());

  for (const Authz& authz : {*host, *uplink, *island, *segment}) {
    const std::string text = serializeAuthz(authz);
    auto again = parseAuthz(text);
    ASSERT_TRUE(again.ok()) << text << ": " << again.error().message;
    EXPECT_EQ(*again, authz) << text;
  }
  // On the wire: hosts as written, the segment only where the rung has one.
  const json host_wire = json::parse(serializeAuthz(*host));
  EXPECT_EQ(host_wire["scope"], "host");
  EXPECT_EQ(host_wire["segment"], "lgwan");
  EXPECT_EQ(host_wire["hosts"], json({"10.20.0.5", "10.20.0.64/26", "fd00:20::7"}));
  EXPECT_FALSE(host_wire.contains("link_down"));
  const json uplink_wire = json::parse(serializeAuthz(*uplink));
  EXPECT_EQ(uplink_wire["scope"], "uplink");
  EXPECT_EQ(uplink_wire["link_down"], true);
  EXPECT_FALSE(uplink_wire.contains("segment"));
  EXPECT_FALSE(uplink_wire.contains("hosts"));
  const json island_wire = json::parse(serializeAuthz(*island));
  EXPECT_EQ(island_wire["scope"], "island");
  EXPECT_FALSE(island_wire.contains("segment"));
  EXPECT_FALSE(island_wire.contains("link_down"));
  // An uplink isolate without link_down writes no link_down at all.
  Authz plain_uplink = *uplink;
  plain_uplink.link_down = false;
  EXPECT_FALSE(json::parse(serializeAuthz(plain_uplink)).contains("link_down"));
}

TEST(OrdersTest, BorderingTargetsRoundTripForSegmentAndHostOnly) {
  for (const char* scope : {"segment", "host"}) {
    json doc = rungDoc(scope);
    doc["targets"] = "bordering";
    auto authz = parseAuthz(doc.dump());
    ASSERT_TRUE(authz.ok()) << scope << ": " << authz.error().message;
    EXPECT_TRUE(authz->targets_bordering);
    EXPECT_TRUE(authz->targets.empty());
    const json wire = json::parse(serializeAuthz(*authz));
    EXPECT_EQ(wire["targets"], "bordering");
    EXPECT_EQ(parseAuthz(wire.dump()).value(), *authz);
  }
  // A list keeps being written as a list; the flag alone decides.
  Authz listed = parseAuthz(kAuthzExample).value();
  EXPECT_TRUE(json::parse(serializeAuthz(listed))["targets"].is_array());
  listed.targets_bordering = true;
  EXPECT_EQ(json::parse(serializeAuthz(listed))["targets"], "bordering");

  for (const char* scope : {"uplink", "island"}) {
    json doc = rungDoc(scope);
    doc["targets"] = "bordering";
    auto refused = parseAuthz(doc.dump());
    ASSERT_FALSE(refused.ok()) << scope;
    EXPECT_NE(
        refused.error().message.find("authz: /targets: \"bordering\" is for segment and host"),
        std::string::npos)
        << refused.error().message;
  }
  for (const json& bad : {json("all"), json(""), json("Bordering")}) {
    json doc = rungDoc("segment");
    doc["targets"] = bad;
    auto refused = parseAuthz(doc.dump());
    ASSERT_FALSE(refused.ok()) << bad.dump();
    EXPECT_NE(refused.error().message.find("/targets"), std::string::npos);
  }
  // 1,024 distinct targets parse; a duplicate among them is still found.
  json many = rungDoc("segment");
  many["targets"] = json::array();
  for (int i = 0; i < 1024; ++i) many["targets"].push_back("gw-" + std::to_string(i));
  EXPECT_EQ(parseAuthz(many.dump()).value().targets.size(), 1024u);
  many["targets"][700] = "gw-3";
  auto duplicate = parseAuthz(many.dump());
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("duplicate target \"gw-3\""), std::string::npos)
      << duplicate.error().message;
}

// A segment order keeps the bytes it had before the ladder, so old signatures still verify and
// old agents still read it.
TEST(OrdersTest, SegmentOrderSerialisesWithoutTheLadderMembers) {
  const Authz authz = parseAuthz(kAuthzExample).value();
  EXPECT_EQ(authz.scope, IsolationScope::kSegment);
  const json wire = json::parse(serializeAuthz(authz));
  for (const char* member : {"scope", "hosts", "link_down"}) {
    EXPECT_FALSE(wire.contains(member)) << member;
  }
  EXPECT_EQ(wire["segment"], "lgwan");
  json expected = json::parse(kAuthzExample);
  expected["issued_at"] = "2026-11-26T10:01:00.000Z";
  expected["expires_at"] = "2026-11-26T10:31:00.000Z";
  EXPECT_EQ(wire, expected);
}

// The bytes of an order that is not automatic are the bytes it always had: its signature, and
// every golden payload made before `automatic` existed, stay valid.
TEST(OrdersTest, NonAutomaticAuthzKeepsItsExactBytes) {
  const Authz authz = parseAuthz(kAuthzExample).value();
  EXPECT_FALSE(authz.automatic);
  EXPECT_EQ(serializeAuthz(authz),
            R"({"action":"isolate","command_id":"5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f",)"
            R"("correlation_id":"inc-4711","drill":false,"expires_at":"2026-11-26T10:31:00.000Z",)"
            R"("issued_at":"2026-11-26T10:01:00.000Z","profile":"full",)"
            R"("reason":"JPCERT notice 2026-11-26","requested_by":"op:sato","segment":"lgwan",)"
            R"("segment_gen":57,"targets":["core-gw","inet-gw"],"ticket":"INC-4711",)"
            R"("ttl_s":1800,"v":1})");
}

TEST(OrdersTest, AutomaticIsolateAndReleaseRoundTrip) {
  json doc = json::parse(kAuthzExample);
  doc["automatic"] = true;
  doc["on_behalf_of"] = "detector:ids-1";
  doc["requested_by"] = "detector:ids-1";
  auto isolate = parseAuthz(doc.dump());
  ASSERT_TRUE(isolate.ok()) << isolate.error().message;
  EXPECT_TRUE(isolate->automatic);
  const std::string wire = serializeAuthz(*isolate);
  EXPECT_EQ(json::parse(wire)["automatic"], true);
  EXPECT_EQ(parseAuthz(wire).value(), *isolate);
  // Set and cleared, the bytes differ only by the member.
  Authz plain = *isolate;
  plain.automatic = false;
  json plain_wire = json::parse(serializeAuthz(plain));
  EXPECT_FALSE(plain_wire.contains("automatic"));
  plain_wire["automatic"] = true;
  EXPECT_EQ(plain_wire, json::parse(wire));

  // A release: an automatic restore (no ttl, as every restore).
  doc.erase("ttl_s");
  doc["action"] = "restore";
  auto release = parseAuthz(doc.dump());
  ASSERT_TRUE(release.ok()) << release.error().message;
  EXPECT_EQ(release->action, OrderAction::kRestore);
  EXPECT_TRUE(release->automatic);
  EXPECT_EQ(parseAuthz(serializeAuthz(*release)).value(), *release);
}

TEST(OrdersTest, RefusesBadRungs) {
  struct RungCase {
    const char* name;
    const char* scope;
    std::function<void(json&)> edit;
    const char* expected;
  };
  std::vector<std::string> many;
  for (int i = 0; i <= 256; ++i) {
    many.push_back("10.20." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  }
  std::vector<std::string> most(many.begin(), many.end() - 1);
  const std::vector<RungCase> cases = {
      {"unknown scope", "segment", [](json& d) { d["scope"] = "building"; },
       "/scope: must be \"host\", \"segment\", \"uplink\" or \"island\""},
      {"scope in capitals", "segment", [](json& d) { d["scope"] = "HOST"; }, "/scope"},
      {"scope not a string", "segment", [](json& d) { d["scope"] = 1; }, "/scope"},
      {"hosts on a segment order", "segment", [](json& d) { d["hosts"] = {"10.20.0.5"}; },
       "/hosts: only a host order names hosts"},
      {"hosts on an uplink order", "uplink", [](json& d) { d["hosts"] = {"10.20.0.5"}; },
       "/hosts: only a host order names hosts"},
      {"segment on an uplink order", "uplink", [](json& d) { d["segment"] = "lgwan"; },
       "/segment: an uplink or island order names no segment"},
      {"segment on an island order", "island", [](json& d) { d["segment"] = "lgwan"; },
       "/segment: an uplink or island order names no segment"},
      {"host order without a segment", "host", [](json& d) { d.erase("segment"); },
       "/segment: is required for this scope"},
      {"host order without hosts", "host", [](json& d) { d.erase("hosts"); }, "\"hosts\""},
      {"host order with no host", "host", [](json& d) { d["hosts"] = json::array(); },
       "/hosts: must be an array of 1 to 256 addresses or prefixes"},
      {"hosts not an array", "host", [](json& d) { d["hosts"] = "10.20.0.5"; }, "/hosts"},
      {"host not a string", "host", [](json& d) { d["hosts"][1] = 5; }, "/hosts/1"},
      {"host malformed", "host", [](json& d) { d["hosts"][2] = "10.20.0.300"; }, "/hosts/2"},
      {"host with host bits", "host", [](json& d) { d["hosts"][0] = "10.20.0.5/24"; }, "/hosts/0"},
      {"host too wide (IPv4 /23)", "host", [](json& d) { d["hosts"][1] = "10.20.0.0/23"; },
       "/hosts/1: wider than /24"},
      {"host too wide (IPv6 /119)", "host", [](json& d) { d["hosts"][2] = "fd00:20::/119"; },
       "/hosts/2: wider than /120"},
      {"duplicate host", "host", [](json& d) { d["hosts"][2] = "10.20.0.5/32"; },
       "/hosts/2: duplicate host 10.20.0.5"},
      {"more than 256 hosts", "host", [&](json& d) { d["hosts"] = many; },
       "/hosts: must be an array of 1 to 256"},
      {"link_down on a segment order", "segment", [](json& d) { d["link_down"] = true; },
       "/link_down: only an uplink isolate sets links down"},
      {"link_down false on a segment order", "segment", [](json& d) { d["link_down"] = false; },
       "/link_down: only an uplink isolate sets links down"},
      {"link_down on a host order", "host", [](json& d) { d["link_down"] = true; },
       "/link_down: only an uplink isolate sets links down"},
      {"link_down on an island order", "island", [](json& d) { d["link_down"] = true; },
       "/link_down: only an uplink isolate sets links down"},
      {"link_down on an uplink restore", "uplink",
       [](json& d) {
         d["action"] = "restore";
         d.erase("ttl_s");
         d["link_down"] = true;
       },
       "/link_down: only an uplink isolate sets links down"},
      {"link_down not a boolean", "uplink", [](json& d) { d["link_down"] = "yes"; }, "/link_down"},
  };
  for (const RungCase& c : cases) {
    json doc = rungDoc(c.scope);
    c.edit(doc);
    auto authz = parseAuthz(doc.dump());
    ASSERT_FALSE(authz.ok()) << c.name;
    EXPECT_EQ(authz.error().code, ErrorCode::kParse) << c.name;
    EXPECT_NE(authz.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << authz.error().message;
    EXPECT_EQ(authz.error().message.rfind("authz: ", 0), 0u) << authz.error().message;
  }
  // The limits themselves are accepted: 256 hosts, /24 and /120.
  json limits = rungDoc("host");
  limits["hosts"] = most;
  EXPECT_TRUE(parseAuthz(limits.dump()).ok());
  limits["hosts"] = {"10.20.0.0/24", "fd00:20::/120"};
  auto widest = parseAuthz(limits.dump());
  ASSERT_TRUE(widest.ok()) << widest.error().message;
  EXPECT_EQ(widest->hosts.size(), 2u);
  // An uplink restore without link_down is fine.
  json restore = rungDoc("uplink");
  restore["action"] = "restore";
  restore.erase("ttl_s");
  EXPECT_TRUE(parseAuthz(restore.dump()).ok());
}

TEST(OrdersTest, RefusesDuplicateKeysAndOversizedPayloads) {
  std::string text = kAuthzExample;
  text.insert(1, R"("action":"restore",)");
  auto dup = parseAuthz(text);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("duplicate key"), std::string::npos);

  json doc = json::parse(kAuthzExample);
  doc["reason"] = std::string(4000, 'r');
  doc["ticket"] = std::string(200, 't');
  std::string big = doc.dump();
  big.append(kOrderMaxPayloadBytes, ' ');  // whitespace is valid JSON, only the size is wrong
  auto oversized = parseAuthz(big);
  ASSERT_FALSE(oversized.ok());
  EXPECT_EQ(oversized.error().code, ErrorCode::kParse);
  EXPECT_TRUE(parseAuthz(doc.dump()).ok());
}

DsseEnvelope someEnvelope() {
  Ed25519Signer signer(Ed25519KeyPair::fromSeed(std::vector<uint8_t>(32, 9)).value());
  const Signer* signers[] = {&signer};
  return signDsse(kAuthzPayloadType, kAuthzExample, signers).value();
}

json dispatchDoc() {
  return {{"v", 1},
          {"agent_id", "core-gw"},
          {"agent_key", std::string(64, 'c')},
          {"seq", 1842},
          {"issued_at", "2026-11-26T10:01:01Z"},
          {"expires_at", "2026-11-26T10:06:01Z"},
          {"authz", dsseEnvelopeToJson(someEnvelope())}};
}

TEST(OrdersTest, DispatchRoundTrip) {
  auto dispatch = parseDispatch(dispatchDoc().dump());
  ASSERT_TRUE(dispatch.ok()) << dispatch.error().message;
  EXPECT_EQ(dispatch->agent_id, "core-gw");
  EXPECT_EQ(dispatch->agent_key, std::string(64, 'c'));
  EXPECT_EQ(dispatch->seq, 1842);
  EXPECT_EQ(dispatch->issued_at_ms, ms("2026-11-26T10:01:01Z"));
  EXPECT_EQ(dispatch->authz, someEnvelope());
  EXPECT_EQ(dispatch->authz.payload, kAuthzExample);
  EXPECT_EQ(parseDispatch(serializeDispatch(*dispatch)).value(), *dispatch);
}

TEST(OrdersTest, RefusesBadDispatch) {
  const std::vector<BadCase> cases = {
      {"unknown member", [](json& d) { d["priority"] = 1; }, "unknown member"},
      {"missing authz", [](json& d) { d.erase("authz"); }, "missing member \"authz\""},
      {"seq zero", [](json& d) { d["seq"] = 0; }, "/seq"},
      {"seq huge", [](json& d) { d["seq"] = 18446744073709551615ull; }, "/seq"},
      {"agent_key not hex", [](json& d) { d["agent_key"] = "core-gw-key"; }, "/agent_key"},
      {"empty agent_id", [](json& d) { d["agent_id"] = ""; }, "/agent_id"},
      {"authz not envelope", [](json& d) { d["authz"] = json::parse(kAuthzExample); },
       "/authz: unknown member"},
      {"authz extra member", [](json& d) { d["authz"]["x"] = 1; }, "/authz: unknown member"},
      {"authz bad base64", [](json& d) { d["authz"]["payload"] = "%%"; }, "/authz/payload"},
      {"expires before issued", [](json& d) { d["expires_at"] = "2026-11-26T10:00:00Z"; },
       "/expires_at"},
  };
  for (const BadCase& c : cases) {
    json doc = dispatchDoc();
    c.edit(doc);
    auto dispatch = parseDispatch(doc.dump());
    ASSERT_FALSE(dispatch.ok()) << c.name;
    EXPECT_NE(dispatch.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << dispatch.error().message;
  }
}

TEST(OrdersTest, ParsesTheProtocolAckExample) {
  auto ack = parseAck(kAckExample);
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->agent_id, "core-gw");
  EXPECT_EQ(ack->seq, 1842);
  EXPECT_EQ(ack->command_id, "5f0c7a4e-2b1d-4c3a-9e8f-0a1b2c3d4e5f");
  EXPECT_EQ(ack->result, AckResult::kApplied);
  EXPECT_FALSE(ack->reason.has_value());
  EXPECT_EQ(ack->isolated, std::vector<std::string>{"lgwan:full"});
  EXPECT_EQ(ack->received_at_ms, ms("2026-11-26T10:01:02Z"));
  EXPECT_EQ(ack->applied_at_ms, ms("2026-11-26T10:01:02.250Z"));
  EXPECT_EQ(ack->audit.log_seq, 90211);
  EXPECT_EQ(parseAck(serializeAck(*ack)).value(), *ack);
}

TEST(OrdersTest, RejectedAckCarriesAReason) {
  json doc = json::parse(kAckExample);
  doc["result"] = "rejected";
  doc["reason"] = "replayed_seq";
  doc["command_id"] = nullptr;
  doc["applied_at"] = nullptr;
  auto ack = parseAck(doc.dump());
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->result, AckResult::kRejected);
  EXPECT_EQ(ack->reason, "replayed_seq");
  EXPECT_FALSE(ack->command_id.has_value());
  EXPECT_FALSE(ack->applied_at_ms.has_value());
  EXPECT_EQ(parseAck(serializeAck(*ack)).value(), *ack);
}

TEST(OrdersTest, AckListsIsolationsOfEveryRung) {
  json doc = json::parse(kAckExample);
  const std::vector<std::string> labels = {
      "lgwan:full",   "lgwan/10.20.0.5/32:full", "v6/fd00:20::5/128:full", "lgwan/*:full",
      "@uplink:full", "@island:internet-only"};
  doc["state_after"]["isolated"] = labels;
  auto ack = parseAck(doc.dump());
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->isolated, labels);
  EXPECT_EQ(parseAck(serializeAck(*ack)).value(), *ack);

  for (const char* bad : {"@uplink", "@building:full", "lgwan/10.20.0.1/16:full", "lgwan/host:full",
                          "lgwan/:full", "lgwan:full:x", ":full"}) {
    doc["state_after"]["isolated"] = {"lgwan:full", bad};
    auto refused = parseAck(doc.dump());
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.error().message.find("/state_after/isolated/1"), std::string::npos)
        << bad << ": " << refused.error().message;
  }
}

TEST(OrdersTest, RefusesBadAck) {
  const std::vector<BadCase> cases = {
      {"unknown result", [](json& d) { d["result"] = "ok"; }, "/result"},
      {"rejected without reason", [](json& d) { d["result"] = "rejected"; }, "/reason"},
      {"missing reason", [](json& d) { d.erase("reason"); }, "missing member \"reason\""},
      {"unknown member", [](json& d) { d["extra"] = true; }, "unknown member"},
      {"state_after extra", [](json& d) { d["state_after"]["routes"] = 1; }, "/state_after"},
      {"isolated malformed", [](json& d) { d["state_after"]["isolated"] = {"lgwan"}; },
       "/state_after/isolated/0"},
      {"ruleset not hex", [](json& d) { d["ruleset_sha256"] = "xyz"; }, "/ruleset_sha256"},
      {"audit missing hash", [](json& d) { d["audit"].erase("entry_hash"); }, "/audit"},
      {"audit negative seq", [](json& d) { d["audit"]["log_seq"] = -1; }, "/audit/log_seq"},
      {"received_at offset", [](json& d) { d["received_at"] = "2026-11-26T10:01:02+00:00"; },
       "/received_at"},
      {"bad command id", [](json& d) { d["command_id"] = "x"; }, "/command_id"},
  };
  for (const BadCase& c : cases) {
    json doc = json::parse(kAckExample);
    c.edit(doc);
    auto ack = parseAck(doc.dump());
    ASSERT_FALSE(ack.ok()) << c.name;
    EXPECT_NE(ack.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << ack.error().message;
  }
}

}  // namespace
}  // namespace shadan
