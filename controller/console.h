#pragma once

// The operator console (controller/console/: index.html, console.css, console.js), compiled
// into the controller by scripts/embed-console.py and served by the API router without a token
// at / and /console/<name>; everything it shows comes from the API with the operator's token
// (docs/console.md).

#include <string_view>
#include <vector>

namespace shadan::controller {

struct ConsoleFile {
  std::string_view name;          // "console.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
  std::string_view sha256;  // hex, the ETag
};

const std::vector<ConsoleFile>& consoleFiles();

// Sent with every console file: nothing but the controller's own files and API, no inline code,
// no framing.
inline constexpr std::string_view kConsoleContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace shadan::controller
