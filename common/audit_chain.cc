#include "common/audit_chain.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <memory>

#include "common/ed25519.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

Hash256 sha256Raw(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  EVP_MD_CTX* raw = EVP_MD_CTX_new();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(raw, &EVP_MD_CTX_free);
  Hash256 out{};
  unsigned int length = 0;
  // Failures here mean allocation failure or a broken OpenSSL: an invariant, not input.
  if (!ctx || EVP_DigestInit_ex(ctx.get(), sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &length) != 1 || length != out.size()) {
    std::abort();
  }
  return out;
}

std::string_view asChars(const Hash256& hash) {
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

std::string hashHex(const Hash256& hash) { return hexEncode(hash); }

}  // namespace

Hash256 auditLeafHash(std::string_view line) {
  static constexpr char kLeafPrefix = 0x00;
  return sha256Raw(std::string_view(&kLeafPrefix, 1), line);
}

std::string auditEntryHashHex(std::string_view line) { return hashHex(auditLeafHash(line)); }

Hash256 merkleNodeHash(const Hash256& left, const Hash256& right) {
  static constexpr char kNodePrefix = 0x01;
  return sha256Raw(std::string_view(&kNodePrefix, 1), asChars(left), asChars(right));
}

void MerkleCompactRange::append(const Hash256& leaf) {
  stack_.push_back({leaf, 0});
  // Equal-height neighbours are complete siblings: merge them, like a binary counter's carry.
  while (stack_.size() >= 2 && stack_[stack_.size() - 2].height == stack_.back().height) {
    Subtree right = stack_.back();
    stack_.pop_back();
    Subtree& left = stack_.back();
    left.hash = merkleNodeHash(left.hash, right.hash);
    ++left.height;
  }
  ++size_;
}

Hash256 MerkleCompactRange::root() const {
  if (stack_.empty()) return sha256Raw({});
  // RFC 6962 splits at the largest power of two below n, so the perfect subtrees are folded
  // from the right: MTH = node(T0, node(T1, ... node(Tk-1, Tk))).
  Hash256 root = stack_.back().hash;
  for (size_t i = stack_.size() - 1; i-- > 0;) root = merkleNodeHash(stack_[i].hash, root);
  return root;
}

AuditChain::Check AuditChain::accept(std::string_view line) {
  Check check;
  auto record = parseAuditLine(line);
  if (!record.ok()) {
    check.failure = Failure::kMalformed;
    check.message = record.error().message;
    return check;
  }
  check.record = *record;
  if (log_id_ && record->log_id != *log_id_) {
    check.failure = Failure::kWrongLogId;
    check.message = "log_id " + quoteForMessage(record->log_id) + " differs from " +
                    quoteForMessage(*log_id_) + " of the entries before it";
    return check;
  }
  if (record->log_seq != size()) {
    check.failure = Failure::kSeqMismatch;
    check.message =
        "log_seq is " + std::to_string(record->log_seq) + ", expected " + std::to_string(size());
    return check;
  }
  if (record->prev_hash != head_hash_) {
    check.failure = Failure::kPrevHashMismatch;
    check.message = "prev_hash " + record->prev_hash.substr(0, 16) +
                    "... does not match the entry_hash " + head_hash_.substr(0, 16) +
                    "... of the entry before it";
    return check;
  }
  const Hash256 leaf = auditLeafHash(line);
  range_.append(leaf);
  head_hash_ = hashHex(leaf);
  log_id_ = record->log_id;
  return check;
}

}  // namespace shadan
