// The drill report (cli/drill/report_html.h): checkReportJson's errors, report.html's content,
// escaping and self-containment, and writeReportFiles.

#include "cli/drill/report_html.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace shadan::drill {
namespace {

using Json = nlohmann::json;

// A passing segment-cut drill on two gateways, IPv4 and IPv6 probes, an established flow.
Json passReport() {
  return Json::parse(R"json({
  "report_version": 1,
  "verdict": "pass",
  "scenario": "segment-cut",
  "scenario_description": "Isolate one segment, probe, restore with two operators.",
  "parameters": {"segment": "lgwan"},
  "policy": "municipality-three-tier",
  "policy_file": "policies/examples/municipality-three-tier.json",
  "policy_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "lab": "d1234",
  "started_at": "2026-12-06T10:00:00.000Z",
  "duration_ms": 41234,
  "steps": [
    {"index": 0, "label": "before", "do": "expect", "phase": "before", "started_ms": 10,
     "ended_ms": 250, "ok": true, "detail": "4 probes held", "order_id": null},
    {"index": 1, "label": "isolate lgwan", "do": "isolate", "phase": "during", "started_ms": 251,
     "ended_ms": 1013, "ok": true, "detail": "order 3f2a acked by core-gw, inet-gw",
     "order_id": "3f2a0c1e-0000-4000-8000-000000000001"},
    {"index": 2, "label": "during", "do": "expect", "phase": "during", "started_ms": 1014,
     "ended_ms": 1420, "ok": true, "detail": "4 probes held", "order_id": null},
    {"index": 3, "label": "restore lgwan", "do": "restore", "phase": "after", "started_ms": 30000,
     "ended_ms": 30021, "ok": true, "detail": "order 77b1 acked by core-gw, inet-gw",
     "order_id": "77b1d2e3-0000-4000-8000-000000000002"},
    {"index": 4, "label": "after", "do": "expect", "phase": "after", "started_ms": 30022,
     "ended_ms": 30310, "ok": true, "detail": "2 probes held", "order_id": null}
  ],
  "gateways": {
    "core-gw": {
      "time_to_cut_ms": 7,
      "time_to_restore_ms": 9,
      "transitions": [
        {"step": 1, "action": "isolate", "order_id": "3f2a0c1e-0000-4000-8000-000000000001",
         "order_sent_ms": 1000, "dispatch_received_ms": 1002, "applied_ms": 1005,
         "ack_received_ms": 1006, "first_dropped_probe_ms": 1007, "first_open_probe_ms": null},
        {"step": 3, "action": "restore", "order_id": "77b1d2e3-0000-4000-8000-000000000002",
         "order_sent_ms": 30001, "dispatch_received_ms": 30003, "applied_ms": 30008,
         "ack_received_ms": 30009, "first_dropped_probe_ms": null, "first_open_probe_ms": 30010}
      ]
    },
    "inet-gw": {
      "time_to_cut_ms": 11,
      "time_to_restore_ms": 13,
      "transitions": [
        {"step": 1, "action": "isolate", "order_id": "3f2a0c1e-0000-4000-8000-000000000001",
         "order_sent_ms": 1000, "dispatch_received_ms": 1003, "applied_ms": 1009,
         "ack_received_ms": 1010, "first_dropped_probe_ms": 1011, "first_open_probe_ms": null},
        {"step": 3, "action": "restore", "order_id": "77b1d2e3-0000-4000-8000-000000000002",
         "order_sent_ms": 30001, "dispatch_received_ms": 30004, "applied_ms": 30012,
         "ack_received_ms": 30013, "first_dropped_probe_ms": null, "first_open_probe_ms": 30014}
      ]
    }
  },
  "probes": [
    {"step": 0, "label": "before", "from": "lgwan@core-gw", "to": "internet", "proto": "tcp",
     "port": 80, "family": "ipv4", "phase": "before", "expected": "open", "observed": "open",
     "ok": true, "established": false},
    {"step": 0, "label": "before", "from": "lgwan@core-gw", "to": "internet", "proto": "tcp",
     "port": 80, "family": "ipv6", "phase": "before", "expected": "open", "observed": "open",
     "ok": true, "established": false},
    {"step": 2, "label": "during", "from": "lgwan@core-gw", "to": "internet", "proto": "tcp",
     "port": 80, "family": "ipv6", "phase": "during", "expected": "cut", "observed": "cut",
     "ok": true, "established": false},
    {"step": 2, "label": "during", "from": "lgwan@core-gw", "to": "internet", "proto": "icmp",
     "port": null, "family": "ipv6", "phase": "during", "expected": "cut", "observed": "cut",
     "ok": true, "established": false},
    {"step": 2, "label": "during", "from": "lgwan@core-gw", "to": "internet", "proto": "tcp",
     "port": 8080, "family": "ipv4", "phase": "during", "expected": "cut", "observed": "cut",
     "ok": true, "established": true},
    {"step": 2, "label": "during", "from": "lgwan@core-gw", "to": "controller", "proto": "tcp",
     "port": 8443, "family": "ipv4", "phase": "during", "expected": "open", "observed": "open",
     "ok": true, "established": false},
    {"step": 4, "label": "after", "from": "lgwan@core-gw", "to": "internet", "proto": "tcp",
     "port": 80, "family": "ipv4", "phase": "after", "expected": "open", "observed": "open",
     "ok": true, "established": false}
  ],
  "faults": [],
  "management": {"kept_working": true, "probes": 120, "failures": 0,
                 "continuous": {"pairs": 2, "probes": 600, "ok": 600, "failed": 0,
                                "first_failed_ms": null, "excluded_because": null}},
  "established_flows": {"checked": 1, "cut": 1},
  "audit": {"verified": true, "entries": 87,
            "detail": "controller log: 87 entries, chain and checkpoints verified"},
  "failures": []
})json");
}

// The same drill failing: a probe open during the cut, a fault after which the cut did not
// hold, management lost, the audit not verified, times not measured.
Json failReport() {
  Json report = passReport();
  report["verdict"] = "fail";
  report["probes"][2]["observed"] = "open";
  report["probes"][2]["ok"] = false;
  report["steps"][2]["ok"] = false;
  report["gateways"]["core-gw"]["time_to_cut_ms"] = nullptr;
  report["gateways"]["core-gw"]["transitions"][0]["first_dropped_probe_ms"] = nullptr;
  report["gateways"]["inet-gw"]["time_to_restore_ms"] = nullptr;
  report["faults"] = Json::parse(R"json([
    {"step": 2, "kind": "flush-ruleset", "gateway": "core-gw", "at_ms": 1200, "cut_held": false,
     "detail": "nft flush ruleset on core-gw"},
    {"step": 2, "kind": "stop-controller", "gateway": null, "at_ms": null, "cut_held": null,
     "detail": "controller stopped"}])json");
  report["management"] = {{"kept_working", false}, {"probes", 120}, {"failures", 3}};  // no watch
  report["audit"]["verified"] = false;
  report["failures"] = {
      "step 2 (expect, during): lgwan@core-gw -> internet tcp/80 ipv6: expected cut, observed "
      "open"};
  return report;
}

// A drill that stopped before any order: no gateway, no probe, no step.
Json emptyReport() {
  Json report = passReport();
  report["verdict"] = "fail";
  report["gateways"] = Json::object();
  report["probes"] = Json::array();
  report["steps"] = Json::array();
  report["parameters"] = Json::object();
  report["duration_ms"] = nullptr;
  report["failures"] = {"the lab could not be built"};
  return report;
}

std::string render(const Json& report) {
  auto html = renderReportHtml(report);
  EXPECT_TRUE(html.ok()) << html.error().message;
  return html.ok() ? *html : std::string();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string ms(const Json& value) {
  if (value.is_null()) return "<td class=\"ms none\" title=\"not measured\">\u2014</td>";
  return "<td class=\"ms\">" + value.dump() + "</td>";
}

TEST(ReportHtmlTest, RendersEverySample) {
  for (const Json& report : {passReport(), failReport(), emptyReport()}) {
    const std::string html = render(report);
    EXPECT_EQ(html.rfind("<!DOCTYPE html>\n", 0), 0u);
    EXPECT_TRUE(contains(html, "</html>\n"));
    EXPECT_TRUE(contains(html, "<h2>Failures</h2>"));
    EXPECT_TRUE(contains(html, "<h2>Audit</h2>"));
  }
}

TEST(ReportHtmlTest, ShowsTheVerdictScenarioPolicyStartAndDuration) {
  const std::string pass = render(passReport());
  EXPECT_TRUE(contains(pass,
                       "<header class=\"verdict verdict-pass\">\n"
                       "<p class=\"word\">\u2713 PASS</p>\n"
                       "<p>Scenario <strong>segment-cut</strong> on policy "
                       "<strong>municipality-three-tier</strong></p>\n"
                       "<p>Started 2026-12-06T10:00:00.000Z \u00b7 duration 41234 ms</p>"))
      << pass;
  EXPECT_TRUE(contains(pass, "<code>segment=lgwan</code>"));
  EXPECT_TRUE(contains(pass, "No failure."));

  const std::string fail = render(failReport());
  EXPECT_TRUE(contains(fail,
                       "<header class=\"verdict verdict-fail\">\n"
                       "<p class=\"word\">\u2717 FAIL</p>"));
  EXPECT_FALSE(contains(fail, "class=\"verdict verdict-pass\""));
}

TEST(ReportHtmlTest, TheNumbersAreTheReportsOwn) {
  // A number a double cannot hold: the page must not round it.
  Json report = passReport();
  report["duration_ms"] = 9007199254740993LL;
  report["gateways"]["inet-gw"]["time_to_restore_ms"] = 9007199254740995LL;
  for (const Json& sample : {report, failReport(), emptyReport()}) {
    const std::string html = render(sample);
    EXPECT_TRUE(contains(html, "duration " + sample["duration_ms"].dump() + " ms") ||
                sample["duration_ms"].is_null());
    for (const auto& [id, gateway] : sample["gateways"].items()) {
      const std::string row = "<tr><th scope=\"row\">" + id + "</th>" +
                              ms(gateway["time_to_cut_ms"]) + ms(gateway["time_to_restore_ms"]) +
                              "</tr>";
      EXPECT_TRUE(contains(html, row)) << row;
      EXPECT_TRUE(
          contains(html, "<th scope=\"row\">time_to_cut_ms</th>" + ms(gateway["time_to_cut_ms"])));
      EXPECT_TRUE(contains(
          html, "<th scope=\"row\">time_to_restore_ms</th>" + ms(gateway["time_to_restore_ms"])));
      for (const Json& t : gateway["transitions"]) {
        const std::string cells = ms(t["order_sent_ms"]) + ms(t["dispatch_received_ms"]) +
                                  ms(t["applied_ms"]) + ms(t["ack_received_ms"]) +
                                  ms(t["first_dropped_probe_ms"]) + ms(t["first_open_probe_ms"]);
        EXPECT_TRUE(contains(html, cells)) << cells;
        // The timeline labels the marks with the same numbers.
        if (!t["applied_ms"].is_null()) {
          EXPECT_TRUE(contains(html, ">applied " + t["applied_ms"].dump() + "</text>"));
        }
      }
    }
    for (const Json& step : sample["steps"]) {
      EXPECT_TRUE(contains(html, ms(step["started_ms"]) + ms(step["ended_ms"]))) << step.dump();
    }
  }
  EXPECT_TRUE(contains(render(report), "duration 9007199254740993 ms"));
  EXPECT_TRUE(contains(render(report), ms(Json(9007199254740995LL))));
}

TEST(ReportHtmlTest, NullTimesShowAsNotMeasured) {
  const std::string html = render(failReport());
  EXPECT_TRUE(contains(
      html, "<tr><th scope=\"row\">core-gw</th>" + ms(nullptr) + "<td class=\"ms\">9</td></tr>"))
      << html;
  EXPECT_TRUE(contains(html, "not measured (\u2014): first dropped probe, first open probe"));
  // The fault without a time or a gateway.
  EXPECT_TRUE(contains(html, "<td class=\"none\">\u2014</td>" + ms(nullptr) +
                                 "<td class=\"none\">\u2014 not checked</td>"));
}

TEST(ReportHtmlTest, TheProbeMatrixMarksFailuresInTextAndClass) {
  const std::string pass = render(passReport());
  EXPECT_TRUE(contains(pass, "<h3>Before the cut</h3>"));
  EXPECT_TRUE(contains(pass, "<h3>During the cut</h3>"));
  EXPECT_TRUE(contains(pass, "<h3>After the restore</h3>"));
  // Columns proto/port/family, IPv6 and an established flow among them.
  EXPECT_TRUE(contains(pass,
                       "<th>tcp/80<br>ipv6</th><th>icmp<br>ipv6</th>"
                       "<th>tcp/8080<br>ipv4<br>established</th><th>tcp/8443<br>ipv4</th>"))
      << pass;
  EXPECT_TRUE(contains(pass,
                       "<tr><th scope=\"row\">lgwan@core-gw \u2192 internet</th>"
                       "<td class=\"ok\"><span class=\"marker\">\u2713</span> expected "
                       "cut, observed cut</td>"));
  EXPECT_FALSE(contains(pass, "FAIL"));

  const std::string fail = render(failReport());
  EXPECT_TRUE(contains(fail,
                       "<td class=\"fail\"><span class=\"marker\">\u2717 FAIL</span> "
                       "expected cut, observed open</td>"));
  EXPECT_TRUE(contains(fail,
                       "<li class=\"fail\"><span class=\"marker\">\u2717 FAIL</span> step "
                       "2 (expect, during): lgwan@core-gw -&gt; internet tcp/80 ipv6: "
                       "expected cut, observed open</li>"));
  EXPECT_TRUE(contains(fail,
                       "<td>flush-ruleset</td><td class=\"id\">core-gw</td>"
                       "<td class=\"ms\">1200</td><td class=\"fail\"><span "
                       "class=\"marker\">\u2717 FAIL</span> no</td>"));
  EXPECT_TRUE(contains(fail,
                       "The controller did not stay reachable on its management path: the "
                       "expectations' probes to it: 120, 3 failed."));
  EXPECT_FALSE(contains(fail, "Watched continuously"));  // this report has no watch
  EXPECT_TRUE(contains(render(passReport()),
                       "Watched continuously (every 20 ms, from the measured hosts to its agent "
                       "port): 600 probes, 0 failed.</p>"));
  EXPECT_TRUE(contains(fail, "The audit logs did not verify: 87 entries."));
}

// A probe that could not run is reported as such ("error"), and never as held.
TEST(ReportHtmlTest, AProbeThatCouldNotRunIsAFailure) {
  Json report = failReport();
  report["probes"][0]["observed"] = "error";
  report["probes"][0]["ok"] = false;
  ASSERT_TRUE(checkReportJson(report).ok());
  const std::string page = render(report);
  EXPECT_TRUE(contains(page, "observed error</td>")) << page;
}

TEST(ReportHtmlTest, NoGatewaysAndNoProbesSaySo) {
  const std::string html = render(emptyReport());
  EXPECT_TRUE(contains(html, "No gateway took part in an order."));
  EXPECT_TRUE(contains(html, "No probe in this phase."));
  EXPECT_TRUE(contains(html, "No step ran."));
  EXPECT_FALSE(contains(html, "<svg"));
  EXPECT_TRUE(contains(html, "duration \u2014 ms"));
}

TEST(ReportHtmlTest, DrawsOneTimelinePerGatewayWithTheMarks) {
  const std::string html = render(passReport());
  size_t svgs = 0;
  for (size_t at = html.find("<svg "); at != std::string::npos; at = html.find("<svg ", at + 1)) {
    ++svgs;
  }
  EXPECT_EQ(svgs, 2u);
  for (const char* label : {">order sent 1000</text>", ">dispatch received 1002</text>",
                            ">applied 1005</text>", ">ack received 1006</text>",
                            ">first dropped probe 1007</text>", ">first open probe 30014</text>"}) {
    EXPECT_TRUE(contains(html, label)) << label;
  }
  EXPECT_TRUE(contains(html, "<title>Timeline of gateway core-gw</title>"));
}

TEST(ReportHtmlTest, EscapesEveryStringOfTheReport) {
  const std::string hostile = "<script>alert(\"x\")</script>'&";
  const std::string escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;";
  Json report = failReport();
  report["scenario"] = hostile;
  report["scenario_description"] = hostile;
  report["policy"] = hostile;
  report["policy_file"] = hostile;
  report["lab"] = hostile;
  report["parameters"] = {{hostile, hostile}};
  report["steps"][0]["label"] = hostile;
  report["steps"][0]["detail"] = hostile;
  report["steps"][1]["order_id"] = hostile;
  report["gateways"][hostile] = report["gateways"]["core-gw"];
  report["gateways"][hostile]["transitions"][0]["order_id"] = hostile;
  report["probes"][0]["label"] = hostile;
  report["probes"][0]["from"] = hostile;
  report["probes"][0]["to"] = hostile;
  report["faults"][0]["gateway"] = hostile;
  report["faults"][0]["detail"] = hostile;
  report["audit"]["detail"] = hostile;
  report["failures"].push_back(hostile);
  const std::string html = render(report);
  EXPECT_FALSE(contains(html, "<script"));
  EXPECT_FALSE(contains(html, "alert(\"x\")"));
  EXPECT_FALSE(contains(html, "'&"));
  EXPECT_TRUE(contains(html, "<title>Shadan drill FAIL: " + escaped + " on " + escaped));
  EXPECT_TRUE(contains(html, "<title>Timeline of gateway " + escaped + "</title>"));
  EXPECT_TRUE(contains(html, "<th scope=\"row\">" + escaped + " \u2192 " + escaped + "</th>"));
  EXPECT_TRUE(contains(html, "<code>" + escaped + "=" + escaped + "</code>"));
  // Every occurrence of the hostile text is the escaped one: 20 strings above, the scenario and
  // policy twice more (title, header), the gateway id in the overview, its section and timeline.
  size_t count = 0;
  for (size_t at = html.find(escaped); at != std::string::npos; at = html.find(escaped, at + 1)) {
    ++count;
  }
  EXPECT_GE(count, 20u);
}

TEST(ReportHtmlTest, BytesThatAreNotUtf8AndControlCharactersBecomeReplacementCharacters) {
  Json report = passReport();
  report["steps"][0]["detail"] = std::string(
      "a\x01"
      "b\xff"
      "c\xc0\xaf"
      "d\xed\xa0\x80"
      "e\x7f");
  report["steps"][1]["detail"] = "\u6751\u5f79\u5834 \u00e9 \U0001F6A8";  // valid, kept
  const std::string html = render(report);
  EXPECT_TRUE(contains(html, "<td>a\uFFFDb\uFFFDc\uFFFD\uFFFDd\uFFFD\uFFFD\uFFFDe\uFFFD</td>"))
      << html;
  EXPECT_TRUE(contains(html, "<td>\u6751\u5f79\u5834 \u00e9 \U0001F6A8</td>"));
}

TEST(ReportHtmlTest, HoldsNoExternalReferenceNoScriptNoFetch) {
  for (const Json& report : {passReport(), failReport(), emptyReport()}) {
    std::string html = render(report);
    std::transform(html.begin(), html.end(), html.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* banned : {"http://", "https://", "src=", "@import", "<script", "url(", "<img",
                               "<link", "<iframe", "<object", "<embed", "href=", "xmlns", "//"}) {
      EXPECT_FALSE(contains(html, banned)) << banned;
    }
  }
  // A tag in the report's text is shown as text, never made an element.
  Json report = passReport();
  report["audit"]["detail"] = "<img src=x> <link href=y>";
  const std::string html = render(report);
  EXPECT_FALSE(contains(html, "<img"));
  EXPECT_FALSE(contains(html, "<link"));
  EXPECT_TRUE(contains(html, "<p>&lt;img src=x&gt; &lt;link href=y&gt;</p>"));
}

struct CheckCase {
  std::string pointer;  // the member to change ("" = the root)
  Json value;           // discarded(): remove it
  std::string error;
};

TEST(CheckReportJsonTest, ErrorsNameTheJsonPointer) {
  const Json remove = Json(Json::value_t::discarded);
  const std::vector<CheckCase> cases = {
      {"", Json::array(), "/: must be an object"},
      {"/report_version", 2, "/report_version: must be 1 (the report format this shadanctl reads)"},
      {"/verdict", remove, "/verdict: is required"},
      {"/verdict", "maybe", "/verdict: must be one of pass, fail"},
      {"/scenario", 3, "/scenario: must be a string"},
      {"/parameters/segment", true, "/parameters/segment: must be a string"},
      {"/policy_sha256", "ABC", "/policy_sha256: must be 64 lower-case hex digits"},
      {"/started_at", "yesterday",
       "/started_at: must be an RFC 3339 UTC time (2026-12-06T10:00:00.000Z)"},
      {"/duration_ms", -1, "/duration_ms: must be a non-negative integer or null"},
      {"/steps", Json::object(), "/steps: must be an array"},
      {"/steps/1/do", "dance",
       "/steps/1/do: must be one of isolate, restore, alert, fault, wait, expect"},
      {"/steps/2/ended_ms", "250", "/steps/2/ended_ms: must be a non-negative integer or null"},
      {"/steps/0/order_id", 5, "/steps/0/order_id: must be a string or null"},
      {"/gateways/core-gw/time_to_cut_ms", "7",
       "/gateways/core-gw/time_to_cut_ms: must be a non-negative integer or null"},
      {"/gateways/inet-gw/transitions/1/applied_ms", remove,
       "/gateways/inet-gw/transitions/1/applied_ms: is required"},
      {"/gateways/inet-gw/transitions/0/action", "quarantine",
       "/gateways/inet-gw/transitions/0/action: must be one of isolate, restore"},
      {"/gateways/a~1b", Json::object(), "/gateways/a~1b/time_to_cut_ms: is required"},
      {"/probes/3/port", 0, "/probes/3/port: must be an integer from 1 to 65535"},
      {"/probes/0/family", "ipv5", "/probes/0/family: must be one of ipv4, ipv6"},
      {"/probes/0/observed", "maybe", "/probes/0/observed: must be one of open, cut, error"},
      {"/probes/5/established", remove, "/probes/5/established: is required"},
      {"/faults", Json::parse(R"([{"step": 1, "kind": "unplug"}])"),
       "/faults/0/kind: must be one of kill-agent, restart-agent, flush-ruleset, "
       "stop-controller, start-controller, partition, heal, reboot"},
      {"/faults", Json::parse(R"([{"step": 1}])"), "/faults/0/kind: is required"},
      {"/management/kept_working", "yes", "/management/kept_working: must be true or false"},
      {"/established_flows/cut", remove, "/established_flows/cut: is required"},
      {"/audit", remove, "/audit: is required"},
      {"/audit/entries", -3, "/audit/entries: must be an integer from 0 to 9223372036854775807"},
      {"/failures/0", 3, "/failures/0: must be a string"},
  };
  for (const CheckCase& c : cases) {
    Json report = passReport();
    report["failures"] = {"one"};
    if (c.pointer.empty()) {
      report = c.value;
    } else if (c.value.is_discarded()) {
      const Json::json_pointer pointer(c.pointer);
      report[pointer.parent_pointer()].erase(pointer.back());
    } else {
      report[Json::json_pointer(c.pointer)] = c.value;
    }
    auto checked = checkReportJson(report);
    ASSERT_FALSE(checked.ok()) << c.pointer;
    EXPECT_EQ(checked.error().code, ErrorCode::kParse);
    EXPECT_EQ(checked.error().message, c.error) << c.pointer;
    // The renderer refuses it with the same error.
    auto html = renderReportHtml(report);
    ASSERT_FALSE(html.ok());
    EXPECT_EQ(html.error().message, c.error);
  }
}

TEST(CheckReportJsonTest, IgnoresMembersItDoesNotKnowAndReturnsTheReport) {
  Json report = passReport();
  report["runner_version"] = "2.0";
  report["gateways"]["core-gw"]["transitions"][0]["rule_count"] = 12;
  report["probes"][0]["rtt_us"] = 180;
  auto checked = checkReportJson(report);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(*checked, report);
  EXPECT_TRUE(checkReportJson(failReport()).ok());
  EXPECT_TRUE(checkReportJson(emptyReport()).ok());
}

// docs/drills.md "Reading the report" shows a report.json: it is one this reader accepts.
TEST(CheckReportJsonTest, TheDocsExamplePasses) {
  std::ifstream in(std::string(SHADAN_SOURCE_DIR) + "/docs/drills.md");
  ASSERT_TRUE(in) << "docs/drills.md";
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string doc = buffer.str();
  const size_t section = doc.find("### report.json");
  ASSERT_NE(section, std::string::npos);
  const size_t start = doc.find("```json\n", section);
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```\n", start + 8);
  ASSERT_NE(end, std::string::npos);
  const Json example = Json::parse(doc.substr(start + 8, end - start - 8));
  auto checked = checkReportJson(example);
  EXPECT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_TRUE(renderReportHtml(example).ok());
}

class WriteReportFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("report_html_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string read(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static mode_t modeOf(const std::filesystem::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::filesystem::path dir_;
};

TEST_F(WriteReportFilesTest, WritesTheJsonAndThePage) {
  const Json report = passReport();
  const Status written = writeReportFiles(dir_, report);
  ASSERT_TRUE(written.ok()) << written.error().message;
  const std::string json = read(dir_ / "report.json");
  EXPECT_EQ(Json::parse(json), report);
  EXPECT_EQ(json, report.dump(2) + "\n");  // pretty-printed
  EXPECT_EQ(read(dir_ / "report.html"), render(report));
  EXPECT_EQ(modeOf(dir_ / "report.json"), 0644u);
  EXPECT_EQ(modeOf(dir_ / "report.html"), 0644u);
  EXPECT_EQ(modeOf(dir_), 0700u);

  // Written again (a re-render): replaced, and no temporary file left.
  const Json failed = failReport();
  ASSERT_TRUE(writeReportFiles(dir_, failed).ok());
  EXPECT_EQ(Json::parse(read(dir_ / "report.json")), failed);
  EXPECT_EQ(read(dir_ / "report.html"), render(failed));
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2u);
}

TEST_F(WriteReportFilesTest, ABadReportWritesNothing) {
  Json report = passReport();
  report["probes"][1]["expected"] = "closed";
  const Status written = writeReportFiles(dir_, report);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().message, "/probes/1/expected: must be one of open, cut");
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(WriteReportFilesTest, NeedsAnExistingDirectory) {
  const Status written = writeReportFiles(dir_ / "missing", passReport());
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kIo);
  EXPECT_EQ(written.error().message,
            (dir_ / "missing").string() + ": not a directory (the report goes in it)");
}

}  // namespace
}  // namespace shadan::drill
