// Reading a scenario file: the only part of the drill library that touches the file system.

#include <filesystem>
#include <fstream>

#include "cli/drill/scenario.h"

namespace shadan::drill {

Result<Scenario> loadScenarioFile(const std::string& path,
                                  const std::map<std::string, std::string>& arguments) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return makeError(ErrorCode::kIo, path + ": is a directory, not a scenario file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, path + ": cannot open for reading");
  // One byte past the cap, so that an oversized file is refused without trusting its size.
  std::string text(kScenarioMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return makeError(ErrorCode::kIo, path + ": read failed");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kScenarioMaxBytes) {
    return makeError(ErrorCode::kParse, path + ": larger than the limit of " +
                                            std::to_string(kScenarioMaxBytes) + " bytes");
  }
  return parseScenario(text, path, arguments);
}

}  // namespace shadan::drill
