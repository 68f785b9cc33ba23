#pragma once

// The command ids an agent has accepted (PROTOCOL.md step 8: an order is carried out once).
//
// Why not a std::set<std::string>: the set travels inside DesiredState, which the agent copies
// on every order (the state before, the state after, the state it reports), and it grows by one
// id per order. A node and a heap string per id made those copies cost more than verifying the
// order's signatures (callgrind: ~2 M instructions per order at 1,000 ids).
//
// Here the ids live in one sorted array of fixed-size entries (an id is at most kMaxLength
// bytes; the protocol's ids are 36-character UUIDs), shared between copies: copying is O(1),
// and a change clones the array only while it is shared — one allocation and a memcpy, about a
// microsecond per thousand ids.
//
// Forgetting: an id only has to be remembered while an order carrying it could still be
// accepted. Each id has a forget-after time (the caller's choice: its authz's expiry plus the
// clock skew and a margin); forgetExpired() drops the ids past it, so the set is bounded by the
// orders of the last validity window instead of growing for the life of the gateway.
//
// Value semantics as seen from outside: a copy never observes a later change to another.
// Not thread-safe for concurrent use of ONE object; distinct copies may be used from distinct
// threads (a shared array is never modified).

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string_view>
#include <vector>

namespace shadan::agent {

class CommandIdSet {
 public:
  // Longest id the set can hold. Callers accept ids from the network only after checking their
  // form (UUIDs); fits() lets a reader of stored data refuse anything longer.
  static constexpr std::size_t kMaxLength = 63;
  static bool fits(std::string_view id) { return id.size() <= kMaxLength; }
  // An id inserted without a forget-after time is kept until erased.
  static constexpr std::int64_t kKeepForever = INT64_MAX;

 private:
  struct Entry {
    std::uint8_t size = 0;
    std::array<char, kMaxLength> text{};
    std::int64_t forget_after_ms = kKeepForever;
    std::string_view view() const { return {text.data(), size}; }
    friend bool operator==(const Entry& a, const Entry& b) {
      return a.view() == b.view() && a.forget_after_ms == b.forget_after_ms;
    }
  };
  using Entries = std::vector<Entry>;

 public:
  // Iterates the ids in ascending (byte-wise) order, as string_views into the shared array;
  // they stay valid while any copy holding that array lives.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = std::string_view;

    const_iterator() = default;
    std::string_view operator*() const { return it_->view(); }
    // When the id at this position may be forgotten (unix ms; kKeepForever if never).
    std::int64_t forgetAfterMs() const { return it_->forget_after_ms; }
    const_iterator& operator++() {
      ++it_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++it_;
      return old;
    }
    friend bool operator==(const const_iterator&, const const_iterator&) = default;

   private:
    friend class CommandIdSet;
    explicit const_iterator(Entries::const_iterator it) : it_(it) {}
    Entries::const_iterator it_{};
  };

  CommandIdSet() = default;
  CommandIdSet(std::initializer_list<std::string_view> ids) {
    for (std::string_view id : ids) insert(id);
  }

  bool contains(std::string_view id) const {
    if (!entries_ || !fits(id)) return false;
    const auto it = lowerBound(*entries_, id);
    return it != entries_->end() && it->view() == id;
  }
  std::size_t count(std::string_view id) const { return contains(id) ? 1 : 0; }
  std::size_t size() const { return entries_ ? entries_->size() : 0; }
  bool empty() const { return size() == 0; }
  const_iterator begin() const { return const_iterator(entries().begin()); }
  const_iterator end() const { return const_iterator(entries().end()); }

  // Adds `id`, to be forgotten after `forget_after_ms` (unix ms); true when it was not there
  // yet (an id already there keeps its time). REQUIRES fits(id): a longer id is a broken
  // invariant of the caller (ids are checked where they enter) and aborts.
  bool insert(std::string_view id, std::int64_t forget_after_ms = kKeepForever) {
    if (!fits(id)) {
      std::fprintf(stderr, "shadan: broken invariant: command id of %zu bytes (max %zu)\n",
                   id.size(), kMaxLength);
      std::abort();
    }
    if (contains(id)) return false;
    Entries& entries = mutableEntries();
    Entry entry;
    entry.size = static_cast<std::uint8_t>(id.size());
    std::memcpy(entry.text.data(), id.data(), id.size());
    entry.forget_after_ms = forget_after_ms;
    entries.insert(lowerBound(entries, id), entry);
    return true;
  }

  // Removes `id`; true when it was there.
  bool erase(std::string_view id) {
    if (!contains(id)) return false;
    Entries& entries = mutableEntries();
    entries.erase(lowerBound(entries, id));
    return true;
  }

  // Drops every id whose forget-after time is before `now_ms`; returns how many. Clones a shared
  // array only when there is something to drop.
  std::size_t forgetExpired(std::int64_t now_ms) {
    const auto expired = [now_ms](const Entry& e) { return e.forget_after_ms < now_ms; };
    if (!entries_ || std::none_of(entries_->begin(), entries_->end(), expired)) return 0;
    return std::erase_if(mutableEntries(), expired);
  }

  void clear() { entries_.reset(); }

  // True when both hold the very same storage (then they are equal without a comparison).
  bool sharesStorageWith(const CommandIdSet& other) const {
    return entries_ != nullptr && entries_ == other.entries_;
  }

  friend bool operator==(const CommandIdSet& a, const CommandIdSet& b) {
    if (a.entries_ == b.entries_) return true;
    return std::equal(a.entries().begin(), a.entries().end(), b.entries().begin(),
                      b.entries().end());
  }

 private:
  static Entries::const_iterator lowerBound(const Entries& entries, std::string_view id) {
    return std::lower_bound(entries.begin(), entries.end(), id,
                            [](const Entry& e, std::string_view key) { return e.view() < key; });
  }

  const Entries& entries() const {
    static const Entries kEmpty;
    return entries_ ? *entries_ : kEmpty;
  }

  // The array this object may modify: its own if nobody else holds it, else a fresh copy.
  // use_count() == 1 is exact here: another owner could only appear by copying THIS object,
  // which would be a data race on it anyway.
  Entries& mutableEntries() {
    if (!entries_) {
      entries_ = std::make_shared<Entries>();
    } else if (entries_.use_count() > 1) {
      auto copy = std::make_shared<Entries>();
      copy->reserve(entries_->size() + 1);
      copy->assign(entries_->begin(), entries_->end());
      entries_ = std::move(copy);
    }
    return *entries_;
  }

  std::shared_ptr<Entries> entries_;  // null when empty
};

}  // namespace shadan::agent
