#include "agents/dataplane/nftables_backend.h"

#include <nftables/libnftables.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "common/sha256.h"

namespace shadan::agent {
namespace {

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::string tableRef() { return std::string(kTableFamily) + " " + std::string(kTableName); }

// A failed libnftables call as an error value. The error buffer holds the parser's or the
// kernel's reason (with the offending command underlined); keep it whole, minus outer blanks.
Error nftError(const std::string& what, int rc, const std::string& error_text) {
  std::string reason = trim(error_text);
  if (reason.empty()) reason = "libnftables returned " + std::to_string(rc) + " without a message";
  return makeError(ErrorCode::kKernel, what + ": " + reason);
}

// True when `list tables <family>` output names our table on a line of its own.
bool listsOurTable(std::string_view tables_output) {
  const std::string wanted = "table " + tableRef();
  std::istringstream lines{std::string(tables_output)};
  for (std::string line; std::getline(lines, line);) {
    if (trim(line) == wanted) return true;
  }
  return false;
}

// The generation a single commit after `generation` produces (the kernel skips 0 on wrap).
uint32_t nextGeneration(uint32_t generation) {
  return generation == UINT32_MAX ? 1 : generation + 1;
}

// Drops the objects of our table from a libnftables JSON listing (`{"nftables": [{"table":
// {...}}, {"chain": {...}}, ...]}`): the table itself (family + name) and everything that names
// it as its table.
void removeOurTable(nlohmann::json& listing) {
  auto items = listing.find("nftables");
  if (items == listing.end() || !items->is_array()) return;
  const auto ours = [](const nlohmann::json& item) {
    if (!item.is_object() || item.size() != 1) return false;
    const auto& [kind, object] = *item.items().begin();
    if (!object.is_object() || object.value("family", "") != kTableFamily) return false;
    const char* key = kind == "table" ? "name" : "table";
    return object.value(key, "") == kTableName;
  };
  items->erase(std::remove_if(items->begin(), items->end(), ours), items->end());
}

}  // namespace

void NftablesBackend::CtxDeleter::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Result<std::unique_ptr<NftablesBackend>> NftablesBackend::create() {
  CtxPtr ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return makeError(ErrorCode::kInternal, "nft_ctx_new failed");
  // Buffered output and errors: nothing reaches stdout/stderr, and every message can be returned
  // to the caller. Both buffers must be read after every call (see run()).
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return makeError(ErrorCode::kInternal, "libnftables: cannot buffer output/error");
  }
  // Stateless listings: counters and quotas change with traffic, and a read-back hash must
  // reflect the rules, not the packets. Handles stay off for the same reason.
  nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_STATELESS);
  // Same thread as the context, so the same network namespace: the generation ids it reads are
  // those of the ruleset the context lists.
  auto generation = NftGenerationReader::open();
  if (!generation.ok()) return generation.error().withContext("nftables backend");
  return std::unique_ptr<NftablesBackend>(
      new NftablesBackend(std::move(ctx), std::move(generation).value()));
}

NftablesBackend::NftablesBackend(CtxPtr ctx, std::unique_ptr<NftGenerationReader> generation)
    : ctx_(std::move(ctx)),
      generation_(std::move(generation)),
      owner_(std::this_thread::get_id()) {}

NftablesBackend::~NftablesBackend() = default;

void NftablesBackend::requireOwnerThread(const char* what) const {
  if (std::this_thread::get_id() != owner_) {
    std::fprintf(stderr,
                 "shadan: broken invariant: NftablesBackend::%s called from a thread other than "
                 "its owner (libnftables is not thread-safe)\n",
                 what);
    std::abort();
  }
}

NftablesBackend::RunResult NftablesBackend::run(std::string_view commands) {
  // nft_run_cmd_from_buffer wants a NUL-terminated buffer.
  const std::string buffer(commands);
  RunResult result;
  result.rc = nft_run_cmd_from_buffer(ctx_.get(), buffer.c_str());
  // Reading a buffer also rewinds it; without this, the next call's text would be appended to
  // this one's. Copy both now: the pointers are only valid until the next call.
  result.output = nft_ctx_get_output_buffer(ctx_.get());
  result.error = nft_ctx_get_error_buffer(ctx_.get());
  return result;
}

Status NftablesBackend::apply(std::string_view nft_script) {
  requireOwnerThread("apply");
  cache_.reset();
  // The foreign-ruleset cache survives our own commit only when the generation moves by exactly
  // that one step (see the header).
  const Result<uint32_t> before = generation_->current();
  RunResult result = run(nft_script);
  if (result.rc != 0) return nftError("nft apply", result.rc, result.error);
  const Result<uint32_t> after = generation_->current();
  if (foreign_cache_ && before.ok() && after.ok() && foreign_cache_->generation == *before &&
      *after == nextGeneration(*before)) {
    foreign_cache_->generation = *after;
  } else {
    foreign_cache_.reset();
  }
  return okStatus();
}

Status NftablesBackend::check(std::string_view nft_script) {
  requireOwnerThread("check");
  cache_.reset();
  nft_ctx_set_dry_run(ctx_.get(), true);
  RunResult result = run(nft_script);
  nft_ctx_set_dry_run(ctx_.get(), false);
  if (result.rc != 0) return nftError("nft check", result.rc, result.error);
  return okStatus();
}

NftablesBackend::ReadStats NftablesBackend::readStats() const {
  requireOwnerThread("readStats");
  return stats_;
}

template <typename T, typename List>
Result<T> NftablesBackend::readThroughCache(std::optional<Cached<T>>& cache, uint64_t& listed,
                                            uint64_t& from_cache, List list) {
  // See the header for why this order (generation, barrier, listing) is sound.
  const Result<uint32_t> current = generation_->current();
  if (current.ok() && cache && cache->generation == *current) {
    ++from_cache;
    return cache->value;
  }
  cache.reset();
  std::optional<uint32_t> cacheable;
  if (current.ok()) {
    Result<bool> settled = generation_->settled(*current);
    if (!settled.ok()) {
      ++stats_.generation_errors;
    } else if (*settled) {
      cacheable = *current;
    }
    // Not settled: a commit landed between the two requests; list anyway, cache nothing.
  } else {
    ++stats_.generation_errors;
  }
  ++listed;
  Result<T> fresh = list();
  if (fresh.ok() && cacheable) cache = Cached<T>{*cacheable, fresh.value()};
  return fresh;
}

Result<TableSnapshot> NftablesBackend::readTable() {
  requireOwnerThread("readTable");
  return readThroughCache(cache_, stats_.listed, stats_.from_cache, [this] { return listTable(); });
}

Result<TableSnapshot> NftablesBackend::listTable() {
  TableSnapshot snapshot;
  RunResult listed = run("list table " + tableRef());
  if (listed.rc == 0) {
    snapshot.present = true;
    snapshot.listing = std::move(listed.output);
    snapshot.sha256 = sha256Hex(snapshot.listing);
    return snapshot;
  }
  // The listing failed. An absent table is a normal state (nothing isolated), not an error, but
  // the error text alone does not tell ENOENT from anything else reliably: ask the kernel which
  // tables exist and only call it "absent" when ours is not among them.
  RunResult tables = run("list tables " + std::string(kTableFamily));
  if (tables.rc != 0) return nftError("nft list tables", tables.rc, tables.error);
  if (listsOurTable(tables.output)) {
    return nftError("nft list table " + tableRef(), listed.rc, listed.error);
  }
  snapshot.present = false;
  snapshot.sha256 = sha256Hex("");
  return snapshot;
}

Result<std::string> NftablesBackend::listRuleset() {
  requireOwnerThread("listRuleset");
  RunResult result = run("list ruleset");
  if (result.rc != 0) return nftError("nft list ruleset", result.rc, result.error);
  return std::move(result.output);
}

Result<nlohmann::json> NftablesBackend::listForeignRulesetJson() {
  requireOwnerThread("listForeignRulesetJson");
  return readThroughCache(foreign_cache_, stats_.foreign_listed, stats_.foreign_from_cache,
                          [this] { return listForeignTables(); });
}

Result<nlohmann::json> NftablesBackend::listForeignTables() {
  const unsigned int flags = nft_ctx_output_get_flags(ctx_.get());
  nft_ctx_output_set_flags(ctx_.get(), flags | NFT_CTX_OUTPUT_JSON);
  RunResult result = run("list ruleset");
  nft_ctx_output_set_flags(ctx_.get(), flags);
  if (result.rc != 0) return nftError("nft -j list ruleset", result.rc, result.error);
  // The kernel's own listing, but still parsed without exceptions: a library bug must not
  // crash the agent.
  nlohmann::json parsed = nlohmann::json::parse(result.output, nullptr, false);
  if (parsed.is_discarded()) {
    return makeError(ErrorCode::kKernel, "nft -j list ruleset: output is not JSON");
  }
  removeOurTable(parsed);
  return parsed;
}

}  // namespace shadan::agent
