// report.html: the drill report as one page a person can file (docs/drills.md "Reading the
// report"). Everything is inline (CSS, SVG); nothing on the page is fetched or run. Every string
// of the report goes through escape(); every number is the report's own, as it is written there:
// the page computes no count, sum or duration, so what it shows is what report.json says.

#include "cli/drill/report_html.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cli/drill/report_html_internal.h"

namespace shadan::drill {
namespace html {

using Json = nlohmann::json;

namespace {

void appendReplacement(std::string& out) { out += "\xEF\xBF\xBD"; }  // U+FFFD

// The length of the valid UTF-8 sequence at text[i], or 0 (overlong forms, surrogates and code
// points above U+10FFFF are not valid).
size_t utf8Length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  uint32_t code = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(k) & 0x3F);
  }
  if ((length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
      (length == 4 && (code < 0x10000 || code > 0x10FFFF))) {
    return 0;
  }
  // C1 control characters (U+0080..U+009F) are two bytes C2 80..C2 9F.
  if (length == 2 && code < 0xA0) return 0;
  return length;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = utf8Length(text, i);
      if (length == 0) {
        appendReplacement(out);
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '\t':
      case '\n':
        out += static_cast<char>(c);
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          appendReplacement(out);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

std::string text(const Json& value) { return escape(value.get_ref<const std::string&>()); }

std::string number(const Json& value) { return value.is_null() ? kNotMeasured : value.dump(); }

}  // namespace html

namespace {

using Json = nlohmann::json;
using html::escape;
using html::number;
using html::text;

constexpr const char* kStyle = R"(
:root { --pass: #1b7f3b; --fail: #b3261e; --muted: #5f6368; --line: #d0d4d9; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans JP", sans-serif;
       color: #1f2328; background: #fff; margin: 0 auto; max-width: 1120px; padding: 24px; }
header.verdict { color: #fff; border-radius: 8px; padding: 16px 24px; }
header.verdict-pass { background: var(--pass); }
header.verdict-fail { background: var(--fail); }
header .word { font-size: 60px; font-weight: 800; letter-spacing: .06em; line-height: 1.1;
               margin: 0; }
header p { margin: 4px 0; font-size: 17px; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 36px; }
h3 { margin-bottom: 4px; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th, tbody th { background: #f3f4f6; }
td.ms { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.none { color: var(--muted); }
.ok { background: #edf7ee; }
.fail { background: #fdecea; color: #8c1d18; font-weight: 600; }
.marker { font-weight: 800; }
ul.failures li { margin: 4px 0; padding: 4px 8px; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
svg.timeline { display: block; max-width: 100%; height: auto; margin: 8px 0 16px;
               font: 13px system-ui, sans-serif; }
svg .axis { stroke: #1f2328; stroke-width: 2; }
svg .leader { stroke: #9aa0a6; stroke-width: 1; }
svg .band-title { font-weight: 600; fill: #1f2328; }
svg .axis-unit, svg .not-measured { fill: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
@media print { header.verdict, .ok, .fail { print-color-adjust: exact;
                                            -webkit-print-color-adjust: exact; } }
)";

// Text markers beside the colours: a page printed in black and white still says which is which.
constexpr const char* kOkMark = "<span class=\"marker\">\u2713</span> ";
constexpr const char* kFailMark = "<span class=\"marker\">\u2717 FAIL</span> ";

std::string msCell(const Json& value) {
  if (value.is_null()) {
    return std::string("<td class=\"ms none\" title=\"not measured\">") + html::kNotMeasured +
           "</td>";
  }
  return "<td class=\"ms\">" + value.dump() + "</td>";
}

std::string idCell(const Json& value) {
  if (value.is_null()) return std::string("<td class=\"none\">") + html::kNotMeasured + "</td>";
  return "<td class=\"id\">" + text(value) + "</td>";
}

void header(const Json& report, std::string& page) {
  const bool pass = report["verdict"] == "pass";
  page += std::string("<header class=\"verdict verdict-") + (pass ? "pass" : "fail") + "\">\n";
  page += std::string("<p class=\"word\">") + (pass ? "\u2713 PASS" : "\u2717 FAIL") + "</p>\n";
  page += "<p>Scenario <strong>" + text(report["scenario"]) + "</strong> on policy <strong>" +
          text(report["policy"]) + "</strong></p>\n";
  page += "<p>Started " + text(report["started_at"]) + " \u00b7 duration " +
          number(report["duration_ms"]) + " ms</p>\n</header>\n";
}

void summary(const Json& report, std::string& page) {
  page += "<h2>Drill</h2>\n<dl class=\"summary\">\n";
  page += "<dt>Scenario</dt><dd>" + text(report["scenario"]) + " \u2014 " +
          text(report["scenario_description"]) + "</dd>\n";
  page += "<dt>Parameters</dt><dd>";
  if (report["parameters"].empty()) page += "<span class=\"none\">none</span>";
  bool first = true;
  for (const auto& [name, value] : report["parameters"].items()) {
    page +=
        (first ? "" : ", ") + std::string("<code>") + escape(name) + "=" + text(value) + "</code>";
    first = false;
  }
  page += "</dd>\n";
  page += "<dt>Policy</dt><dd>" + text(report["policy"]) + " (<code>" +
          text(report["policy_file"]) + "</code>)</dd>\n";
  page += "<dt>Policy SHA-256</dt><dd><code>" + text(report["policy_sha256"]) + "</code></dd>\n";
  page += "<dt>Lab</dt><dd>" + text(report["lab"]) + "</dd>\n";
  page += "<dt>Started at</dt><dd>" + text(report["started_at"]) + "</dd>\n";
  page += "<dt>Duration</dt><dd>" + number(report["duration_ms"]) + " ms</dd>\n</dl>\n";
}

void failures(const Json& report, std::string& page) {
  page += "<h2>Failures</h2>\n";
  if (report["failures"].empty()) {
    page += std::string("<p class=\"ok\">") + kOkMark + "No failure.</p>\n";
    return;
  }
  page += "<ul class=\"failures\">\n";
  for (const Json& failure : report["failures"]) {
    page += std::string("<li class=\"fail\">") + kFailMark + text(failure) + "</li>\n";
  }
  page += "</ul>\n";
}

void gateways(const Json& report, std::string& page) {
  page += "<h2>Gateways</h2>\n";
  const Json& all = report["gateways"];
  if (all.empty()) {
    page += "<p class=\"none\">No gateway took part in an order.</p>\n";
    return;
  }
  page +=
      "<p>Times in milliseconds since the drill started; time to cut: order sent to the first "
      "dropped probe through the gateway; time to restore: order sent to the first probe open "
      "again. " +
      std::string(html::kNotMeasured) + ": not measured.</p>\n";
  page +=
      "<table class=\"gateways\">\n<thead><tr><th>Gateway</th><th>Time to cut (ms)</th>"
      "<th>Time to restore (ms)</th></tr></thead>\n<tbody>\n";
  for (const auto& [id, gateway] : all.items()) {
    page += "<tr><th scope=\"row\">" + escape(id) + "</th>" + msCell(gateway["time_to_cut_ms"]) +
            msCell(gateway["time_to_restore_ms"]) + "</tr>\n";
  }
  page += "</tbody>\n</table>\n";

  for (const auto& [id, gateway] : all.items()) {
    page += "<section class=\"gateway\">\n<h3>Gateway " + escape(id) + "</h3>\n";
    page += "<table class=\"gateway-times\">\n<tbody>\n<tr><th scope=\"row\">time_to_cut_ms</th>" +
            msCell(gateway["time_to_cut_ms"]) +
            "</tr>\n<tr><th scope=\"row\">time_to_restore_ms</th>" +
            msCell(gateway["time_to_restore_ms"]) + "</tr>\n</tbody>\n</table>\n";
    const Json& transitions = gateway["transitions"];
    if (transitions.empty()) {
      page += "<p class=\"none\">No transition on this gateway.</p>\n</section>\n";
      continue;
    }
    page += html::timelineSvg(id, transitions);
    page +=
        "<table class=\"transitions\">\n<thead><tr><th>Step</th><th>Action</th><th>Order</th>"
        "<th>Order sent</th><th>Dispatch received</th><th>Applied</th><th>Ack received</th>"
        "<th>First dropped probe</th><th>First open probe</th></tr></thead>\n<tbody>\n";
    for (const Json& t : transitions) {
      page += "<tr><td class=\"ms\">" + number(t["step"]) + "</td><td>" + text(t["action"]) +
              "</td>" + idCell(t["order_id"]) + msCell(t["order_sent_ms"]) +
              msCell(t["dispatch_received_ms"]) + msCell(t["applied_ms"]) +
              msCell(t["ack_received_ms"]) + msCell(t["first_dropped_probe_ms"]) +
              msCell(t["first_open_probe_ms"]) + "</tr>\n";
    }
    page += "</tbody>\n</table>\n</section>\n";
  }
}

// The column of a probe in its matrix: proto, port, family, and whether the flow was
// established before the cut (a different question from a new connection).
using ProbeColumn = std::tuple<std::string, std::string, std::string, bool>;

std::string columnHeading(const ProbeColumn& column) {
  const auto& [proto, port, family, established] = column;
  std::string heading = proto;
  if (!port.empty()) heading += "/" + port;
  heading += "<br>" + family;
  if (established) heading += "<br>established";
  return heading;
}

std::string probeResult(const Json& probe) {
  const bool ok = probe["ok"].get<bool>();
  return std::string(ok ? kOkMark : kFailMark) + "expected " + text(probe["expected"]) +
         ", observed " + text(probe["observed"]);
}

// One expect step's probes as a matrix: rows from -> to, columns proto/port/family.
void probeMatrix(const std::vector<const Json*>& probes, std::string& page) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::vector<ProbeColumn> columns;
  // cell (row, column) -> the probes in it, usually one.
  std::map<std::pair<size_t, size_t>, std::vector<const Json*>> cells;
  for (const Json* probe : probes) {
    const Json& p = *probe;
    const std::pair<std::string, std::string> row{p["from"].get<std::string>(),
                                                  p["to"].get<std::string>()};
    const ProbeColumn column{p["proto"].get<std::string>(),
                             p["port"].is_null() ? "" : p["port"].dump(),
                             p["family"].get<std::string>(), p["established"].get<bool>()};
    auto r = std::find(rows.begin(), rows.end(), row);
    if (r == rows.end()) r = rows.insert(rows.end(), row);
    auto c = std::find(columns.begin(), columns.end(), column);
    if (c == columns.end()) c = columns.insert(columns.end(), column);
    cells[{static_cast<size_t>(r - rows.begin()), static_cast<size_t>(c - columns.begin())}]
        .push_back(probe);
  }
  page += "<table class=\"probes\">\n<thead><tr><th>from \u2192 to</th>";
  for (const ProbeColumn& column : columns) {
    const auto& [proto, port, family, established] = column;
    page += "<th>" + columnHeading({escape(proto), port, escape(family), established}) + "</th>";
  }
  page += "</tr></thead>\n<tbody>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    page += "<tr><th scope=\"row\">" + escape(rows[r].first) + " \u2192 " + escape(rows[r].second) +
            "</th>";
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto found = cells.find({r, c});
      if (found == cells.end()) {
        page += "<td class=\"none\" title=\"not probed\"></td>";
        continue;
      }
      bool all_ok = true;
      std::string results;
      for (const Json* probe : found->second) {
        all_ok &= (*probe)["ok"].get<bool>();
        results += (results.empty() ? "" : "<br>") + probeResult(*probe);
      }
      page += std::string("<td class=\"") + (all_ok ? "ok" : "fail") + "\">" + results + "</td>";
    }
    page += "</tr>\n";
  }
  page += "</tbody>\n</table>\n";
}

void probes(const Json& report, std::string& page) {
  page += "<h2>Probe matrix</h2>\n";
  static constexpr std::pair<const char*, const char*> kPhases[] = {
      {"before", "Before the cut"}, {"during", "During the cut"}, {"after", "After the restore"}};
  for (const auto& [phase, title] : kPhases) {
    page += std::string("<h3>") + title + "</h3>\n";
    // The probes of this phase, one matrix per step, steps in the order the report has them.
    std::vector<std::pair<const Json*, std::vector<const Json*>>> steps;
    for (const Json& probe : report["probes"]) {
      if (probe["phase"] != phase) continue;
      if (steps.empty() || *steps.back().first != probe["step"] ||
          steps.back().second.front()->at("label") != probe["label"]) {
        steps.push_back({&probe["step"], {}});
      }
      steps.back().second.push_back(&probe);
    }
    if (steps.empty()) {
      page += "<p class=\"none\">No probe in this phase.</p>\n";
      continue;
    }
    for (const auto& [step, step_probes] : steps) {
      page +=
          "<h4>Step " + number(*step) + ": " + text(step_probes.front()->at("label")) + "</h4>\n";
      probeMatrix(step_probes, page);
    }
  }
}

void faults(const Json& report, std::string& page) {
  page += "<h2>Faults</h2>\n";
  if (report["faults"].empty()) {
    page += "<p class=\"none\">No fault was injected.</p>\n";
    return;
  }
  page +=
      "<table class=\"faults\">\n<thead><tr><th>Step</th><th>Fault</th><th>Gateway</th>"
      "<th>At (ms)</th><th>The cut held</th><th>Detail</th></tr></thead>\n<tbody>\n";
  for (const Json& fault : report["faults"]) {
    const Json& held = fault["cut_held"];
    std::string held_cell;
    if (held.is_null()) {
      held_cell = std::string("<td class=\"none\">") + html::kNotMeasured + " not checked</td>";
    } else if (held.get<bool>()) {
      held_cell = std::string("<td class=\"ok\">") + kOkMark + "yes</td>";
    } else {
      held_cell = std::string("<td class=\"fail\">") + kFailMark + "no</td>";
    }
    page += "<tr><td class=\"ms\">" + number(fault["step"]) + "</td><td>" + text(fault["kind"]) +
            "</td>" + idCell(fault["gateway"]) + msCell(fault["at_ms"]) + held_cell + "<td>" +
            text(fault["detail"]) + "</td></tr>\n";
  }
  page += "</tbody>\n</table>\n";
}

void checks(const Json& report, std::string& page) {
  const Json& management = report["management"];
  const bool kept = management["kept_working"].get<bool>();
  page += "<h2>Management</h2>\n<p class=\"" + std::string(kept ? "ok" : "fail") + "\">" +
          (kept ? kOkMark : kFailMark) +
          (kept ? "The controller stayed reachable on its management path: "
                : "The controller did not stay reachable on its management path: ") +
          "the expectations' probes to it: " + number(management["probes"]) + ", " +
          number(management["failures"]) + " failed.</p>\n";
  if (const Json& watch = management.value("continuous", Json()); watch.is_object()) {
    page += "<p>Watched continuously (every 20 ms, from the measured hosts to its agent port): " +
            number(watch["probes"]) + " probes, " + number(watch["failed"]) + " failed";
    if (watch["first_failed_ms"].is_number()) {
      page += ", the first at " + number(watch["first_failed_ms"]) + " ms";
    }
    if (watch["excluded_because"].is_string()) {
      page += " (" + text(watch["excluded_because"]) + ")";
    }
    page += ".</p>\n";
  }

  const Json& flows = report["established_flows"];
  page += "<h2>Established flows</h2>\n<p>Established TCP flows opened before a cut: " +
          number(flows["checked"]) + " checked, " + number(flows["cut"]) +
          " stopped by the cut.</p>\n";

  const Json& audit = report["audit"];
  const bool verified = audit["verified"].get<bool>();
  page += "<h2>Audit</h2>\n<p class=\"" + std::string(verified ? "ok" : "fail") + "\">" +
          (verified ? kOkMark : kFailMark) +
          (verified ? "The audit logs verified: " : "The audit logs did not verify: ") +
          number(audit["entries"]) + " entries.</p>\n<p>" + text(audit["detail"]) + "</p>\n";
}

void steps(const Json& report, std::string& page) {
  page += "<h2>Steps</h2>\n";
  if (report["steps"].empty()) {
    page += "<p class=\"none\">No step ran.</p>\n";
    return;
  }
  page +=
      "<table class=\"steps\">\n<thead><tr><th>#</th><th>Step</th><th>Do</th><th>Phase</th>"
      "<th>Started (ms)</th><th>Ended (ms)</th><th>Result</th><th>Detail</th><th>Order</th>"
      "</tr></thead>\n<tbody>\n";
  for (const Json& step : report["steps"]) {
    const bool ok = step["ok"].get<bool>();
    page += "<tr><td class=\"ms\">" + number(step["index"]) + "</td><td>" + text(step["label"]) +
            "</td><td>" + text(step["do"]) + "</td><td>" + text(step["phase"]) + "</td>" +
            msCell(step["started_ms"]) + msCell(step["ended_ms"]) + "<td class=\"" +
            (ok ? "ok\">" + std::string(kOkMark) + "ok" : "fail\">" + std::string(kFailMark)) +
            "</td><td>" + text(step["detail"]) + "</td>" + idCell(step["order_id"]) + "</tr>\n";
  }
  page += "</tbody>\n</table>\n";
}

}  // namespace

Result<std::string> renderReportHtml(const Json& report) {
  SHADAN_RETURN_IF_ERROR(checkReportJson(report));
  const bool pass = report["verdict"] == "pass";
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Shadan drill " +
      std::string(pass ? "PASS" : "FAIL") + ": " + text(report["scenario"]) + " on " +
      text(report["policy"]) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  header(report, page);
  summary(report, page);
  failures(report, page);
  gateways(report, page);
  probes(report, page);
  faults(report, page);
  checks(report, page);
  steps(report, page);
  page += "<footer>Shadan drill report, format " + number(report["report_version"]) +
          ". Times are milliseconds since the start of the drill. This page is rendered from "
          "report.json beside it; every number on it is a number of report.json.</footer>\n"
          "</body>\n</html>\n";
  return page;
}

}  // namespace shadan::drill
