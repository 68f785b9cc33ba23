#include "common/result.h"

#include <cerrno>

namespace shadan {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kParse:
      return "parse";
    case ErrorCode::kPolicy:
      return "policy";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kKernel:
      return "kernel";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kState:
      return "state";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kNoSpace:
      return "no_space";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

ErrorCode writeErrorCode(int error) {
  return error == ENOSPC || error == EDQUOT ? ErrorCode::kNoSpace : ErrorCode::kIo;
}

}  // namespace shadan
