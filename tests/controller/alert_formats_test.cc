#include "controller/alerts/alert_formats.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/sha256.h"

namespace shadan::controller {
namespace {

const std::filesystem::path kFixtures =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "controller" / "fixtures" / "alerts";

std::string readFixture(const std::string& name) {
  std::ifstream in(kFixtures / name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The non-blank lines of a fixture, as the parser should see each record.
std::vector<std::string> fixtureLines(const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream in(readFixture(name));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

IpPrefix ip(const std::string& text) { return IpPrefix::parse(text).value(); }

// The message of a refused record, or "<accepted>".
std::string errorOf(std::string_view record, AlertFormat format) {
  auto alert = parseAlert(record, format);
  return alert.ok() ? "<accepted>" : alert.error().message;
}

std::string repeat(std::string_view unit, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) out += unit;
  return out;
}

// A valid record of each format, as a template to break one member at a time.
constexpr std::string_view kShadan =
    R"({"source":"ids","rule":"r1","src_ip":"10.0.0.1","time":"2024-01-02T03:04:05Z"})";
constexpr std::string_view kEve =
    R"({"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"alert",)"
    R"("src_ip":"10.0.0.1","dest_ip":"10.0.0.2","alert":{"signature_id":2001,)"
    R"("signature":"sig","category":"cat","severity":2}})";
constexpr std::string_view kZeek =
    R"({"ts":1704164645.5,"note":"Scan::Port_Scan","msg":"scan","src":"10.0.0.1"})";

// ---------------------------------------------------------------------------------------------
// Fixtures: records as the detectors write them

TEST(AlertFormatsTest, EveFixtureTakesAlertsAndRefusesOtherEventTypesOneByOne) {
  const std::string body = readFixture("eve.json");
  auto batch = parseAlertBatch(body, AlertFormat::kEve);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  const std::vector<std::string> lines = fixtureLines("eve.json");
  ASSERT_EQ(batch->size(), 6u);
  for (size_t i = 0; i < batch->size(); ++i) {
    EXPECT_EQ((*batch)[i].index, i);
    EXPECT_EQ((*batch)[i].raw_sha256, sha256Hex(lines[i])) << i;
  }
  ASSERT_FALSE((*batch)[0].alert.ok());
  EXPECT_EQ((*batch)[0].alert.error().message,
            "record 0: /event_type: not an alert record (\"flow\")");
  ASSERT_FALSE((*batch)[1].alert.ok());
  EXPECT_EQ((*batch)[1].alert.error().message,
            "record 1: /event_type: not an alert record (\"dns\")");
  ASSERT_FALSE((*batch)[5].alert.ok());
  EXPECT_EQ((*batch)[5].alert.error().message,
            "record 5: /event_type: not an alert record (\"stats\")");

  // With flow, metadata, http, payload (control characters in payload_printable are ignored).
  ASSERT_TRUE((*batch)[2].alert.ok()) << (*batch)[2].alert.error().message;
  Alert http;
  http.format = AlertFormat::kEve;
  http.source = "suricata";
  http.rule = "2018358";
  http.signature_id = 2018358;
  http.title = "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1";
  http.category = "Potentially Bad Traffic";
  http.severity = AlertSeverity::kMedium;
  http.src = ip("10.20.0.15");
  http.dst = ip("198.51.100.23");
  http.time_ms = 1709647333517;
  EXPECT_EQ(*(*batch)[2].alert, http);

  ASSERT_TRUE((*batch)[3].alert.ok()) << (*batch)[3].alert.error().message;
  const Alert& v6 = *(*batch)[3].alert;
  EXPECT_EQ(v6.src, ip("2001:db8:20::15"));
  EXPECT_EQ(v6.dst, ip("2001:db8:30::7"));
  EXPECT_EQ(v6.severity, AlertSeverity::kLow);
  EXPECT_EQ(v6.time_ms, 1709647334000);

  // No classtype, so no category; priority 1; a +0100 offset.
  ASSERT_TRUE((*batch)[4].alert.ok()) << (*batch)[4].alert.error().message;
  const Alert& ssh = *(*batch)[4].alert;
  EXPECT_EQ(ssh.category, "");
  EXPECT_EQ(ssh.severity, AlertSeverity::kHigh);
  EXPECT_EQ(ssh.rule, "9000101");
  EXPECT_EQ(ssh.time_ms, 1709647335250);
}

TEST(AlertFormatsTest, ZeekFixtureFallsBackOnTheConnectionPerSide) {
  auto batch = parseAlertBatch(readFixture("notice.log"), AlertFormat::kZeek);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 4u);
  for (const AlertRecord& record : *batch) {
    ASSERT_TRUE(record.alert.ok()) << record.alert.error().message;
    EXPECT_EQ(record.alert->source, "zeek");
    EXPECT_EQ(record.alert->severity, AlertSeverity::kMedium);
    EXPECT_EQ(record.alert->category, "");
    EXPECT_FALSE(record.alert->signature_id.has_value());
  }
  const Alert& scan = *(*batch)[0].alert;
  EXPECT_EQ(scan.rule, "Scan::Port_Scan");
  EXPECT_EQ(scan.title, "10.20.0.15 scanned at least 15 unique ports of host 10.30.0.7 in 0m2s");
  EXPECT_EQ(scan.src, ip("10.20.0.15"));
  EXPECT_EQ(scan.dst, ip("10.30.0.7"));
  EXPECT_EQ(scan.time_ms, 1709647331227);

  const Alert& guessing = *(*batch)[1].alert;
  EXPECT_EQ(guessing.rule, "SSH::Password_Guessing");
  EXPECT_EQ(guessing.src, ip("203.0.113.45"));
  EXPECT_FALSE(guessing.dst.has_value());
  EXPECT_EQ(guessing.time_ms, 1709647402500);

  EXPECT_EQ((*batch)[2].alert->time_ms, 1709647455081);
  // No src/dst: the connection's originator and responder, IPv6; an integer ts.
  const Alert& sqli = *(*batch)[3].alert;
  EXPECT_EQ(sqli.src, ip("2001:db8:20::15"));
  EXPECT_EQ(sqli.dst, ip("2001:db8:30::80"));
  EXPECT_EQ(sqli.time_ms, 1709647501000);
}

TEST(AlertFormatsTest, ZeekOwnSrcWinsOverTheConnectionAndEachSideFallsBackAlone) {
  auto alert = parseAlert(R"({"ts":1,"note":"n","msg":"m","src":"10.0.0.9","id.orig_h":"10.0.0.1",)"
                          R"("id.resp_h":"10.0.0.2"})",
                          AlertFormat::kZeek);
  ASSERT_TRUE(alert.ok()) << alert.error().message;
  EXPECT_EQ(alert->src, ip("10.0.0.9"));
  EXPECT_EQ(alert->dst, ip("10.0.0.2"));
  EXPECT_EQ(alert->time_ms, 1000);
}

TEST(AlertFormatsTest, ShadanFixtureSkipsBlankLines) {
  auto batch = parseAlertBatch(readFixture("shadan.ndjson"), AlertFormat::kShadan);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 3u);
  const std::vector<std::string> lines = fixtureLines("shadan.ndjson");
  Alert first;
  first.format = AlertFormat::kShadan;
  first.source = "honeypot-dmz";
  first.rule = "ssh-login-attempt";
  first.title = "3 failed logins as root within 10s";
  first.severity = AlertSeverity::kHigh;
  first.src = ip("203.0.113.45");
  first.dst = ip("10.30.0.22");
  first.time_ms = 1709647335250;
  ASSERT_TRUE((*batch)[0].alert.ok()) << (*batch)[0].alert.error().message;
  EXPECT_EQ(*(*batch)[0].alert, first);
  ASSERT_TRUE((*batch)[1].alert.ok()) << (*batch)[1].alert.error().message;
  EXPECT_EQ((*batch)[1].index, 1u);
  EXPECT_EQ((*batch)[1].raw_sha256, sha256Hex(lines[1]));
  EXPECT_EQ((*batch)[1].alert->severity, AlertSeverity::kCritical);
  EXPECT_EQ((*batch)[1].alert->time_ms, 1709647336000);
  EXPECT_FALSE((*batch)[1].alert->dst.has_value());
  ASSERT_TRUE((*batch)[2].alert.ok()) << (*batch)[2].alert.error().message;
  EXPECT_EQ((*batch)[2].alert->severity, AlertSeverity::kMedium);  // the default
  EXPECT_EQ((*batch)[2].alert->title, "");
  EXPECT_FALSE((*batch)[2].alert->src.has_value());
  EXPECT_EQ((*batch)[2].alert->dst, ip("2001:db8:30::80"));
}

// ---------------------------------------------------------------------------------------------
// Refused records: what and where

struct RefusalCase {
  AlertFormat format;
  std::string record;
  std::string error;
};

// gtest prints the record of a failing case instead of its bytes.
void PrintTo(const RefusalCase& c, std::ostream* os) {
  *os << alertFormatName(c.format) << " " << c.record;
}

class AlertRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(AlertRefusalTest, NamesWhatAndWhere) {
  EXPECT_EQ(errorOf(GetParam().record, GetParam().format), GetParam().error);
}

// `template_` with `from` replaced by `to` (which must occur once).
std::string with(std::string_view template_, std::string_view from, std::string_view to) {
  std::string out(template_);
  const size_t at = out.find(from);
  if (at == std::string::npos || out.find(from, at + 1) != std::string::npos) {
    ADD_FAILURE() << "template must hold " << from << " once";
    return out;
  }
  out.replace(at, from.size(), to);
  return out;
}

constexpr auto S = AlertFormat::kShadan;
constexpr auto E = AlertFormat::kEve;
constexpr auto Z = AlertFormat::kZeek;

INSTANTIATE_TEST_SUITE_P(
    Shadan, AlertRefusalTest,
    ::testing::Values(
        RefusalCase{S, with(kShadan, R"("source":"ids",)", ""), "record: /source: is required"},
        RefusalCase{S, with(kShadan, R"("rule":"r1",)", ""), "record: /rule: is required"},
        RefusalCase{S, with(kShadan, R"(,"time":"2024-01-02T03:04:05Z")", ""),
                    "record: /time: is required"},
        RefusalCase{S, with(kShadan, R"("src_ip":"10.0.0.1",)", ""),
                    "record: /: needs \"src_ip\" or \"dst_ip\" (or both)"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":7)"),
                    "record: /rule: must be a string"},
        RefusalCase{S, with(kShadan, R"("source":"ids")", R"("source":"")"),
                    "record: /source: must not be empty"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","colour":"red")"),
                    "record: /colour: unknown field \"colour\""},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","severity":2.0)"),
                    "record: /severity: floating-point numbers are not allowed (integers must "
                    "fit in 64 bits)"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","severity":5)"),
                    "record: /severity: must be \"low\", \"medium\", \"high\", \"critical\" or "
                    "1 to 4"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","severity":"HIGH")"),
                    "record: /severity: must be \"low\", \"medium\", \"high\", \"critical\" or "
                    "1 to 4"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","severity":-1)"),
                    "record: /severity: must be \"low\", \"medium\", \"high\", \"critical\" or "
                    "1 to 4"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","rule":"r2")"),
                    "record: /: duplicate key \"rule\""},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r\u0007")"),
                    "record: /rule: contains a control character"},
        RefusalCase{S, with(kShadan, R"("rule":"r1")", R"("rule":"r1","detail":"a\nb")"),
                    "record: /detail: contains a control character"},
        RefusalCase{S, with(kShadan, "10.0.0.1", "10.0.0.0/8"),
                    "record: /src_ip: must be one IP address, not a prefix: \"10.0.0.0/8\""},
        RefusalCase{S, with(kShadan, "10.0.0.1", "10.0.0.1/32"),
                    "record: /src_ip: must be one IP address, not a prefix: \"10.0.0.1/32\""},
        RefusalCase{S, with(kShadan, "10.0.0.1", "gateway.example.org"),
                    "record: /src_ip: not an IP address: \"gateway.example.org\""},
        RefusalCase{S, with(kShadan, "10.0.0.1", "10.0.0.256"),
                    "record: /src_ip: not an IP address: \"10.0.0.256\""},
        RefusalCase{S, with(kShadan, R"("10.0.0.1")", "167772161"),
                    "record: /src_ip: must be an IP address string"},
        RefusalCase{S, with(kShadan, "2024-01-02T03:04:05Z", "2024-01-02 03:04:05"),
                    "record: /time: not an RFC 3339 time: \"2024-01-02 03:04:05\" (e.g. "
                    "2024-01-02T03:04:05Z)"},
        RefusalCase{S, with(kShadan, "2024-01-02T03:04:05Z", "2023-02-29T03:04:05Z"),
                    "record: /time: not an RFC 3339 time: \"2023-02-29T03:04:05Z\" (e.g. "
                    "2024-01-02T03:04:05Z)"},
        RefusalCase{S, with(kShadan, "2024-01-02T03:04:05Z", "2024-04-31T03:04:05+02:00"),
                    "record: /time: not an RFC 3339 time: \"2024-04-31T03:04:05+02:00\" (e.g. "
                    "2024-01-02T03:04:05Z)"},
        RefusalCase{S, with(kShadan, "2024-01-02T03:04:05Z", "1969-12-31T23:59:59Z"),
                    "record: /time: before 1970"},
        RefusalCase{S, "[1,2]", "record: /: must be an object"}));

INSTANTIATE_TEST_SUITE_P(
    Eve, AlertRefusalTest,
    ::testing::Values(
        RefusalCase{E, with(kEve, R"("event_type":"alert",)", ""),
                    "record: /event_type: is required"},
        RefusalCase{E, with(kEve, R"("event_type":"alert")", R"("event_type":"anomaly")"),
                    "record: /event_type: not an alert record (\"anomaly\")"},
        RefusalCase{E, with(kEve, R"("src_ip":"10.0.0.1",)", ""), "record: /src_ip: is required"},
        RefusalCase{E, with(kEve, R"("dest_ip":"10.0.0.2",)", ""), "record: /dest_ip: is required"},
        RefusalCase{E, with(kEve, R"("timestamp":"2024-01-02T03:04:05.123456+0000",)", ""),
                    "record: /timestamp: is required"},
        RefusalCase{
            E,
            with(
                kEve,
                R"(,"alert":{"signature_id":2001,"signature":"sig","category":"cat","severity":2})",
                ""),
            "record: /alert: is required"},
        RefusalCase{E, with(kEve, R"("signature_id":2001,)", ""),
                    "record: /alert/signature_id: is required"},
        RefusalCase{E, with(kEve, R"("signature":"sig",)", ""),
                    "record: /alert/signature: is required"},
        RefusalCase{E, with(kEve, R"(,"severity":2)", ""), "record: /alert/severity: is required"},
        RefusalCase{E, with(kEve, "2001,", R"("2001",)"),
                    "record: /alert/signature_id: must be an integer"},
        RefusalCase{E, with(kEve, "2001,", "2001.5,"),
                    "record: /alert/signature_id: must be an integer"},
        RefusalCase{E, with(kEve, "2001,", "-1,"),
                    "record: /alert/signature_id: must be between 0 and 4294967295"},
        RefusalCase{E, with(kEve, R"("severity":2)", R"("severity":0)"),
                    "record: /alert/severity: must be between 1 and 255"},
        RefusalCase{E, with(kEve, R"("severity":2)", R"("severity":"high")"),
                    "record: /alert/severity: must be an integer"},
        RefusalCase{E, with(kEve, R"("alert":{)", R"("alert":[],"x":{)"),
                    "record: /alert: must be an object"},
        RefusalCase{E, with(kEve, R"("signature":"sig")", R"("signature":"s\u001bg")"),
                    "record: /alert/signature: contains a control character"},
        RefusalCase{E, with(kEve, R"("category":"cat")", R"("category":"c","category":"d")"),
                    "record: /alert: duplicate key \"category\""},
        RefusalCase{
            E, with(kEve, R"("src_ip":"10.0.0.1")", R"("src_ip":"10.0.0.1","src_ip":"10.9.9.9")"),
            "record: /: duplicate key \"src_ip\""},
        RefusalCase{E, with(kEve, "10.0.0.2", "10.0.0.0/24"),
                    "record: /dest_ip: must be one IP address, not a prefix: \"10.0.0.0/24\""},
        RefusalCase{E, with(kEve, "10.0.0.2", "fe80::1%eth0"),
                    "record: /dest_ip: not an IP address: \"fe80::1%eth0\""},
        // An offset-less time is local time of an unknown zone.
        RefusalCase{E, with(kEve, "+0000", ""),
                    "record: /timestamp: not an RFC 3339 time: \"2024-01-02T03:04:05.123456\" "
                    "(e.g. 2024-01-02T03:04:05.123456+0000)"},
        RefusalCase{E, with(kEve, "2024-01-02T03:04:05.123456+0000", "1960-01-02T03:04:05+0000"),
                    "record: /timestamp: before 1970"},
        RefusalCase{E, with(kEve, "2024-01-02T03:04:05.123456+0000", "10000-01-02T03:04:05Z"),
                    "record: /timestamp: not an RFC 3339 time: \"10000-01-02T03:04:05Z\" (e.g. "
                    "2024-01-02T03:04:05.123456+0000)"}));

INSTANTIATE_TEST_SUITE_P(
    Zeek, AlertRefusalTest,
    ::testing::Values(
        RefusalCase{Z, with(kZeek, R"("note":"Scan::Port_Scan",)", ""),
                    "record: /note: is required"},
        RefusalCase{Z, with(kZeek, R"("msg":"scan",)", ""), "record: /msg: is required"},
        RefusalCase{Z, with(kZeek, R"("ts":1704164645.5,)", ""), "record: /ts: is required"},
        RefusalCase{Z, with(kZeek, R"(,"src":"10.0.0.1")", ""),
                    "record: /: needs an address: \"src\", \"dst\", \"id.orig_h\" or "
                    "\"id.resp_h\""},
        RefusalCase{Z, with(kZeek, "1704164645.5", "true"),
                    "record: /ts: must be epoch seconds (a number)"},
        RefusalCase{Z, with(kZeek, "1704164645.5", "-1.5"), "record: /ts: before 1970"},
        RefusalCase{Z, with(kZeek, "1704164645.5", "1e300"), "record: /ts: after the year 9999"},
        RefusalCase{Z, with(kZeek, "1704164645.5", "253402300800"),
                    "record: /ts: after the year 9999"},
        RefusalCase{Z, with(kZeek, "1704164645.5", "18446744073709551615"),
                    "record: /ts: after the year 9999"},
        RefusalCase{Z, with(kZeek, R"("note":"Scan::Port_Scan")", R"("note":["x"])"),
                    "record: /note: must be a string"},
        RefusalCase{Z, with(kZeek, R"("msg":"scan")", R"("msg":"a\tb")"),
                    "record: /msg: contains a control character"},
        RefusalCase{Z, with(kZeek, R"("src":"10.0.0.1")", R"("src":"10.0.0.0/16")"),
                    "record: /src: must be one IP address, not a prefix: \"10.0.0.0/16\""},
        // A bad src is refused, not skipped for the connection's originator.
        RefusalCase{Z,
                    with(kZeek, R"("src":"10.0.0.1")", R"("src":"host-a","id.orig_h":"10.0.0.1")"),
                    "record: /src: not an IP address: \"host-a\""},
        RefusalCase{Z, with(kZeek, R"("src":"10.0.0.1")", R"("id.resp_h":"::1::2")"),
                    "record: /id.resp_h: not an IP address: \"::1::2\""},
        RefusalCase{Z, with(kZeek, R"("msg":"scan")", R"("msg":"scan","actions":[],"actions":[])"),
                    "record: /: duplicate key \"actions\""},
        RefusalCase{Z, R"("just a string")", "record: /: must be an object"}));

TEST(AlertFormatsTest, MalformedJsonNamesTheByte) {
  EXPECT_EQ(errorOf(R"({"source":)", AlertFormat::kShadan).rfind("record: byte 11: ", 0), 0u);
  EXPECT_EQ(errorOf(std::string(kZeek) + " {}", AlertFormat::kZeek).rfind("record: byte ", 0), 0u);
  // Invalid UTF-8 is malformed JSON, not text to cut.
  EXPECT_EQ(
      errorOf(with(kEve, R"("sig")", "\"s\xC3(g\""), AlertFormat::kEve).rfind("record: byte ", 0),
      0u);
}

// ---------------------------------------------------------------------------------------------
// Values kept

TEST(AlertFormatsTest, FloatsInIgnoredDetectorMembersAreAccepted) {
  auto eve = parseAlert(with(kEve, R"("event_type":"alert",)",
                             R"("event_type":"alert","flow":{"age":0.25,"rate":1e3},)"),
                        AlertFormat::kEve);
  ASSERT_TRUE(eve.ok()) << eve.error().message;
  auto zeek = parseAlert(with(kZeek, R"("msg":"scan")", R"("msg":"scan","suppress_for":3600.0)"),
                         AlertFormat::kZeek);
  ASSERT_TRUE(zeek.ok()) << zeek.error().message;
  EXPECT_EQ(zeek->time_ms, 1704164645500);
  // A duplicate inside an ignored member still refuses the record.
  EXPECT_EQ(errorOf(with(kEve, R"("event_type":"alert",)",
                         R"("event_type":"alert","flow":{"age":1,"age":2},)"),
                    AlertFormat::kEve),
            "record: /flow: duplicate key \"age\"");
}

TEST(AlertFormatsTest, LongTextIsCutAtAUtf8Boundary) {
  // "€" is three bytes: 512 is not a multiple of 3, so a byte cut would split one.
  const std::string euros = repeat("\xE2\x82\xAC", 400);
  auto alert = parseAlert(with(kEve, R"("signature":"sig")", "\"signature\":\"" + euros + "\""),
                          AlertFormat::kEve);
  ASSERT_TRUE(alert.ok()) << alert.error().message;
  EXPECT_EQ(alert->title.size(), 510u);
  EXPECT_EQ(alert->title, euros.substr(0, 510));

  const std::string long_rule(5000, 'r');
  auto shadan = parseAlert(with(kShadan, R"("rule":"r1")", "\"rule\":\"" + long_rule + "\""),
                           AlertFormat::kShadan);
  ASSERT_TRUE(shadan.ok()) << shadan.error().message;
  EXPECT_EQ(shadan->rule, std::string(kAlertTextMaxBytes, 'r'));
}

TEST(AlertFormatsTest, EveTimestampForms) {
  const auto time_of = [](std::string_view timestamp) -> int64_t {
    auto alert =
        parseAlert(with(kEve, "2024-01-02T03:04:05.123456+0000", timestamp), AlertFormat::kEve);
    EXPECT_TRUE(alert.ok()) << alert.error().message;
    return alert.ok() ? alert->time_ms : -1;
  };
  // 2024-01-02T03:04:05Z is 1704164645 s.
  EXPECT_EQ(time_of("2024-01-02T03:04:05.123456+0000"), 1704164645123);
  EXPECT_EQ(time_of("2024-01-02T04:04:05.123456+0100"), 1704164645123);
  EXPECT_EQ(time_of("2024-01-01T21:04:05.999999-0600"), 1704164645999);
  EXPECT_EQ(time_of("2024-01-02T03:04:05Z"), 1704164645000);
  EXPECT_EQ(time_of("2024-01-02T05:34:05.5+02:30"), 1704164645500);
  EXPECT_EQ(time_of("2024-02-29T00:00:00+0000"), 1709164800000);  // a leap day
}

TEST(AlertFormatsTest, SeverityMapping) {
  const auto eve_severity = [](int priority) {
    return parseAlert(with(kEve, R"("severity":2)", "\"severity\":" + std::to_string(priority)),
                      AlertFormat::kEve)
        ->severity;
  };
  EXPECT_EQ(eve_severity(1), AlertSeverity::kHigh);
  EXPECT_EQ(eve_severity(2), AlertSeverity::kMedium);
  EXPECT_EQ(eve_severity(3), AlertSeverity::kLow);
  EXPECT_EQ(eve_severity(255), AlertSeverity::kLow);
  EXPECT_EQ(errorOf(with(kEve, R"("severity":2)", R"("severity":256)"), AlertFormat::kEve),
            "record: /alert/severity: must be between 1 and 255");

  const auto shadan_severity = [](std::string_view value) {
    return parseAlert(with(kShadan, R"("rule":"r1")",
                           std::string(R"("rule":"r1","severity":)") + std::string(value)),
                      AlertFormat::kShadan)
        ->severity;
  };
  EXPECT_EQ(shadan_severity("1"), AlertSeverity::kLow);
  EXPECT_EQ(shadan_severity("2"), AlertSeverity::kMedium);
  EXPECT_EQ(shadan_severity("3"), AlertSeverity::kHigh);
  EXPECT_EQ(shadan_severity("4"), AlertSeverity::kCritical);
  EXPECT_EQ(shadan_severity("\"low\""), AlertSeverity::kLow);
  EXPECT_EQ(shadan_severity("\"critical\""), AlertSeverity::kCritical);

  for (const AlertSeverity severity : {AlertSeverity::kLow, AlertSeverity::kMedium,
                                       AlertSeverity::kHigh, AlertSeverity::kCritical}) {
    EXPECT_EQ(parseAlertSeverity(alertSeverityName(severity)), severity);
  }
  EXPECT_FALSE(parseAlertSeverity("Medium").has_value());
  EXPECT_FALSE(parseAlertSeverity("").has_value());
}

// ---------------------------------------------------------------------------------------------
// Batches

TEST(AlertBatchTest, ArrayElementsAreRecordsHashedOverTheirOwnBytes) {
  const std::string first(kShadan);
  const std::string second = with(kShadan, "r1", "r2");
  const std::string body = " [\n  " + first + " ,\n" + second + "\n]\n";
  auto batch = parseAlertBatch(body, AlertFormat::kShadan);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].raw_sha256, sha256Hex(first));
  EXPECT_EQ((*batch)[1].raw_sha256, sha256Hex(second));
  ASSERT_TRUE((*batch)[1].alert.ok());
  EXPECT_EQ((*batch)[1].alert->rule, "r2");
}

TEST(AlertBatchTest, ADuplicateKeyInOneElementRefusesOnlyThatElement) {
  const std::string bad = with(kEve, R"("category":"cat")", R"("category":"a","category":"b")");
  // Brackets and commas inside strings must not fool the split.
  const std::string tricky = with(kEve, R"("signature":"sig")", R"("signature":"a],{\"b\": [")");
  const std::string body = "[" + std::string(kEve) + "," + bad + "," + tricky + "]";
  auto batch = parseAlertBatch(body, AlertFormat::kEve);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_TRUE((*batch)[0].alert.ok());
  ASSERT_FALSE((*batch)[1].alert.ok());
  EXPECT_EQ((*batch)[1].alert.error().message, "record 1: /alert: duplicate key \"category\"");
  EXPECT_EQ((*batch)[1].raw_sha256, sha256Hex(bad));
  ASSERT_TRUE((*batch)[2].alert.ok()) << (*batch)[2].alert.error().message;
  EXPECT_EQ((*batch)[2].alert->title, "a],{\"b\": [");
}

TEST(AlertBatchTest, MixedGoodAndBadRecordsKeepTheirIndexes) {
  const std::string body = std::string(kZeek) + "\n" + "not json\n" + "\n" +
                           with(kZeek, R"("note":"Scan::Port_Scan",)", "") + "\n" +
                           std::string(kZeek) + "\n";
  auto batch = parseAlertBatch(body, AlertFormat::kZeek);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 4u);
  EXPECT_TRUE((*batch)[0].alert.ok());
  ASSERT_FALSE((*batch)[1].alert.ok());
  EXPECT_EQ((*batch)[1].alert.error().message.rfind("record 1: byte 2: ", 0), 0u)
      << (*batch)[1].alert.error().message;
  ASSERT_FALSE((*batch)[2].alert.ok());
  EXPECT_EQ((*batch)[2].alert.error().message, "record 2: /note: is required");
  EXPECT_EQ((*batch)[3].index, 3u);
  EXPECT_TRUE((*batch)[3].alert.ok());
}

TEST(AlertBatchTest, CrlfLinesAndSurroundingBlankLines) {
  const std::string body =
      "\r\n" + std::string(kShadan) + "\r\n\r\n  \r\n" + with(kShadan, "r1", "r2") + "\r\n";
  auto batch = parseAlertBatch(body, AlertFormat::kShadan);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_TRUE((*batch)[0].alert.ok());
  ASSERT_TRUE((*batch)[1].alert.ok());
  EXPECT_EQ((*batch)[1].alert->rule, "r2");
  EXPECT_EQ((*batch)[0].raw_sha256, sha256Hex(kShadan));  // no CR in the record's bytes
}

TEST(AlertBatchTest, ASingleObjectIsABatchOfOneEvenOverSeveralLines) {
  auto one = parseAlertBatch(kShadan, AlertFormat::kShadan);
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one->size(), 1u);
  EXPECT_TRUE((*one)[0].alert.ok());

  const std::string pretty =
      "{\n  \"source\": \"ids\",\n  \"rule\": \"r1\",\n  \"src_ip\": \"10.0.0.1\",\n"
      "  \"time\": \"2024-01-02T03:04:05Z\"\n}\n";
  auto batch = parseAlertBatch(pretty, AlertFormat::kShadan);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 1u);
  ASSERT_TRUE((*batch)[0].alert.ok()) << (*batch)[0].alert.error().message;
  EXPECT_EQ((*batch)[0].raw_sha256, sha256Hex(pretty.substr(0, pretty.size() - 1)));
}

TEST(AlertBatchTest, BatchLevelProblemsRefuseTheWholeBody) {
  const auto error_of = [](std::string_view body) {
    auto batch = parseAlertBatch(body, AlertFormat::kShadan);
    return batch.ok() ? "<accepted>" : batch.error().message;
  };
  EXPECT_EQ(error_of(""), "body: empty (no alert records)");
  EXPECT_EQ(error_of(" \r\n\n\t"), "body: empty (no alert records)");
  EXPECT_EQ(error_of(" [ ] "), "body: empty array (no alert records)");
  EXPECT_EQ(error_of("[" + std::string(kShadan) + ",").rfind("body: not a valid JSON array: ", 0),
            0u);
  EXPECT_EQ(error_of("[" + std::string(kShadan) + "] x").rfind("body: not a valid JSON array: ", 0),
            0u);

  const std::string huge(kAlertBodyMaxBytes + 1, ' ');
  auto too_big = parseAlertBatch(huge, AlertFormat::kShadan);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_big.error().message, "body: " + std::to_string(kAlertBodyMaxBytes + 1) +
                                         " bytes exceeds the limit of " +
                                         std::to_string(kAlertBodyMaxBytes) + " bytes");
}

TEST(AlertBatchTest, AtMostMaxRecordsInEitherFraming) {
  std::string lines, array = "[";
  for (size_t i = 0; i < kAlertBatchMaxRecords; ++i) {
    lines += std::string(kShadan) + "\n";
    array += std::string(i == 0 ? "" : ",") + std::string(kShadan);
  }
  auto full_lines = parseAlertBatch(lines, AlertFormat::kShadan);
  ASSERT_TRUE(full_lines.ok()) << full_lines.error().message;
  EXPECT_EQ(full_lines->size(), kAlertBatchMaxRecords);
  auto full_array = parseAlertBatch(array + "]", AlertFormat::kShadan);
  ASSERT_TRUE(full_array.ok()) << full_array.error().message;
  EXPECT_EQ(full_array->size(), kAlertBatchMaxRecords);

  const std::string too_many =
      "body: more than " + std::to_string(kAlertBatchMaxRecords) + " records";
  auto over_lines = parseAlertBatch(lines + std::string(kShadan), AlertFormat::kShadan);
  ASSERT_FALSE(over_lines.ok());
  EXPECT_EQ(over_lines.error().message, too_many);
  auto over_array = parseAlertBatch(array + "," + std::string(kShadan) + "]", AlertFormat::kShadan);
  ASSERT_FALSE(over_array.ok());
  EXPECT_EQ(over_array.error().message, too_many);
  EXPECT_EQ(over_array.error().code, ErrorCode::kInvalidArgument);
}

TEST(AlertBatchTest, ARecordOverTheRecordLimitIsRefusedAlone) {
  const std::string big =
      with(kZeek, R"("msg":"scan")",
           "\"msg\":\"scan\",\"sub\":\"" + std::string(kAlertRecordMaxBytes, 'x') + "\"");
  auto batch = parseAlertBatch(big + "\n" + std::string(kZeek) + "\n", AlertFormat::kZeek);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 2u);
  ASSERT_FALSE((*batch)[0].alert.ok());
  EXPECT_EQ((*batch)[0].alert.error().message, "record 0: " + std::to_string(big.size()) +
                                                   " bytes exceeds the limit of " +
                                                   std::to_string(kAlertRecordMaxBytes) + " bytes");
  EXPECT_TRUE((*batch)[1].alert.ok());
}

TEST(AlertBatchTest, DeepNestingIsRefusedPerRecord) {
  const std::string deep =
      with(kEve, R"("event_type":"alert",)",
           "\"event_type\":\"alert\",\"x\":" + repeat("[", 100) + repeat("]", 100) + ",");
  auto batch = parseAlertBatch("[" + deep + "," + std::string(kEve) + "]", AlertFormat::kEve);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_EQ(batch->size(), 2u);
  ASSERT_FALSE((*batch)[0].alert.ok());
  EXPECT_NE((*batch)[0].alert.error().message.find("nesting deeper than"), std::string::npos)
      << (*batch)[0].alert.error().message;
  EXPECT_TRUE((*batch)[1].alert.ok());
}

// ---------------------------------------------------------------------------------------------
// Which format a request names

TEST(AlertFormatOfTest, QueryWinsOverTheMediaType) {
  EXPECT_EQ(alertFormatOf("zeek", "application/vnd.suricata.eve+json").value(), AlertFormat::kZeek);
  EXPECT_EQ(alertFormatOf("eve", "").value(), AlertFormat::kEve);
  EXPECT_EQ(alertFormatOf("shadan", "text/plain").value(), AlertFormat::kShadan);
  auto unknown = alertFormatOf("suricata", "application/vnd.suricata.eve+json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().message, "unknown alert format \"suricata\" (shadan, eve or zeek)");
  EXPECT_FALSE(alertFormatOf("EVE", "application/json").ok());
}

TEST(AlertFormatOfTest, MediaTypesIgnoreParametersAndCase) {
  const auto format_of = [](std::string_view content_type) {
    auto format = alertFormatOf(std::nullopt, content_type);
    EXPECT_TRUE(format.ok()) << content_type;
    return format.ok() ? alertFormatName(*format) : "<refused>";
  };
  EXPECT_STREQ(format_of("application/json"), "shadan");
  EXPECT_STREQ(format_of("application/json; charset=utf-8"), "shadan");
  EXPECT_STREQ(format_of("Application/X-NDJSON"), "shadan");
  EXPECT_STREQ(format_of("application/vnd.shadan.alert+json"), "shadan");
  EXPECT_STREQ(format_of("application/vnd.suricata.eve+json;charset=UTF-8"), "eve");
  EXPECT_STREQ(format_of(" APPLICATION/VND.ZEEK.NOTICE+JSON "), "zeek");
}

TEST(AlertFormatOfTest, UnknownMediaTypesAreNamed) {
  auto text = alertFormatOf(std::nullopt, "text/plain; charset=utf-8");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().message,
            "unsupported Content-Type \"text/plain; charset=utf-8\" for alerts (or name the "
            "format with ?format=shadan|eve|zeek)");
  EXPECT_FALSE(alertFormatOf(std::nullopt, "application/jsonx").ok());
  EXPECT_FALSE(alertFormatOf(std::nullopt, "json").ok());
  auto none = alertFormatOf(std::nullopt, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message,
            "no Content-Type: name the alert format with ?format=shadan|eve|zeek");
}

TEST(AlertFormatOfTest, NamesRoundTrip) {
  for (const AlertFormat format : {AlertFormat::kShadan, AlertFormat::kEve, AlertFormat::kZeek}) {
    EXPECT_EQ(parseAlertFormat(alertFormatName(format)), format);
  }
  EXPECT_FALSE(parseAlertFormat("").has_value());
  EXPECT_FALSE(parseAlertFormat("Shadan").has_value());
}

}  // namespace
}  // namespace shadan::controller
