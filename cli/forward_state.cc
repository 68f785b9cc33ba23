#include "cli/forward_state.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

constexpr size_t kStateMaxBytes = 16 * 1024;
constexpr int64_t kStateVersion = 1;

}  // namespace

std::string defaultForwardStatePath(const std::string& kind, const std::string& absolute_log) {
  return std::string(kForwardStateDir) + "/forward-" + kind + "-" +
         sha256Hex(absolute_log).substr(0, 16) + ".json";
}

Result<std::optional<ForwardState>> loadForwardState(const std::string& state_file,
                                                     const std::string& kind,
                                                     const std::string& absolute_log) {
  std::error_code exists_error;
  if (!std::filesystem::exists(state_file, exists_error) && !exists_error) {
    return std::optional<ForwardState>();
  }
  std::ifstream in(state_file, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, "cannot read state file " + state_file);
  std::string text(kStateMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  SHADAN_ASSIGN_OR_RETURN(const auto doc, parseStrictJson(text, state_file, kStateMaxBytes));
  const StrictObjectReader reader(doc, state_file);
  SHADAN_RETURN_IF_ERROR(
      reader.checkMembers({"version", "kind", "log", "device", "inode", "offset"}));
  SHADAN_ASSIGN_OR_RETURN(const int64_t version,
                          reader.integer("version", kStateVersion, kStateVersion));
  (void)version;
  ForwardState state;
  SHADAN_ASSIGN_OR_RETURN(state.kind, reader.string("kind"));
  SHADAN_ASSIGN_OR_RETURN(state.log, reader.string("log"));
  SHADAN_ASSIGN_OR_RETURN(state.position.file.device, reader.unsignedInteger("device"));
  SHADAN_ASSIGN_OR_RETURN(state.position.file.inode, reader.unsignedInteger("inode"));
  SHADAN_ASSIGN_OR_RETURN(state.position.offset, reader.unsignedInteger("offset"));
  if (state.kind != kind || state.log != absolute_log) {
    return makeError(ErrorCode::kInvalidArgument,
                     "state file " + state_file + " belongs to 'forward " + state.kind + " " +
                         state.log + "', not 'forward " + kind + " " + absolute_log +
                         "'; pass another --state FILE");
  }
  return std::optional<ForwardState>(std::move(state));
}

Status saveForwardState(const std::string& state_file, const ForwardState& state) {
  const nlohmann::json doc = {{"version", kStateVersion},
                              {"kind", state.kind},
                              {"log", state.log},
                              {"device", state.position.file.device},
                              {"inode", state.position.file.inode},
                              {"offset", state.position.offset}};
  Status written = writeFileAtomically(state_file, doc.dump() + "\n", 0644, ExistingFile::kReplace);
  if (!written.ok()) return written.error().withContext("cannot save the forward state");
  return okStatus();
}

}  // namespace shadan
