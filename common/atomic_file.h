#pragma once

// Writing a whole small file so that readers (and a crash) see either the old state or the
// complete new file, never a part: temporary file in the same directory, fsync, then link()
// (a new file: never replaces one) or rename() (replaces), then fsync of the directory.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan {

enum class ExistingFile {
  kRefuse,   // kInvalidArgument "<path> already exists; refusing to overwrite it"
  kReplace,  // the new file takes the old one's place in one rename
};

// Writes `contents` to `path` with exactly `mode` (the umask does not apply). On any error the
// target is untouched and no temporary file is left behind.
Status writeFileAtomically(const std::string& path, std::string_view contents, mode_t mode,
                           ExistingFile existing);

}  // namespace shadan
