#pragma once

// FirewallBackend over libnftables (1.0.6): nft scripts go to the kernel as one netlink batch,
// in-process, through ONE long-lived nft_ctx.
//
// Threading: libnftables keeps global state and is not thread-safe. The backend belongs to the
// thread that called create(); a call from any other thread is a broken invariant and aborts.
//
// Network namespace: the context talks to the namespace of the creating thread (its netlink
// socket is bound there), and so does the generation reader below.
//
// Read-back cache (readTable()): every order reads our table before and after its transaction,
// and the "before" read nearly always follows our own "after" read with nothing in between. A
// listing costs ~0.05-0.2 ms; the ruleset generation id (NFT_MSG_GETGEN, nft_generation.h) costs
// one netlink round trip (~1.5 us, the settle barrier ~2 us). So readTable() keeps the last
// snapshot with the generation it belongs to:
//   - Hit: GETGEN returns the cached generation g: return a copy of the cached snapshot.
//   - Miss: GETGEN returns g; settled(g) waits for any commit in flight and confirms g is still
//     current; then list the table and cache {g, snapshot}.
// Why that is sound: the kernel bumps the generation at the START of a commit and finishes making
// the commit visible under its commit mutex, which neither GETGEN nor a listing takes. Without the
// settled(g) barrier a listing could show part of g-1 under the id g and stay cached as current.
// With it, every change of g is visible when the listing starts, so the listing shows exactly g,
// or g plus parts of later commits; in the second case the generation has moved past g and the
// entry can never hit again. A hit needs only GETGEN: until a commit bumps the generation its
// objects are invisible to listings (they sit in the next generation of the genmask).
// The generation must be read BEFORE the listing: read after it, a change landing between the two
// would be cached as current.
// Foreign ruleset cache (listForeignRulesetJson()): the lockout check lists every table but ours
// before each isolation; on a gateway with a large firewall that listing dominates the order.
// The listing is cached with its generation like the table, and our own commits carry it
// forward: apply() reads the generation before and after its transaction, and when the
// generation moved by exactly one step (our commit and nothing else) from the cached one, the
// foreign tables are unchanged and the entry is re-labelled with the new generation. Any other
// step (a foreign commit before, during or after ours, or a failed GETGEN) drops it.
// Not cached: anything when GETGEN or the barrier fails (listed as before, no error), and failed
// listings. apply() and check() drop the cache (a commit moves the generation anyway).
// Limits, accepted: (1) the id is 32 bits; exactly 2^32 commits between two reads (~4e9
// transactions) would hit a stale entry. (2) State the packet path changes without a transaction
// (dynamic sets filled by `add @set`/`update @set`, element timeouts, counters in stateful output)
// does not move the generation; our table has none of it (the planner writes static sets, and
// listings are stateless), and a planner that adds such state must drop this cache.
// Counters: readRuleCounters() is the one stateful read. It lists the table as JSON with the
// counter values, every time, beside both caches: it neither reads nor fills them, and nothing
// it returns enters readTable()'s listing or hash.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/nft_generation.h"
#include "common/result.h"

struct nft_ctx;

namespace shadan::agent {

// The counted rules of a libnftables JSON listing of our table (`nft -j list table inet shadan`,
// stateful), in listing order; rules without a counter are left out. Pure, for readRuleCounters()
// and its tests. kKernel when the document is not such a listing.
Result<std::vector<RuleCounter>> ruleCountersFromJson(const nlohmann::json& listing);

class NftablesBackend final : public FirewallBackend {
 public:
  static Result<std::unique_ptr<NftablesBackend>> create();

  NftablesBackend(const NftablesBackend&) = delete;
  NftablesBackend& operator=(const NftablesBackend&) = delete;
  ~NftablesBackend() override;

  Status apply(std::string_view nft_script) override;
  Result<TableSnapshot> readTable() override;
  Result<std::string> listRuleset() override;
  Result<nlohmann::json> listForeignRulesetJson() override;
  Result<std::vector<RuleCounter>> readRuleCounters() override;

  // Sends `nft_script` to the kernel in dry-run mode: parsed, evaluated and validated by the
  // kernel, then aborted. Catches what apply() would reject without changing anything.
  Status check(std::string_view nft_script);

  // How readTable() answered, since create(): for observability and for tests of the cache.
  struct ReadStats {
    uint64_t listed = 0;      // asked libnftables (the table, or found it absent)
    uint64_t from_cache = 0;  // returned the cached snapshot
    // GETGEN or the settle barrier failed: listed without caching (a kernel or socket problem).
    uint64_t generation_errors = 0;
    uint64_t foreign_listed = 0;      // listForeignRulesetJson() asked libnftables
    uint64_t foreign_from_cache = 0;  // ... and answered from the cache
  };
  ReadStats readStats() const;

 private:
  struct CtxDeleter {
    void operator()(nft_ctx* ctx) const;
  };
  using CtxPtr = std::unique_ptr<nft_ctx, CtxDeleter>;

  // What one libnftables call left behind; both buffers are drained by run().
  struct RunResult {
    int rc = 0;
    std::string output;
    std::string error;
  };

  // A listing and the ruleset generation it shows (see the header comment).
  template <typename T>
  struct Cached {
    uint32_t generation = 0;
    T value;
  };

  NftablesBackend(CtxPtr ctx, std::unique_ptr<NftGenerationReader> generation);

  RunResult run(std::string_view commands);
  // The generation-cache protocol both caches follow: a hit while GETGEN still reports the
  // cached generation; otherwise GETGEN, settle barrier, `list()`, and the result is cached only
  // when the barrier confirmed its generation. Counts into `listed` / `from_cache`.
  template <typename T, typename List>
  Result<T> readThroughCache(std::optional<Cached<T>>& cache, uint64_t& listed,
                             uint64_t& from_cache, List list);
  // The uncached reads: `list table` (and `list tables` to tell "absent" from a failure), and
  // `list ruleset` as JSON without our table.
  Result<TableSnapshot> listTable();
  // Whether `list tables` names our table: tells "absent" from a listing that failed otherwise.
  Result<bool> tableExists();
  Result<nlohmann::json> listForeignTables();
  void requireOwnerThread(const char* what) const;

  CtxPtr ctx_;
  std::unique_ptr<NftGenerationReader> generation_;
  std::optional<Cached<TableSnapshot>> cache_;
  std::optional<Cached<nlohmann::json>> foreign_cache_;
  ReadStats stats_;
  std::thread::id owner_;
};

}  // namespace shadan::agent
