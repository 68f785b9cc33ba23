// The per-gateway timeline of report.html: one band per transition (an isolate or a restore),
// each with its own time axis, because the marks of one transition lie milliseconds apart while
// the transitions lie seconds apart: one axis for the whole drill would draw them on one pixel.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/drill/report_html_internal.h"

namespace shadan::drill::html {
namespace {

using Json = nlohmann::json;

struct MarkKind {
  const char* member;
  const char* name;
  const char* colour;
};

// In the order an order's life takes them; labels of marks at the same time keep this order.
constexpr MarkKind kMarks[] = {
    {"order_sent_ms", "order sent", "#1f4e9c"},
    {"dispatch_received_ms", "dispatch received", "#6a3fa0"},
    {"applied_ms", "applied", "#0b7a75"},
    {"ack_received_ms", "ack received", "#8a5a00"},
    {"first_dropped_probe_ms", "first dropped probe", "#b3261e"},
    {"first_open_probe_ms", "first open probe", "#1b7f3b"},
};

struct Mark {
  const MarkKind* kind;
  int64_t at;
  std::string shown;  // the report's number as written
};

constexpr int kWidth = 960;
constexpr int kAxisLeft = 40;
constexpr int kAxisRight = 920;
constexpr int kRow = 16;

// The band of one transition, drawn from y = `top`; returns its height.
int band(const Json& transition, int top, std::string& svg) {
  std::vector<Mark> marks;
  std::string missing;
  for (const MarkKind& kind : kMarks) {
    const Json& value = transition[kind.member];
    if (value.is_null()) {
      missing += (missing.empty() ? "" : ", ") + std::string(kind.name);
    } else {
      marks.push_back(Mark{&kind, value.get<int64_t>(), value.dump()});
    }
  }
  std::stable_sort(marks.begin(), marks.end(),
                   [](const Mark& a, const Mark& b) { return a.at < b.at; });

  const int axis = top + 40;
  svg += "<text x=\"" + std::to_string(kAxisLeft) + "\" y=\"" + std::to_string(top + 16) +
         "\" class=\"band-title\">step " + number(transition["step"]) + " \u00b7 " +
         text(transition["action"]) + " \u00b7 order " + text(transition["order_id"]) + "</text>\n";
  svg += "<text x=\"" + std::to_string(kAxisRight) + "\" y=\"" + std::to_string(axis - 8) +
         "\" text-anchor=\"end\" class=\"axis-unit\">ms since the drill started</text>\n";
  svg += "<line x1=\"" + std::to_string(kAxisLeft) + "\" y1=\"" + std::to_string(axis) +
         "\" x2=\"" + std::to_string(kAxisRight) + "\" y2=\"" + std::to_string(axis) +
         "\" class=\"axis\"/>\n";

  // Computed in floating point: report times may be anywhere in int64, and the product of a
  // time difference and the width must not overflow. Coordinates only, never shown.
  const double low = marks.empty() ? 0.0 : static_cast<double>(marks.front().at);
  const double high = marks.empty() ? 0.0 : static_cast<double>(marks.back().at);
  const double span = high > low ? high - low : 1.0;
  int row = 0;
  for (const Mark& mark : marks) {
    const int x = kAxisLeft + static_cast<int>((static_cast<double>(mark.at) - low) / span *
                                               (kAxisRight - kAxisLeft));
    const int label_y = axis + 24 + kRow * row++;
    const std::string xs = std::to_string(x);
    svg += "<line x1=\"" + xs + "\" y1=\"" + std::to_string(axis + 6) + "\" x2=\"" + xs +
           "\" y2=\"" + std::to_string(label_y - 11) + "\" class=\"leader\"/>\n";
    svg += "<circle cx=\"" + xs + "\" cy=\"" + std::to_string(axis) + "\" r=\"5\" fill=\"" +
           mark.kind->colour + "\"/>\n";
    const bool right_half = x > (kAxisLeft + kAxisRight) / 2;
    svg += "<text x=\"" + std::to_string(right_half ? x + 4 : x - 4) + "\" y=\"" +
           std::to_string(label_y) + "\" text-anchor=\"" + (right_half ? "end" : "start") +
           "\" fill=\"" + mark.kind->colour + "\">" + mark.kind->name + " " + mark.shown +
           "</text>\n";
  }
  int height = 40 + 24 + kRow * std::max(row - 1, 0) + 8;
  if (!missing.empty()) {
    height += kRow;
    svg += "<text x=\"" + std::to_string(kAxisLeft) + "\" y=\"" + std::to_string(top + height) +
           "\" class=\"not-measured\">not measured (" + kNotMeasured + "): " + missing +
           "</text>\n";
  }
  return height + 16;
}

}  // namespace

std::string timelineSvg(const std::string& gateway, const Json& transitions) {
  if (transitions.empty()) return "";
  std::string bands;
  int height = 0;
  for (const Json& transition : transitions) height += band(transition, height, bands);
  // No xmlns: inline SVG in HTML needs none, and the page holds no URL of any kind.
  return "<svg class=\"timeline\" viewBox=\"0 0 " + std::to_string(kWidth) + " " +
         std::to_string(height) + "\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
         std::to_string(height) + "\" role=\"img\">\n<title>Timeline of gateway " +
         escape(gateway) + "</title>\n" + bands + "</svg>\n";
}

}  // namespace shadan::drill::html
