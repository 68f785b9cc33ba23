#pragma once

// Pieces of report.html shared by report_html.cc (the page) and report_svg.cc (the timelines).
// Both take a report that passed checkReportJson(): members are present with their types.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace shadan::drill::html {

// What the page shows for a null time.
inline constexpr const char* kNotMeasured = "\u2014";

// `text` safe in HTML text and in a double- or single-quoted attribute: & < > " ' escaped;
// bytes that are not UTF-8 and control characters other than tab and newline become U+FFFD.
std::string escape(std::string_view text);

// A string member of the report, escaped.
std::string text(const nlohmann::json& value);

// A number of the report exactly as report.json has it; kNotMeasured for null.
std::string number(const nlohmann::json& value);

// The timeline of one gateway's transitions (report "gateways"/<id>/"transitions") as an inline
// SVG element; "" when it has no transition.
std::string timelineSvg(const std::string& gateway, const nlohmann::json& transitions);

}  // namespace shadan::drill::html
