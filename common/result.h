#pragma once

// Errors as values between modules (leveldb's Status, std::expected's shape).
//
// Result<T> holds either a T or an Error; Result<void> holds nothing or an Error. Both are
// [[nodiscard]]: ignoring an error must be a visible decision (`(void)`), never an accident.
// Accessing the value of a failed Result (or the error of a successful one) is a broken
// invariant and aborts.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace shadan {

enum class ErrorCode {
  kInvalidArgument,  // bad input from a caller: CLI argument, request field
  kParse,            // bytes that are not the format they claim to be
  kPolicy,           // a policy that does not validate
  kNotFound,         // a named thing (segment, profile, gateway, file) does not exist
  kKernel,           // the kernel (netlink, nftables) refused or failed
  kIo,               // files, sockets, processes
  kState,            // the persisted state store
  kUnavailable,      // a peer (daemon, controller) cannot be reached
  kNoSpace,          // a disk is full (ENOSPC, EDQUOT, SQLITE_FULL): retry once space returns
  kInternal,         // anything else; should not happen
};

const char* errorCodeName(ErrorCode code);
// The code for a failed write or sync with this errno: kNoSpace for a full disk, else kIo.
ErrorCode writeErrorCode(int error);

struct Error {
  ErrorCode code;
  std::string message;

  // A copy of this error whose message is prefixed with `context: `.
  [[nodiscard]] Error withContext(const std::string& context) const {
    return Error{code, context + ": " + message};
  }
};

inline Error makeError(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

namespace detail {
[[noreturn]] inline void resultAccessFailure(const char* what) {
  std::fprintf(stderr, "shadan: broken invariant: %s\n", what);
  std::abort();
}
}  // namespace detail

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return data_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok())
      detail::resultAccessFailure(("value() of a failed Result: " + error().message).c_str());
    return std::get<0>(data_);
  }
  const T& value() const& {
    if (!ok())
      detail::resultAccessFailure(("value() of a failed Result: " + error().message).c_str());
    return std::get<0>(data_);
  }
  T&& value() && {
    if (!ok())
      detail::resultAccessFailure(("value() of a failed Result: " + error().message).c_str());
    return std::get<0>(std::move(data_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    if (ok()) detail::resultAccessFailure("error() of a successful Result");
    return std::get<1>(data_);
  }

 private:
  std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }

  const Error& error() const {
    if (!failed_) detail::resultAccessFailure("error() of a successful Result");
    return error_;
  }

 private:
  Error error_{ErrorCode::kInternal, {}};
  bool failed_ = false;
};

using Status = Result<void>;

inline Status okStatus() { return Status{}; }

}  // namespace shadan

// Propagates a failed Result/Status out of the enclosing function.
#define SHADAN_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    auto shadan_status_ = (expr);                            \
    if (!shadan_status_.ok()) return shadan_status_.error(); \
  } while (0)

// Declares `lhs` from the value of a Result, or propagates its error out of the enclosing
// function:
//
//   SHADAN_ASSIGN_OR_RETURN(auto doc, parseStrictJson(text, "order", kMaxOrderBytes));
//   use(doc);  // the value, not the Result
//
// `lhs` is a declaration (`auto x`, `const Foo x`); the expression may contain commas.
#define SHADAN_ASSIGN_OR_RETURN(lhs, ...)                                                \
  SHADAN_ASSIGN_OR_RETURN_IMPL_(SHADAN_RESULT_CONCAT_(shadan_result_, __COUNTER__), lhs, \
                                __VA_ARGS__)
#define SHADAN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, ...) \
  auto tmp = (__VA_ARGS__);                          \
  if (!tmp.ok()) return tmp.error();                 \
  lhs = std::move(tmp).value()
#define SHADAN_RESULT_CONCAT_(a, b) SHADAN_RESULT_CONCAT_INNER_(a, b)
#define SHADAN_RESULT_CONCAT_INNER_(a, b) a##b
