#pragma once

// Watches nf_tables for changes made by anyone (ARCHITECTURE.md "Reconciliation"): a
// NETLINK_NETFILTER socket subscribed to NFNLGRP_NFTABLES. Every committed transaction arrives as
// one message per changed object followed by NFT_MSG_NEWGEN (generation id, pid and comm of the
// committing task); drain() folds them into one NftChangeEvent per transaction.
//
// Contract with the daemon:
//   - fd() is non-blocking; put it in the event loop (asio::posix::stream_descriptor,
//     async_wait(read)) and call drain() when it is readable. The monitor has no threads and no
//     callbacks; drain() never blocks.
//   - An event with `lost` set means notifications were dropped (ENOBUFS: the receive buffer
//     overflowed) or unreadable: what changed is unknown, so re-apply everything.
//   - NEWGEN's pid is the kernel's task_pid_nr(current) of the committing task: the THREAD id (in
//     the initial pid namespace), not the process id, when the commit comes from a thread other
//     than the main one. The daemon must compare it with gettid() of the thread that runs
//     libnftables (and with getpid()), or it takes its own commits for foreign ones.
//   - Events of a transaction the daemon is committing may already be pending when apply()
//     returns: the kernel queues them before it acknowledges the batch.
//
// currentGeneration() asks the kernel (NFT_MSG_GETGEN on a second socket, nft_generation.h) for
// the current generation id: a cheap backstop check that no change went unseen (compare with the
// gen_id of the last event).
//
// Threading: not thread-safe; owned by the enforcement thread. The sockets are bound to the network
// namespace of the thread that called open().

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/netlink_parse.h"
#include "agents/dataplane/nft_generation.h"
#include "common/result.h"

struct mnl_socket;

namespace shadan::agent {

struct NftMonitorOptions {
  // The table whose changes matter (firewall_backend.h's).
  std::string table_family = std::string(kTableFamily);
  std::string table_name = std::string(kTableName);
  // Receive buffer of the event socket: an `nft -f` of thousands of objects produces as many
  // notifications at once. Forced past rmem_max when we have CAP_NET_ADMIN (SO_RCVBUFFORCE),
  // else capped by it (SO_RCVBUF). Tests make it tiny to provoke ENOBUFS.
  int receive_buffer_bytes = 8 << 20;
};

class NftMonitor {
 public:
  static Result<std::unique_ptr<NftMonitor>> open(const NftMonitorOptions& options);

  NftMonitor(const NftMonitor&) = delete;
  NftMonitor& operator=(const NftMonitor&) = delete;
  ~NftMonitor();

  // The event socket, for the event loop's readiness wait. Owned by the monitor.
  int fd() const;

  // Reads the pending notifications (at most a bounded number of datagrams per call, so a flood
  // cannot starve the loop; the fd then stays readable) and returns the completed transactions in
  // order. A transaction whose NEWGEN has not arrived yet is kept for the next call. Fails only
  // when the socket itself fails (not for EAGAIN or ENOBUFS).
  Result<std::vector<NftChangeEvent>> drain();

  // The kernel's current ruleset generation id (NFT_MSG_GETGEN). Blocks for the kernel's
  // synchronous reply only (bounded by a receive timeout).
  Result<uint32_t> currentGeneration();

 private:
  struct SocketCloser {
    void operator()(mnl_socket* socket) const;
  };
  using SocketPtr = std::unique_ptr<mnl_socket, SocketCloser>;

  NftMonitor(SocketPtr events, std::unique_ptr<NftGenerationReader> generation, NftTableRef ours);

  SocketPtr events_;
  std::unique_ptr<NftGenerationReader> generation_;
  NftBatchParser parser_;
  // 4-byte aligned (nlmsghdr), large enough for any notification datagram.
  std::vector<uint32_t> buffer_;
};

}  // namespace shadan::agent
