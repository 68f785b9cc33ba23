#pragma once

// The drill report (issue #17, deliverable 5; docs/drills.md "Reading the report"): report.json,
// the contract between the runner and everything that reads a drill's outcome, and report.html,
// the same report as one self-contained page a person can file.
//
// Contracts:
//   - checkReportJson() is strict about what the format requires and lenient about what it does
//     not know: every member the format defines must be present with its type (enumerations
//     with one of their values, times as non-negative integers or null), and members it does
//     not define are ignored, so a newer runner's report still reads. Errors are kParse and
//     read `<JSON pointer>: <reason>` ("/gateways/core-gw/time_to_cut_ms: must be a
//     non-negative integer or null"); a caller that read a file puts its name in front.
//   - renderReportHtml() checks the report first and renders only a report that passes. The
//     page is one file with inline CSS and inline SVG: no script, no external reference of any
//     kind (nothing is fetched when it is opened). Every string from the report is HTML-escaped
//     (bytes that are not UTF-8, and control characters, become U+FFFD). Every number on the
//     page is a number of the report, written as the report has it (nothing is rounded or
//     computed); a null time shows as "—" (not measured).
//   - writeReportFiles() writes report.json (pretty-printed) and report.html into `dir`, each
//     atomically (temporary file, then rename over any older one), mode 0644. `dir` must exist:
//     the caller makes it (the runner and `shadanctl drill report` make it 0700). A report that
//     does not pass checkReportJson() writes nothing.

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace shadan::drill {

inline constexpr int kReportFormatVersion = 1;
// report.json is read back (`shadanctl drill report --from`) with at most this many bytes: a
// real drill's report is a few hundred kilobytes; the bound is what a corrupt file may cost.
inline constexpr size_t kReportMaxBytes = 64 * 1024 * 1024;

inline constexpr const char* kReportJsonName = "report.json";
inline constexpr const char* kReportHtmlName = "report.html";

// A copy of `report` when it has every member the format requires, with its type.
Result<nlohmann::json> checkReportJson(const nlohmann::json& report);

// The page for `report`: checkReportJson()'s error for a report that does not pass.
Result<std::string> renderReportHtml(const nlohmann::json& report);

// Reads a report.json file: at most kReportMaxBytes, strict JSON (common/strict_json.h), then
// checkReportJson(). Errors name the file: "<path>: <JSON pointer>: <reason>", kIo for a file
// that cannot be read.
Result<nlohmann::json> loadReportFile(const std::string& path);

// Writes `dir`/report.json and `dir`/report.html. Errors: checkReportJson()'s (nothing
// written), kIo naming the file.
Status writeReportFiles(const std::filesystem::path& dir, const nlohmann::json& report);

}  // namespace shadan::drill
