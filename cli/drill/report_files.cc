// Reading and writing the report files: the only part of the report code that touches the file
// system.

#include <fstream>
#include <system_error>

#include "cli/drill/report_html.h"
#include "common/atomic_file.h"
#include "common/strict_json.h"

namespace shadan::drill {

Result<nlohmann::json> loadReportFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return makeError(ErrorCode::kIo, path + ": is a directory, not a report file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, path + ": cannot open for reading");
  // Read in pieces up to one byte past the cap: an oversized file is refused without trusting
  // its size, and a small one does not cost the cap in memory.
  std::string text;
  std::string piece(64 * 1024, '\0');
  while (in && text.size() <= kReportMaxBytes) {
    in.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    text.append(piece.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return makeError(ErrorCode::kIo, path + ": read failed");
  SHADAN_ASSIGN_OR_RETURN(auto report, parseStrictJson(text, path, kReportMaxBytes));
  auto checked = checkReportJson(report);
  if (!checked.ok()) return checked.error().withContext(path);
  return report;
}

Status writeReportFiles(const std::filesystem::path& dir, const nlohmann::json& report) {
  // Rendered before anything is written: a report that does not pass writes no file at all.
  SHADAN_ASSIGN_OR_RETURN(const std::string html, renderReportHtml(report));
  // The report passed the check, but its strings may still hold bytes that are not UTF-8 (a
  // detail quoting a process's output); replaced, not thrown about.
  const std::string json =
      report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return makeError(ErrorCode::kIo, dir.string() + ": not a directory (the report goes in it)");
  }
  SHADAN_RETURN_IF_ERROR(
      writeFileAtomically((dir / kReportJsonName).string(), json, 0644, ExistingFile::kReplace));
  return writeFileAtomically((dir / kReportHtmlName).string(), html, 0644, ExistingFile::kReplace);
}

}  // namespace shadan::drill
