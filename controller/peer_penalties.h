#pragma once

// The API's memory of peers whose connections end badly: a failed or stalled TLS handshake,
// headers or a body over the limit, a request that did not arrive in time, a wrong token (401).
// Each peer has a bucket of `burst` failures that refills at `per_minute`; a peer whose bucket
// is empty has its new connections closed as they are accepted, before any TLS, until it refills.
// A client that behaves is never slowed: only failures take from the bucket. So a flood of
// handshakes, oversized headers or endless bodies from a few addresses costs the server an
// accept and a close each, not a handshake each, and an operator from another address is served
// as usual (docs/security.md "Limits").
//
// Contracts:
//   - A peer is its IP address; an IPv6 address counts with its /64 (one site's usual share, so
//     walking a prefix does not give fresh buckets), an IPv4-mapped IPv6 address as IPv4.
//   - At most `max_peers` buckets are kept. When a new peer fails with that many kept, buckets
//     that have refilled are dropped, in one sweep at most once a second (a flood of new
//     addresses into a full table costs a lookup each, not a sweep each); when none can be
//     dropped, the new peer's failure is not tracked (counted in untracked()): the limits on
//     open connections still bound it.
//   - Not thread-safe: the API's network thread only.

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace shadan::controller {

class PeerPenalties {
 public:
  using Clock = std::chrono::steady_clock;

  PeerPenalties(size_t burst, size_t per_minute, size_t max_peers = 65536);

  // The key of `address` (see the contract).
  static std::string peerKey(const boost::asio::ip::address& address);

  // Whether `peer` may open a connection at `now`: its bucket holds at least one failure.
  bool admits(const std::string& peer, Clock::time_point now);
  // One connection of `peer` ended badly at `now`.
  void fail(const std::string& peer, Clock::time_point now);

  size_t trackedPeers() const { return buckets_.size(); }
  uint64_t untracked() const { return untracked_; }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  // `bucket` refilled up to `now`.
  void refill(Bucket& bucket, Clock::time_point now) const;
  // Drops the buckets that are full again at `now`.
  void prune(Clock::time_point now);

  const double burst_;
  const double per_second_;
  const size_t max_peers_;
  std::unordered_map<std::string, Bucket> buckets_;
  Clock::time_point next_prune_{};  // a full table is swept no sooner than this
  uint64_t untracked_ = 0;
};

}  // namespace shadan::controller
