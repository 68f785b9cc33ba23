#pragma once

// Reads the nf_tables ruleset generation id (NFT_MSG_GETGEN): a 32-bit counter the kernel bumps
// on every committed transaction in a network namespace (aborted batches and dry runs leave it
// alone). Equal ids at two instants mean no transaction committed in between. One netlink round
// trip, answered synchronously by the kernel.
//
// Users: NftMonitor::currentGeneration() (a backstop that no change went unseen) and
// NftablesBackend::readTable() (skip the listing when nothing changed since the last one).
//
// A subtlety for anyone caching on the generation: the kernel bumps the id at the START of a
// commit, then makes the transaction's objects visible and finishes in-place updates (chain
// policies, table flags, ...) while still holding its commit mutex. GETGEN and listings take no
// lock, so a GETGEN can already report g while a listing still shows part of g-1. settled(g) is
// the barrier that closes this window: see there.
//
// Network namespace: the socket is bound in the namespace of the thread that called open(), and
// keeps answering for that namespace whatever the thread does later.
//
// Threading: not thread-safe; one owner thread.

#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"

struct mnl_socket;

namespace shadan::agent {

class NftGenerationReader {
 public:
  // Opens and binds a NETLINK_NETFILTER socket with a receive timeout, so current() cannot block
  // forever on a reply that never comes.
  static Result<std::unique_ptr<NftGenerationReader>> open();

  NftGenerationReader(const NftGenerationReader&) = delete;
  NftGenerationReader& operator=(const NftGenerationReader&) = delete;
  ~NftGenerationReader();

  // The kernel's current generation id. Replies to an earlier request that timed out are told
  // apart by sequence number and skipped.
  Result<uint32_t> current();

  // True when the generation is `generation` with no transaction in flight, at an instant after
  // this call began; false when the ruleset has moved past it. So after current() returned g and
  // settled(g) returned true, every change of generation g is visible to a listing started
  // afterwards, and such a listing shows exactly g unless the generation moves on.
  //
  // How: an EMPTY nf_tables batch whose BATCH_BEGIN carries NFNL_BATCH_GENID = g. The kernel
  // takes its commit mutex for it (waiting for an in-flight commit to finish), rejects it with
  // ERESTART when the generation is not g, and otherwise commits nothing: no generation bump, no
  // notification, no audit record. A GETGEN sent after it on the same socket bounds the wait for
  // the (error-only) batch reply. Needs CAP_NET_ADMIN in the namespace, like any nf_tables batch.
  Result<bool> settled(uint32_t generation);

 private:
  struct SocketCloser {
    void operator()(mnl_socket* socket) const;
  };
  using SocketPtr = std::unique_ptr<mnl_socket, SocketCloser>;

  explicit NftGenerationReader(SocketPtr socket);

  // Sends GETGEN and reads replies up to its ack. Errors acked for `batch_seq` (an earlier
  // request on this socket, 0 for none) are stored in `batch_error` (a negative errno), not
  // returned.
  Result<uint32_t> requestGeneration(uint32_t batch_seq, int& batch_error);

  SocketPtr socket_;
  uint32_t request_seq_ = 0;
  // 4-byte aligned (nlmsghdr); holds the request and then each reply datagram.
  std::vector<uint32_t> buffer_;
};

}  // namespace shadan::agent
