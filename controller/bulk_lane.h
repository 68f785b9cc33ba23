#pragma once

// The API server's lane for bulk requests (apiIsBulk: alert batches).
//
// A bulk request is not handled when it is read but queued here, and the lane runs one job per
// turn of the io loop: each run is posted behind the handlers already ready, so a request read
// meanwhile (an operator's isolate during an alert storm) is handled after at most one batch,
// not after every batch queued before it. The lane is bounded in jobs and bytes: push() refuses
// over either bound and the server answers 429 at once, so a storm costs memory and latency
// only up to the bound.
//
// Threading: the io_context's one thread; push() and the jobs run there. Jobs hold what they
// need (the session's shared_ptr); the lane keeps itself alive while a run is posted.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

namespace shadan::controller {

class BulkLane : public std::enable_shared_from_this<BulkLane> {
 public:
  BulkLane(boost::asio::io_context& io, size_t max_jobs, size_t max_bytes)
      : io_(io), max_jobs_(max_jobs), max_bytes_(max_bytes) {}

  // Queues `job` (its request body is `bytes` long); false, and nothing queued, when the lane
  // already holds max_jobs jobs or the job would take it over max_bytes.
  bool push(size_t bytes, std::function<void()> job) {
    if (jobs_.size() >= max_jobs_ || bytes > max_bytes_ - bytes_) return false;
    jobs_.push_back({bytes, std::move(job)});
    bytes_ += bytes;
    schedule();
    return true;
  }
  size_t queued() const { return jobs_.size(); }

 private:
  void schedule() {
    if (scheduled_ || jobs_.empty()) return;
    scheduled_ = true;
    boost::asio::post(io_, [self = shared_from_this()] {
      self->scheduled_ = false;
      auto [bytes, job] = std::move(self->jobs_.front());
      self->jobs_.pop_front();
      self->bytes_ -= bytes;
      job();
      self->schedule();
    });
  }

  boost::asio::io_context& io_;
  const size_t max_jobs_;
  const size_t max_bytes_;
  std::deque<std::pair<size_t, std::function<void()>>> jobs_;
  size_t bytes_ = 0;
  bool scheduled_ = false;
};

}  // namespace shadan::controller
