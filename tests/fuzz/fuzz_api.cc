// The HTTPS API's router (controller/api_router.h): method, target (path and query), the
// Authorization header, Content-Type and body of every request, as the server hands them over
// after HTTP parsing. The router runs on a real OrdersService over a real SQLite store (a
// temporary directory) with a fake hub, so orders, approvals and alerts are really handled.
//
// Input: byte 0 picks the caller (operator, detector or auditor token, none, a wrong token); then
// "METHOD TARGET\n", "CONTENT-TYPE\n" and the body.

#include <memory>
#include <string>
#include <vector>

#include "tests/controller/api_stack.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using namespace shadan;
using namespace shadan::controller;

// Splits off the text up to the next '\n' (all of it when there is none).
std::string_view takeLine(std::string_view& rest) {
  const size_t end = rest.find('\n');
  const std::string_view line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A fresh stack (a new store in a new directory) every kInputsPerStack inputs: one for the
  // whole run grew its store and fake audit sink through millions of accepted orders, every
  // status listing slower than the last, until the run crawled. The last directory goes at exit.
  constexpr int kInputsPerStack = 512;
  static std::unique_ptr<testing::ApiStack> fresh;
  static int inputs = 0;
  if (!fresh || ++inputs > kInputsPerStack) {
    fresh.reset();
    fresh = std::make_unique<testing::ApiStack>(testing::kLadderTestPolicy);
    inputs = 1;
  }
  testing::ApiStack& stack = *fresh;
  if (size == 0) return 0;
  ApiRequest request;
  switch (data[0] % 5) {
    case 0:
      request.authorization = std::string("Bearer ") + testing::kOperatorToken;
      break;
    case 1:
      request.authorization = std::string("Bearer ") + testing::kDetectorToken;
      break;
    case 2:
      request.authorization = std::string("Bearer ") + testing::kAuditorToken;
      break;
    case 3:
      break;
    default:
      request.authorization = "Bearer not-a-token";
  }
  std::string_view rest = fuzz::bytes(data + 1, size - 1);
  const std::string_view first = takeLine(rest);
  const size_t space = first.find(' ');
  request.method = std::string(first.substr(0, space));
  request.target = space == std::string_view::npos ? "" : std::string(first.substr(space + 1));
  request.content_type = std::string(takeLine(rest));
  request.body = std::string(rest);
  request.peer = "10.99.0.10";

  const ApiResponse response = stack.router_->handle(request);
  // No request, however malformed, is an internal error: every refusal names its reason.
  FUZZ_CHECK(response.status != 500);
  FUZZ_CHECK(response.status >= 200 && response.status < 600);
  if (response.status >= 400) {
    FUZZ_CHECK(response.body.contains("error"));
    FUZZ_CHECK(response.body["error"]["code"].is_string());
    FUZZ_CHECK(response.body["error"]["message"].is_string());
  }
  return 0;
}
