#include "controller/alerts/guard_rails.h"

#include <algorithm>
#include <cmath>

namespace shadan::controller {

void TokenBucket::refill(int64_t now_ms) {
  if (last_ms_ < 0) {
    last_ms_ = now_ms;
    return;
  }
  if (now_ms <= last_ms_) return;
  const double elapsed_s = static_cast<double>(now_ms - last_ms_) / 1000.0;
  tokens_ = std::min(capacity_, tokens_ + elapsed_s * per_second_);
  last_ms_ = now_ms;
}

bool TokenBucket::take(int64_t now_ms, double n) {
  refill(now_ms);
  if (tokens_ + 1e-9 < n) return false;
  tokens_ = std::max(0.0, tokens_ - n);
  return true;
}

double TokenBucket::available(int64_t now_ms) {
  refill(now_ms);
  return tokens_;
}

int64_t TokenBucket::millisUntil(int64_t now_ms, double n) {
  refill(now_ms);
  const double wanted = std::min(n, capacity_);
  if (tokens_ + 1e-9 >= wanted) return 0;
  return static_cast<int64_t>(std::ceil((wanted - tokens_) / per_second_ * 1000.0));
}

void ActionWindow::trim(int64_t now_ms) {
  last_ms_ = std::max(last_ms_, now_ms);
  while (!times_.empty() && times_.front() <= last_ms_ - window_ms_) times_.pop_front();
}

void ActionWindow::add(int64_t now_ms) {
  trim(now_ms);
  times_.push_back(last_ms_);
}

size_t ActionWindow::count(int64_t now_ms) {
  trim(now_ms);
  return times_.size();
}

std::vector<int64_t> ActionWindow::times(int64_t now_ms) {
  trim(now_ms);
  return {times_.begin(), times_.end()};
}

void ActionWindow::restore(const std::vector<int64_t>& times_ms) {
  times_.assign(times_ms.begin(), times_ms.end());
  std::sort(times_.begin(), times_.end());
  if (!times_.empty()) last_ms_ = std::max(last_ms_, times_.back());
}

}  // namespace shadan::controller
