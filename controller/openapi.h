#pragma once

// docs/openapi.yaml, the description of the whole HTTP API, as JSON text: converted at build
// time by scripts/openapi-json.py (which also refuses a document that is not well-formed) and
// served at GET /v1/openapi.json. tests/controller/openapi_test.cc holds it against the router.

#include <string_view>

namespace shadan::controller {

std::string_view openApiJson();

}  // namespace shadan::controller
