#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>

namespace shadan {

// Lower-case hex SHA-256 of `data` (OpenSSL EVP).
std::string sha256Hex(std::string_view data);

// OpenSSL's SHA-256, fetched once for the process. EVP_sha256() makes OpenSSL 3 look the
// algorithm up again at every digest, under a process-wide lock: with thousands of agents in
// one process (shadan-loadgen), or a controller hashing every audit line, that lock was the
// top symbol. Use this wherever a digest is made.
const EVP_MD* sha256Md();

}  // namespace shadan
