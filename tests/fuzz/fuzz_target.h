#pragma once

// What every fuzz target shares (tests/fuzz/README.md). A target is a function of the bytes
// that returns normally for every input and aborts (FUZZ_CHECK) when an invariant breaks; the
// same source builds two ways:
//   - with SHADAN_FUZZ (clang, `make fuzz`): a libFuzzer executable, under ASan and UBSan;
//   - otherwise: a replay executable (replay_main.cc) that runs every file of its seed corpus
//     once, a unit test of the normal build, so the targets and every crash found (kept as a
//     seed) keep working with the rest of the tree.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// An invariant of the code under test, not of the input: when it breaks, the input is a bug.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace shadan::fuzz {

inline std::string_view bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace shadan::fuzz
