#pragma once

// The command ids an agent has accepted (PROTOCOL.md step 8: an order is carried out once).
//
// Why not a plain std::set: the set travels inside DesiredState, which the agent copies on every
// order (the state before, the state after, the state it reports), and it grows by one id per
// order. Copying a thousand ids costs more than verifying the order's signatures. Here copies
// share one immutable set: copying is O(1), and insert() clones only when the set is shared
// (one clone per order at most, none when the caller owns the only reference).
//
// Value semantics as seen from outside: a copy never observes a later insert() into another.
// Not thread-safe for concurrent use of ONE object; distinct copies may be used from distinct
// threads (the shared set is never modified while shared).

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace shadan {

class CommandIdSet {
 public:
  using Set = std::set<std::string, std::less<>>;
  using const_iterator = Set::const_iterator;

  CommandIdSet() = default;
  CommandIdSet(std::initializer_list<std::string> ids)
      : ids_(ids.size() == 0 ? nullptr : std::make_shared<Set>(ids)) {}

  bool contains(std::string_view id) const { return ids_ && ids_->contains(id); }
  std::size_t count(std::string_view id) const { return contains(id) ? 1 : 0; }
  std::size_t size() const { return ids_ ? ids_->size() : 0; }
  bool empty() const { return size() == 0; }
  const_iterator begin() const { return ids_ ? ids_->cbegin() : emptySet().cbegin(); }
  const_iterator end() const { return ids_ ? ids_->cend() : emptySet().cend(); }

  // Adds `id`; true when it was not there yet.
  bool insert(std::string id) {
    if (contains(id)) return false;
    mutableSet().insert(std::move(id));
    return true;
  }

  // Removes `id`; true when it was there.
  bool erase(std::string_view id) {
    if (!contains(id)) return false;
    Set& set = mutableSet();
    set.erase(set.find(id));
    return true;
  }

  void clear() { ids_.reset(); }

  // True when both hold the very same storage (then they are equal without a comparison).
  bool sharesStorageWith(const CommandIdSet& other) const {
    return ids_ != nullptr && ids_ == other.ids_;
  }

  friend bool operator==(const CommandIdSet& a, const CommandIdSet& b) {
    if (a.ids_ == b.ids_) return true;
    if (a.size() != b.size()) return false;
    return a.size() == 0 || *a.ids_ == *b.ids_;
  }

 private:
  // The set this object may modify: its own if nobody else holds it, else a fresh copy.
  // use_count() == 1 is exact here: another owner could only appear by copying THIS object,
  // which would be a data race on it anyway.
  Set& mutableSet() {
    if (!ids_) {
      ids_ = std::make_shared<Set>();
    } else if (ids_.use_count() > 1) {
      ids_ = std::make_shared<Set>(*ids_);
    }
    return *ids_;
  }

  static const Set& emptySet() {
    static const Set empty;
    return empty;
  }

  std::shared_ptr<Set> ids_;  // null when empty
};

}  // namespace shadan
