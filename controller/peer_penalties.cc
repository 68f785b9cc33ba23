#include "controller/peer_penalties.h"

#include <algorithm>

namespace shadan::controller {

PeerPenalties::PeerPenalties(size_t burst, size_t per_minute, size_t max_peers)
    : burst_(static_cast<double>(burst)),
      per_second_(static_cast<double>(per_minute) / 60.0),
      max_peers_(max_peers) {}

std::string PeerPenalties::peerKey(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

void PeerPenalties::refill(Bucket& bucket, Clock::time_point now) const {
  if (now <= bucket.updated) return;
  const double seconds = std::chrono::duration<double>(now - bucket.updated).count();
  bucket.tokens = std::min(burst_, bucket.tokens + seconds * per_second_);
  bucket.updated = now;
}

bool PeerPenalties::admits(const std::string& peer, Clock::time_point now) {
  const auto it = buckets_.find(peer);
  if (it == buckets_.end()) return true;
  refill(it->second, now);
  return it->second.tokens >= 1.0;
}

void PeerPenalties::fail(const std::string& peer, Clock::time_point now) {
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_peers_ && now >= next_prune_) {
      prune(now);
      next_prune_ = now + std::chrono::seconds(1);
    }
    if (buckets_.size() >= max_peers_) {
      ++untracked_;
      return;
    }
    it = buckets_.emplace(peer, Bucket{burst_, now}).first;
  }
  refill(it->second, now);
  it->second.tokens = std::max(0.0, it->second.tokens - 1.0);
}

void PeerPenalties::prune(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    it = it->second.tokens >= burst_ ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace shadan::controller
