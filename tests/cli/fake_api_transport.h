#pragma once

// A fake ApiTransport for the controller commands' logic: canned answers handed out in order,
// every request recorded. An empty queue answers kUnavailable ("no canned answer"), so a test
// that expects nothing to be sent sees a call it did not plan for in `calls`.

#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/api_client.h"

namespace shadan {

struct FakeCall {
  std::string method;
  std::string path;
  std::optional<nlohmann::json> body;
};

class FakeApi {
 public:
  std::deque<Result<ApiResponse>> answers;
  std::vector<FakeCall> calls;
  ApiClientOptions last_options;

  void answer(int status, nlohmann::json body) {
    answers.push_back(ApiResponse{status, std::move(body)});
  }
};

class FakeTransport : public ApiTransport {
 public:
  explicit FakeTransport(FakeApi& api) : api_(api) {}
  Result<ApiResponse> request(std::string_view method, std::string_view path,
                              const std::optional<nlohmann::json>& body) override {
    api_.calls.push_back({std::string(method), std::string(path), body});
    if (api_.answers.empty()) return makeError(ErrorCode::kUnavailable, "no canned answer");
    Result<ApiResponse> next = std::move(api_.answers.front());
    api_.answers.pop_front();
    return next;
  }

 private:
  FakeApi& api_;
};

}  // namespace shadan
