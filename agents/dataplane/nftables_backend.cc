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
uint32_t nextGeneration(uint32_t generation);

// After our own commit, a cache survives only when the generation moved by exactly that one
// step from the one it holds (see the header). (A template: clang 14 with the fuzz build's
// instrumentation crashes compiling this test written out inside NftablesBackend::apply.)
template <typename Cache>
void keepAcrossOwnCommit(std::optional<Cache>& cache, const Result<uint32_t>& before,
                         const Result<uint32_t>& after) {
  if (cache && before.ok() && after.ok() && cache->generation == *before &&
      *after == nextGeneration(*before)) {
    cache->generation = *after;
  } else {
    cache.reset();
  }
}

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
    // Not `*item.items().begin()`: that is a reference into a temporary proxy, dangling by the
    // time the key and value are read.
    const auto only = item.begin();
    const std::string& kind = only.key();
    const nlohmann::json& object = only.value();
    if (!object.is_object() || object.value("family", "") != kTableFamily) return false;
    const char* key = kind == "table" ? "name" : "table";
    return object.value(key, "") == kTableName;
  };
  items->erase(std::remove_if(items->begin(), items->end(), ours), items->end());
}

// `ip saddr @seg_office_v4`, `ip6 daddr != @known_v6`: an address matched against a named set,
// the only match the planner writes into a counted rule. "" for any other match.
std::string setMatchText(const nlohmann::json& match) {
  if (!match.is_object()) return "";
  const auto op = match.find("op");
  const auto left = match.find("left");
  const auto right = match.find("right");
  if (op == match.end() || left == match.end() || right == match.end()) return "";
  if (!op->is_string() || (*op != "==" && *op != "!=")) return "";
  if (!right->is_string() || right->get<std::string>().substr(0, 1) != "@") return "";
  if (!left->is_object()) return "";
  const auto payload = left->find("payload");
  if (payload == left->end() || !payload->is_object()) return "";
  const auto protocol = payload->find("protocol");
  const auto field = payload->find("field");
  if (protocol == payload->end() || field == payload->end()) return "";
  if (*protocol != "ip" && *protocol != "ip6") return "";
  if (*field != "saddr" && *field != "daddr") return "";
  return protocol->get<std::string>() + " " + field->get<std::string>() +
         (*op == "!=" ? " != " : " ") + right->get<std::string>();
}

// A rule's expressions in the planner's syntax; "" when one of them is something the planner
// never writes into a counted rule (see RuleCounter::rule).
std::string plannerSyntax(const nlohmann::json& exprs) {
  std::string text;
  for (const nlohmann::json& expr : exprs) {
    if (!expr.is_object() || expr.size() != 1) return "";
    // Key and value through the object's own iterator: items().begin() is a temporary proxy, and
    // a reference to what it dereferences to would dangle.
    const auto only = expr.begin();
    const std::string& kind = only.key();
    const nlohmann::json& body = only.value();
    std::string part;
    if (kind == "match") {
      part = setMatchText(body);
      if (part.empty()) return "";
    } else if (kind == "counter" || kind == "drop") {
      part = kind;
    } else {
      return "";
    }
    if (!text.empty()) text += " ";
    text += part;
  }
  return text;
}

Result<std::vector<RuleCounter>> parseRuleCounters(const nlohmann::json& listing) {
  const auto bad = [](const std::string& why) {
    return makeError(ErrorCode::kKernel, "nft -j list table " + tableRef() + ": " + why);
  };
  if (!listing.is_object()) return bad("not a JSON object");
  const auto items = listing.find("nftables");
  if (items == listing.end() || !items->is_array()) return bad("no \"nftables\" array");
  std::vector<RuleCounter> counters;
  for (const nlohmann::json& item : *items) {
    if (!item.is_object()) continue;
    const auto rule = item.find("rule");
    if (rule == item.end()) continue;
    if (!rule->is_object()) return bad("a rule that is not an object");
    const auto exprs = rule->find("expr");
    if (exprs == rule->end() || !exprs->is_array()) return bad("a rule without an expr array");
    const auto chain = rule->find("chain");
    const nlohmann::json* counter = nullptr;
    for (const nlohmann::json& expr : *exprs) {
      if (expr.is_object() && expr.contains("counter")) counter = &expr.at("counter");
    }
    // No counter, or a named counter object (`"counter": "name"`, never written by the planner)
    // that holds no numbers of the rule's own.
    if (counter == nullptr || !counter->is_object()) continue;
    const auto packets = counter->find("packets");
    const auto bytes = counter->find("bytes");
    if (packets == counter->end() || bytes == counter->end() || !packets->is_number_unsigned() ||
        !bytes->is_number_unsigned()) {
      return bad("a counter without unsigned packets and bytes");
    }
    RuleCounter out;
    if (chain != rule->end() && chain->is_string()) out.chain = chain->get<std::string>();
    out.rule = plannerSyntax(*exprs);
    out.packets = packets->get<uint64_t>();
    out.bytes = bytes->get<uint64_t>();
    counters.push_back(std::move(out));
  }
  return counters;
}

}  // namespace

Result<std::vector<RuleCounter>> ruleCountersFromJson(const nlohmann::json& listing) {
  // The checks above should leave nothing to throw; a library surprise must still not crash the
  // agent.
  try {
    return parseRuleCounters(listing);
  } catch (const nlohmann::json::exception& e) {
    return makeError(ErrorCode::kKernel,
                     "nft -j list table " + tableRef() + ": unexpected JSON: " + e.what());
  }
}

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
  const Result<uint32_t> before = generation_->current();
  RunResult result = run(nft_script);
  if (result.rc != 0) return nftError("nft apply", result.rc, result.error);
  const Result<uint32_t> after = generation_->current();
  keepAcrossOwnCommit(foreign_cache_, before, after);
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
  SHADAN_ASSIGN_OR_RETURN(const bool exists, tableExists());
  if (exists) return nftError("nft list table " + tableRef(), listed.rc, listed.error);
  snapshot.present = false;
  snapshot.sha256 = sha256Hex("");
  return snapshot;
}

Result<bool> NftablesBackend::tableExists() {
  RunResult tables = run("list tables " + std::string(kTableFamily));
  if (tables.rc != 0) return nftError("nft list tables", tables.rc, tables.error);
  return listsOurTable(tables.output);
}

Result<std::vector<RuleCounter>> NftablesBackend::readRuleCounters() {
  requireOwnerThread("readRuleCounters");
  // The context lists statelessly for readTable(); this one read shows the counters, as JSON so
  // that each rule's expressions and numbers are fields rather than text to parse.
  const unsigned int flags = nft_ctx_output_get_flags(ctx_.get());
  nft_ctx_output_set_flags(
      ctx_.get(),
      (flags & ~static_cast<unsigned int>(NFT_CTX_OUTPUT_STATELESS)) | NFT_CTX_OUTPUT_JSON);
  RunResult result = run("list table " + tableRef());
  nft_ctx_output_set_flags(ctx_.get(), flags);
  if (result.rc != 0) {
    SHADAN_ASSIGN_OR_RETURN(const bool exists, tableExists());
    if (!exists) return makeError(ErrorCode::kNotFound, "table " + tableRef() + " is absent");
    return nftError("nft -j list table " + tableRef(), result.rc, result.error);
  }
  nlohmann::json parsed = nlohmann::json::parse(result.output, nullptr, false);
  if (parsed.is_discarded()) {
    return makeError(ErrorCode::kKernel,
                     "nft -j list table " + tableRef() + ": output is not JSON");
  }
  return ruleCountersFromJson(parsed);
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
