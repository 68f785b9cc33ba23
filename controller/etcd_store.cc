#include "controller/etcd_store.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "common/decimal.h"
#include "controller/order_types.h"
#include "controller/store_records.h"

namespace shadan::controller {
namespace {

using json = nlohmann::json;
using Sort = EtcdRangeRequest::Sort;

// A write outside transaction() that lost a race with another writer is tried this many times.
constexpr int kConflictRetries = 5;

// Key parts are names and ids chosen elsewhere: '/' would split them and '%' is the escape.
std::string part(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out += c;
    }
  }
  return out;
}

// part() undone; nullopt for text part() cannot have made.
std::optional<std::string> unpart(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '/') return std::nullopt;
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const std::string_view code = text.substr(i, 3);
    if (code == "%25") {
      out += '%';
    } else if (code == "%2F") {
      out += '/';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

Error storeError(const Error& error) {
  return error.withContext(error.code == ErrorCode::kUnavailable ? std::string(kStoreUnavailable)
                                                                 : std::string("controller store"));
}

Result<std::string> encode(const json& doc) {
  try {
    return doc.dump();
  } catch (const json::exception&) {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller store: a record holds text that is not UTF-8");
  }
}

template <typename Record>
Result<Record> decode(const std::string& text, Result<Record> (*fromJson)(const json&)) {
  return fromJson(json::parse(text, nullptr, /*allow_exceptions=*/false));
}

Result<int64_t> decodeCounter(const std::optional<std::string>& text, const std::string& key) {
  if (!text) return int64_t{0};
  const auto value = parseWholeDecimal<int64_t>(*text);
  if (!value || *value < 0) {
    return makeError(ErrorCode::kState, "controller store: corrupt counter " + key);
  }
  return *value;
}

// One transaction's reads and buffered writes. At namespace scope: clang rejects
// std::optional<T>::emplace() of a nested T with default member initializers inside its
// enclosing class (T is not constructible until that class is complete).
struct EtcdTxn {
  int64_t snapshot = 0;                 // the revision reads are served at; 0 before the first
  std::map<std::string, int64_t> read;  // key → its mod_revision when read (0: absent)
  std::map<std::string, std::optional<std::string>> writes;  // nullopt: delete
};

class EtcdControllerStore : public ControllerStore {
 public:
  EtcdControllerStore(std::unique_ptr<EtcdClient> client, std::string prefix, std::string name)
      : client_(std::move(client)),
        prefix_(std::move(prefix)),
        fence_key_(prefix_ + "writers/" + randomUuid()),
        name_(std::move(name)) {}
  // A clean stop takes this controller's presence records with it at once, not after the TTL.
  ~EtcdControllerStore() override {
    if (presence_lease_ != 0) (void)client_->leaseRevoke(presence_lease_);
  }
  EtcdControllerStore(const EtcdControllerStore&) = delete;
  EtcdControllerStore& operator=(const EtcdControllerStore&) = delete;

  Status notePresence(const std::vector<std::string>& connected,
                      const std::vector<std::string>& gone) override {
    if (name_.empty()) return okStatus();
    for (const auto& agent_id : gone) present_.erase(agent_id);
    present_.insert(connected.begin(), connected.end());
    Status result = okStatus();
    if (presence_lease_ == 0) {
      result = renewPresence();  // a lease, and every record again
    } else if (Status put = putPresence(connected); !put.ok()) {
      result = put;
    }
    for (const auto& agent_id : gone) {
      if (present_.count(agent_id) != 0) continue;  // gone and back in one batch
      if (Status dropped = dropPresence(agent_id); !dropped.ok() && result.ok()) result = dropped;
    }
    return result;
  }

  Status keepPresence() override {
    if (name_.empty() || (presence_lease_ == 0 && present_.empty())) return okStatus();
    const auto now = std::chrono::steady_clock::now();
    if (presence_lease_ != 0 && now - presence_renewed_ < kPresenceTtl / 3) return okStatus();
    if (presence_lease_ != 0) {
      auto left = client_->leaseKeepAlive(presence_lease_);
      if (!left.ok()) return storeError(left.error());
      if (*left > 0) {
        presence_renewed_ = now;
        return okStatus();
      }
      presence_lease_ = 0;  // ended (etcd out of reach longer than the TTL): its records went
    }
    return renewPresence();
  }

  Result<std::map<std::string, std::string>> presence() override {
    const std::string head = prefix_ + "presence/";
    SHADAN_ASSIGN_OR_RETURN(auto kvs, list(head, Sort::kKey, 0));
    std::map<std::string, std::string> out;
    for (const auto& kv : kvs) {
      auto agent = unpart(std::string_view(kv.key).substr(head.size()));
      if (!agent) return makeError(ErrorCode::kState, "controller store: corrupt key " + kv.key);
      out[*agent] = kv.value;
    }
    return out;
  }

  Status transaction(const std::function<Status()>& fn) override {
    if (txn_) return makeError(ErrorCode::kInternal, "controller store: transactions do not nest");
    txn_.emplace();
    Status status = fn();
    if (status.ok()) status = commit();
    txn_.reset();
    return status;
  }

  Result<std::optional<AgentRecord>> getAgent(const std::string& agent_id) override {
    return getRecord(key("agents/", agent_id), agentFromJson);
  }
  Status putAgent(const AgentRecord& agent) override {
    return putRecord(key("agents/", agent.agent_id), agentToJson(agent));
  }
  Result<std::vector<AgentRecord>> listAgents() override {
    SHADAN_ASSIGN_OR_RETURN(auto agents,
                            listRecords(prefix_ + "agents/", Sort::kKey, agentFromJson));
    std::sort(agents.begin(), agents.end(),
              [](const auto& a, const auto& b) { return a.agent_id < b.agent_id; });
    return agents;
  }

  Result<std::vector<std::optional<AgentRecord>>> getAgents(
      const std::vector<std::string>& agent_ids) override {
    std::vector<std::string> keys;
    keys.reserve(agent_ids.size());
    for (const std::string& agent_id : agent_ids) keys.push_back(key("agents/", agent_id));
    SHADAN_ASSIGN_OR_RETURN(auto texts, getMany(keys));
    std::vector<std::optional<AgentRecord>> out;
    out.reserve(texts.size());
    for (const auto& text : texts) {
      if (!text) {
        out.emplace_back();
        continue;
      }
      SHADAN_ASSIGN_OR_RETURN(auto agent, decode(*text, agentFromJson));
      out.emplace_back(std::move(agent));
    }
    return out;
  }

  Result<int64_t> nextSeq(const std::string& agent_id) override {
    return nextCounter(key("seq/", agent_id));
  }
  Result<std::vector<int64_t>> nextSeqs(const std::vector<std::string>& agent_ids) override {
    std::vector<int64_t> out;
    SHADAN_RETURN_IF_ERROR(own([&]() -> Status {
      out.clear();
      std::vector<std::string> keys;
      keys.reserve(agent_ids.size());
      for (const std::string& agent_id : agent_ids) keys.push_back(key("seq/", agent_id));
      SHADAN_ASSIGN_OR_RETURN(auto texts, getMany(keys));
      std::map<std::string, int64_t> last;  // an agent named twice counts on from its first
      for (size_t i = 0; i < keys.size(); ++i) {
        auto found = last.find(keys[i]);
        if (found == last.end()) {
          SHADAN_ASSIGN_OR_RETURN(const int64_t stored, decodeCounter(texts[i], keys[i]));
          found = last.emplace(keys[i], stored).first;
        }
        out.push_back(++found->second);
        put(keys[i], std::to_string(found->second));
      }
      return okStatus();
    }));
    return out;
  }

  Result<int64_t> nextSegmentGen(const std::string& generation_key) override {
    int64_t gen = 0;
    SHADAN_RETURN_IF_ERROR(own([&]() -> Status {
      const std::string k = key("segments/", generation_key);
      SHADAN_ASSIGN_OR_RETURN(auto existing, getRecord(k, segmentFromJson));
      SegmentRecord segment = existing.value_or(SegmentRecord{generation_key, 0, false, ""});
      gen = ++segment.gen;
      return write(k, segmentToJson(segment));
    }));
    return gen;
  }
  Status putSegment(const SegmentRecord& segment) override {
    return putRecord(key("segments/", segment.segment), segmentToJson(segment));
  }
  Result<std::vector<SegmentRecord>> listSegments() override {
    SHADAN_ASSIGN_OR_RETURN(auto segments,
                            listRecords(prefix_ + "segments/", Sort::kKey, segmentFromJson));
    std::sort(segments.begin(), segments.end(),
              [](const auto& a, const auto& b) { return a.segment < b.segment; });
    return segments;
  }

  Result<std::optional<OrderRecord>> getOrder(const std::string& command_id) override {
    return getRecord(key("orders/", command_id), orderFromJson);
  }
  Status putOrder(const OrderRecord& order) override {
    return putRecord(key("orders/", order.command_id), orderToJson(order));
  }
  Result<std::vector<OrderRecord>> listOrders(size_t limit) override {
    if (limit == 0) return std::vector<OrderRecord>();
    return listRecords(prefix_ + "orders/", Sort::kCreateDescending, orderFromJson,
                       static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  }

  Status putDispatch(const DispatchRecord& d) override {
    return own([&]() -> Status {
      SHADAN_ASSIGN_OR_RETURN(auto text, encode(dispatchToJson(d)));
      put(key("dispatches/", d.command_id, d.agent_id), std::move(text));
      const std::string pending = key("pending/", d.agent_id, d.command_id);
      if (d.state == DispatchState::kPending) {
        put(pending, "");  // an index: the record is written once, through Raft once
      } else {
        erase(pending);
      }
      if (d.seq > 0) put(key("byseq/", d.agent_id, std::to_string(d.seq)), d.command_id);
      return okStatus();
    });
  }
  Result<std::vector<DispatchRecord>> dispatchesForOrder(const std::string& command_id) override {
    SHADAN_ASSIGN_OR_RETURN(auto dispatches, listRecords(key("dispatches/", command_id) + "/",
                                                         Sort::kKey, dispatchFromJson));
    std::sort(dispatches.begin(), dispatches.end(),
              [](const auto& a, const auto& b) { return a.agent_id < b.agent_id; });
    return dispatches;
  }
  Result<PendingCreated> pendingCreatedSince(int64_t cursor) override {
    EtcdRangeRequest request;
    request.key = prefix_ + "pending/";
    request.range_end = etcdPrefixEnd(request.key);
    request.keys_only = true;
    request.sort = Sort::kCreateAscending;
    if (cursor > 0) {
      request.min_create_revision = cursor + 1;
    } else {
      request.limit = 1;  // only the revision of now
    }
    auto range = client_->range(request);
    if (!range.ok()) return storeError(range.error());
    PendingCreated out;
    out.cursor = range->revision;
    if (cursor == 0) return out;
    for (const auto& kv : range->kvs) {
      SHADAN_ASSIGN_OR_RETURN(auto ids, pendingIds(kv.key));
      out.dispatches.push_back(std::move(ids));
    }
    return out;
  }
  Result<std::map<std::string, int64_t>> orderCounts() override {
    SHADAN_ASSIGN_OR_RETURN(auto orders,
                            listRecords(prefix_ + "orders/", Sort::kKey, orderFromJson));
    std::map<std::string, int64_t> counts;
    for (const auto& order : orders) ++counts[orderStateName(order.state)];
    return counts;
  }
  Result<std::map<std::string, int64_t>> dispatchCounts() override {
    SHADAN_ASSIGN_OR_RETURN(auto dispatches,
                            listRecords(prefix_ + "dispatches/", Sort::kKey, dispatchFromJson));
    std::map<std::string, int64_t> counts;
    for (const auto& dispatch : dispatches) ++counts[dispatchStateName(dispatch.state)];
    return counts;
  }
  Result<std::vector<DispatchRecord>> pendingDispatches(const std::string& agent_id) override {
    return pendingUnder(key("pending/", agent_id) + "/");
  }
  // Each chunk of agents: one read-only txn listing their pending/ keys (all at one revision),
  // then their records kEtcdRangesPerCall at a time as of that revision. Inside a transaction
  // (none of the callers' today) each is read as pendingDispatches() would, its own writes
  // laid over.
  Result<std::vector<std::vector<DispatchRecord>>> pendingDispatchesOf(
      const std::vector<std::string>& agent_ids) override {
    if (txn_) return ControllerStore::pendingDispatchesOf(agent_ids);
    std::vector<std::vector<DispatchRecord>> out(agent_ids.size());
    for (size_t begin = 0; begin < agent_ids.size(); begin += kEtcdRangesPerCall) {
      const size_t end = std::min(agent_ids.size(), begin + kEtcdRangesPerCall);
      std::vector<EtcdRangeRequest> requests(end - begin);
      for (size_t i = begin; i < end; ++i) {
        EtcdRangeRequest& request = requests[i - begin];
        request.key = key("pending/", agent_ids[i]) + "/";
        request.range_end = etcdPrefixEnd(request.key);
        request.sort = Sort::kCreateAscending;
        request.keys_only = true;
      }
      auto ranges = client_->rangeMany(requests);
      if (!ranges.ok()) return storeError(ranges.error());
      std::vector<EtcdKeyValue> index;  // every agent's pending/ keys, agent after agent
      std::vector<size_t> owner;        // the index in agent_ids each belongs to
      int64_t revision = 0;
      for (size_t i = begin; i < end; ++i) {
        EtcdRange& range = (*ranges)[i - begin];
        revision = range.revision;
        owner.insert(owner.end(), range.kvs.size(), i);
        std::move(range.kvs.begin(), range.kvs.end(), std::back_inserter(index));
      }
      SHADAN_ASSIGN_OR_RETURN(auto records, indexedDispatches(index, revision));
      for (size_t k = 0; k < records.size(); ++k) out[owner[k]].push_back(std::move(records[k]));
    }
    return out;
  }
  Result<std::vector<DispatchRecord>> allPendingDispatches() override {
    return pendingUnder(prefix_ + "pending/");
  }
  Result<std::optional<DispatchRecord>> dispatchBySeq(const std::string& agent_id,
                                                      int64_t seq) override {
    SHADAN_ASSIGN_OR_RETURN(auto command_id, get(key("byseq/", agent_id, std::to_string(seq))));
    if (!command_id) return std::optional<DispatchRecord>();
    SHADAN_ASSIGN_OR_RETURN(auto dispatch,
                            getRecord(key("dispatches/", *command_id, agent_id), dispatchFromJson));
    // A dispatch signed again under a newer seq is no longer the one of this seq.
    if (dispatch && dispatch->seq != seq) return std::optional<DispatchRecord>();
    return dispatch;
  }

  // The agent and, when the ack names its command, the dispatch in one read; the seq index
  // only when it does not (or names another than the seq's).
  Result<std::vector<AckSubject>> ackSubjects(const std::vector<AckQuery>& queries) override {
    // Each query's agent key, then its dispatch's key when the ack names its command.
    std::vector<std::string> keys;
    std::vector<std::optional<size_t>> dispatch_at(queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
      keys.push_back(key("agents/", queries[i].agent_id));
      if (queries[i].command_id && queries[i].seq > 0) {
        dispatch_at[i] = keys.size();
        keys.push_back(key("dispatches/", *queries[i].command_id, queries[i].agent_id));
      }
    }
    SHADAN_ASSIGN_OR_RETURN(auto texts, getMany(keys));
    std::vector<AckSubject> out(queries.size());
    size_t at = 0;
    for (size_t i = 0; i < queries.size(); ++i) {
      const AckQuery& query = queries[i];
      if (texts[at]) {
        SHADAN_ASSIGN_OR_RETURN(out[i].agent, decode(*texts[at], agentFromJson));
      }
      at += dispatch_at[i] ? 2 : 1;
      if (query.seq <= 0) continue;  // no dispatch has a seq before it is sent
      if (dispatch_at[i] && texts[*dispatch_at[i]]) {
        SHADAN_ASSIGN_OR_RETURN(auto dispatch, decode(*texts[*dispatch_at[i]], dispatchFromJson));
        // Seqs are never reused for an agent: the dispatch holding this seq is the seq's.
        if (dispatch.seq == query.seq) {
          out[i].dispatch = std::move(dispatch);
          continue;
        }
      }
      // No command named, or another than the seq's: the seq index says.
      SHADAN_ASSIGN_OR_RETURN(out[i].dispatch, dispatchBySeq(query.agent_id, query.seq));
    }
    return out;
  }

  Result<std::optional<ApprovalRecord>> getApproval(const std::string& approval_id) override {
    return getRecord(key("approvals/", approval_id), approvalFromJson);
  }
  Status putApproval(const ApprovalRecord& approval) override {
    return putRecord(key("approvals/", approval.approval_id), approvalToJson(approval));
  }
  Result<std::vector<ApprovalRecord>> pendingApprovals() override {
    SHADAN_ASSIGN_OR_RETURN(auto approvals,
                            listRecords(prefix_ + "approvals/", Sort::kKey, approvalFromJson));
    std::erase_if(approvals, [](const auto& a) { return a.state != ApprovalState::kPending; });
    std::stable_sort(approvals.begin(), approvals.end(),
                     [](const auto& a, const auto& b) { return a.created_ms < b.created_ms; });
    return approvals;
  }

  Status putDocument(const StoredDocument& document) override {
    return own([&]() -> Status {
      const std::string k = key("documents/", document.kind, document.id);
      SHADAN_ASSIGN_OR_RETURN(auto existing, getRecord(k, documentFromJson));
      StoredDocument stored = document;
      if (existing) stored.created_ms = existing->created_ms;  // the first put's
      return write(k, documentToJson(stored));
    });
  }
  Result<std::optional<StoredDocument>> getDocument(const std::string& kind,
                                                    const std::string& id) override {
    return getRecord(key("documents/", kind, id), documentFromJson);
  }
  Result<std::vector<StoredDocument>> openDocuments(const std::string& kind) override {
    SHADAN_ASSIGN_OR_RETURN(
        auto documents, listRecords(key("documents/", kind) + "/", Sort::kKey, documentFromJson));
    std::erase_if(documents, [](const auto& d) { return !d.open; });
    std::sort(documents.begin(), documents.end(), [](const auto& a, const auto& b) {
      return std::tie(a.created_ms, a.id) < std::tie(b.created_ms, b.id);
    });
    return documents;
  }

  // Reads the prefix once, so that an unreachable etcd fails the open.
  Status probe() {
    EtcdRangeRequest request;
    request.key = prefix_;
    request.range_end = etcdPrefixEnd(prefix_);
    request.limit = 1;
    auto range = client_->range(request);
    return range.ok() ? okStatus() : storeError(range.error());
  }

  // At open: presence records under this controller's name are a previous run's (killed, its
  // lease not yet run out); this one holds no session yet, so they go now instead of saying
  // for up to a TTL that its gateways are connected before they are back.
  Status dropEarlierPresence() {
    if (name_.empty()) return okStatus();
    const std::string head = prefix_ + "presence/";
    SHADAN_ASSIGN_OR_RETURN(auto kvs, list(head, Sort::kKey, 0));
    for (const auto& kv : kvs) {
      if (kv.value != name_) continue;
      auto deleted =
          client_->txn({EtcdCompare{kv.key, kv.mod_revision}}, {EtcdWrite{kv.key, std::nullopt}});
      if (!deleted.ok()) return storeError(deleted.error());
    }
    return okStatus();
  }

 private:
  std::string key(const char* kind, std::string_view a) const { return prefix_ + kind + part(a); }
  // (agent, command_id) of a key pending/<agent>/<command_id>.
  Result<std::pair<std::string, std::string>> pendingIds(std::string_view k) const {
    const std::string head = prefix_ + "pending/";
    const std::string_view rest = k.substr(std::min(k.size(), head.size()));
    const size_t slash = rest.find('/');
    auto agent = unpart(rest.substr(0, slash));
    auto command = slash == std::string_view::npos ? std::nullopt : unpart(rest.substr(slash + 1));
    if (!k.starts_with(head) || !agent || !command) {
      return makeError(ErrorCode::kState,
                       "controller store: corrupt pending key " + std::string(k));
    }
    return std::make_pair(std::move(*agent), std::move(*command));
  }

  // The dispatches whose pending/ keys are under `prefix`, in creation order. The keys are an
  // index: each record is read from dispatches/, as of the revision the keys were listed at.
  Result<std::vector<DispatchRecord>> pendingUnder(const std::string& prefix) {
    int64_t revision = 0;
    SHADAN_ASSIGN_OR_RETURN(auto kvs,
                            list(prefix, Sort::kCreateAscending, 0, /*keys_only=*/true, &revision));
    return indexedDispatches(kvs, revision);
  }
  // The records that pending/ keys `index` name, read from dispatches/ as of `revision`, in
  // the keys' order; a key without its record is named as corrupt.
  Result<std::vector<DispatchRecord>> indexedDispatches(const std::vector<EtcdKeyValue>& index,
                                                        int64_t revision) {
    std::vector<std::string> keys;
    keys.reserve(index.size());
    for (const auto& kv : index) {
      SHADAN_ASSIGN_OR_RETURN(auto ids, pendingIds(kv.key));
      keys.push_back(key("dispatches/", ids.second, ids.first));
    }
    SHADAN_ASSIGN_OR_RETURN(auto texts, getMany(keys, revision));
    std::vector<DispatchRecord> records;
    records.reserve(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i]) {
        return makeError(ErrorCode::kState,
                         "controller store: " + index[i].key + " has no dispatch record");
      }
      SHADAN_ASSIGN_OR_RETURN(auto record, decode(*texts[i], dispatchFromJson));
      records.push_back(std::move(record));
    }
    return records;
  }
  std::string key(const char* kind, std::string_view a, std::string_view b) const {
    return prefix_ + kind + part(a) + "/" + part(b);
  }

  // fn as part of the caller's transaction, or as one of its own, run again when another
  // writer changed what it read (fn has no effect beyond this store's buffers).
  Status own(const std::function<Status()>& fn) {
    if (txn_) return fn();
    for (int attempt = 0;; ++attempt) {
      txn_.emplace();
      Status status = fn();
      bool conflict = false;
      if (status.ok()) status = commit(&conflict);
      txn_.reset();
      if (!conflict || attempt + 1 >= kConflictRetries) return status;
    }
  }

  // One etcd txn: the compares of every key read, and this store's fence key (below) written
  // with a fresh value and compared against the revision of its last write.
  Status commit(bool* conflict = nullptr) {
    if (txn_->writes.empty()) return okStatus();
    if (!fence_known_) SHADAN_RETURN_IF_ERROR(learnFence());
    std::vector<EtcdCompare> compares;
    compares.reserve(txn_->read.size() + 1);
    for (const auto& [k, revision] : txn_->read) compares.push_back(EtcdCompare{k, revision});
    compares.push_back(EtcdCompare{fence_key_, fence_revision_});
    std::vector<EtcdWrite> writes;
    writes.reserve(txn_->writes.size() + 1);
    for (auto& [k, value] : txn_->writes) writes.push_back(EtcdWrite{k, std::move(value)});
    const std::string mark = nextMark();
    writes.push_back(EtcdWrite{fence_key_, mark});
    auto result = client_->txn(compares, writes);
    if (!result.ok()) return storeError(result.error());
    Outcome outcome = Outcome::kApplied;
    std::string why;
    switch (result->outcome) {
      case EtcdTxnResult::Outcome::kApplied:
        fence_revision_ = result->revision;
        return okStatus();
      case EtcdTxnResult::Outcome::kNotApplied:
        // A lost race, or this very txn applied by a send the client repeated: the mark says.
        outcome = findOut(mark, /*fence=*/false, why);
        break;
      case EtcdTxnResult::Outcome::kUnknown:
        why = result->why;
        outcome = findOut(mark, /*fence=*/true, why);
        break;
    }
    switch (outcome) {
      case Outcome::kApplied:
        return okStatus();
      case Outcome::kNotApplied:
        if (result->outcome == EtcdTxnResult::Outcome::kUnknown) {
          return makeError(ErrorCode::kUnavailable,
                           std::string(kStoreUnavailable) + ": " + why +
                               "; it was not applied, nothing was written");
        }
        if (conflict != nullptr) *conflict = true;
        return makeError(ErrorCode::kState,
                         "controller store: changed by another writer during this transaction; "
                         "nothing was written");
      case Outcome::kUnknown:
        break;
    }
    return makeError(ErrorCode::kUnavailable,
                     std::string(kStoreOutcomeUnknown) + ": " + why +
                         "; whether this write took effect is not known until etcd answers");
  }

  // The fence: a key only this store writes, set to a new mark by every commit, whose compare
  // makes a commit apply only over the fence's last known write. A commit sent without an
  // answer is settled by reading the fence: its mark means applied; else writing the fence
  // once more (over the revision just read) makes sure it never will be.
  enum class Outcome { kApplied, kNotApplied, kUnknown };

  std::string nextMark() { return std::to_string(++marks_); }

  Status learnFence() {
    EtcdRangeRequest request;
    request.key = fence_key_;
    auto range = client_->range(request);
    if (!range.ok()) return storeError(range.error());
    fence_revision_ = range->kvs.empty() ? 0 : range->kvs.front().mod_revision;
    fence_known_ = true;
    return okStatus();
  }

  // Whether the commit that wrote `mark` took effect. With `fence`, one that did not is made
  // never to; without, the answer may be read while it is still in flight (a compare failed, so
  // it is not). `why` gets the reason when the answer stays unknown.
  Outcome findOut(const std::string& mark, bool fence, std::string& why) {
    for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
      EtcdRangeRequest request;
      request.key = fence_key_;
      auto range = client_->range(request);
      if (!range.ok()) {
        why += "; then " + range.error().message;
        break;
      }
      const int64_t seen = range->kvs.empty() ? 0 : range->kvs.front().mod_revision;
      if (!range->kvs.empty() && range->kvs.front().value == mark) {
        fence_revision_ = seen;
        return Outcome::kApplied;
      }
      if (!fence) {
        fence_revision_ = seen;
        return Outcome::kNotApplied;
      }
      auto fenced =
          client_->txn({EtcdCompare{fence_key_, seen}}, {EtcdWrite{fence_key_, nextMark()}});
      if (!fenced.ok()) {
        why += "; then " + fenced.error().message;
        break;
      }
      if (fenced->outcome == EtcdTxnResult::Outcome::kApplied) {
        fence_revision_ = fenced->revision;
        return Outcome::kNotApplied;
      }
      // The fence moved (the commit landed meanwhile) or its own answer was lost: read again.
    }
    fence_known_ = false;  // the next commit reads the fence first, and so fences this one
    return Outcome::kUnknown;
  }

  void put(const std::string& k, std::string value) { txn_->writes[k] = std::move(value); }
  void erase(const std::string& k) { txn_->writes[k] = std::nullopt; }

  Status write(const std::string& k, const json& doc) {
    SHADAN_ASSIGN_OR_RETURN(auto text, encode(doc));
    put(k, std::move(text));
    return okStatus();
  }

  Status putRecord(const std::string& k, const json& doc) {
    return own([&]() { return write(k, doc); });
  }

  Result<int64_t> nextCounter(const std::string& k) {
    int64_t next = 0;
    SHADAN_RETURN_IF_ERROR(own([&]() -> Status {
      SHADAN_ASSIGN_OR_RETURN(auto text, get(k));
      SHADAN_ASSIGN_OR_RETURN(auto last, decodeCounter(text, k));
      next = last + 1;
      put(k, std::to_string(next));
      return okStatus();
    }));
    return next;
  }

  void noteSnapshot(int64_t revision) {
    if (txn_ && txn_->snapshot == 0) txn_->snapshot = revision;
  }

  Result<std::optional<std::string>> get(const std::string& k) {
    SHADAN_ASSIGN_OR_RETURN(auto values, getMany({k}));
    return std::move(values.front());
  }

  // Each key's value (nullopt: absent): this transaction's own write, else read (at its
  // snapshot, and noted for its commit's compares; outside a transaction at `revision` when
  // not 0), kEtcdRangesPerCall at a time in one round trip each.
  Result<std::vector<std::optional<std::string>>> getMany(const std::vector<std::string>& keys,
                                                          int64_t revision = 0) {
    std::vector<std::optional<std::string>> out(keys.size());
    std::vector<size_t> unread;  // not written by this transaction
    for (size_t i = 0; i < keys.size(); ++i) {
      if (txn_) {
        const auto written = txn_->writes.find(keys[i]);
        if (written != txn_->writes.end()) {
          out[i] = written->second;
          continue;
        }
      }
      unread.push_back(i);
    }
    for (size_t begin = 0; begin < unread.size(); begin += kEtcdRangesPerCall) {
      const size_t end = std::min(unread.size(), begin + kEtcdRangesPerCall);
      std::vector<EtcdRangeRequest> requests(end - begin);
      for (size_t j = begin; j < end; ++j) {
        requests[j - begin].key = keys[unread[j]];
        requests[j - begin].revision = txn_ ? txn_->snapshot : revision;
      }
      auto ranges = client_->rangeMany(requests);
      if (!ranges.ok()) return storeError(ranges.error());
      for (size_t j = begin; j < end; ++j) {
        EtcdRange& range = (*ranges)[j - begin];
        noteSnapshot(range.revision);
        const std::string& k = keys[unread[j]];
        const bool found = !range.kvs.empty();
        if (txn_) txn_->read.emplace(k, found ? range.kvs.front().mod_revision : 0);
        if (found) out[unread[j]] = std::move(range.kvs.front().value);
      }
    }
    return out;
  }

  // Every key under `prefix` in `sort` order, with this transaction's own writes laid over
  // them (new keys count as created last); `revision` gets the revision read at. A range adds
  // no compare: a key another writer creates under the prefix meanwhile does not fail the
  // commit.
  Result<std::vector<EtcdKeyValue>> list(const std::string& prefix, Sort sort, int64_t limit,
                                         bool keys_only = false, int64_t* revision = nullptr) {
    EtcdRangeRequest request;
    request.key = prefix;
    request.range_end = etcdPrefixEnd(prefix);
    request.sort = sort;
    request.limit = limit;
    request.keys_only = keys_only;
    if (txn_) request.revision = txn_->snapshot;
    auto range = client_->range(request);
    if (!range.ok()) return storeError(range.error());
    noteSnapshot(range->revision);
    if (revision != nullptr) *revision = range->revision;
    std::vector<EtcdKeyValue> kvs = std::move(range->kvs);
    if (!txn_) return kvs;
    bool changed = false;
    for (auto it = txn_->writes.lower_bound(prefix);
         it != txn_->writes.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      changed = true;
      auto existing = std::find_if(kvs.begin(), kvs.end(),
                                   [&](const EtcdKeyValue& kv) { return kv.key == it->first; });
      if (existing != kvs.end()) {
        if (it->second) {
          existing->value = *it->second;
        } else {
          kvs.erase(existing);
        }
      } else if (it->second) {
        kvs.push_back(
            EtcdKeyValue{it->first, *it->second, std::numeric_limits<int64_t>::max(), 0, 0});
      }
    }
    if (!changed) return kvs;
    std::stable_sort(kvs.begin(), kvs.end(), [sort](const auto& a, const auto& b) {
      switch (sort) {
        case Sort::kKey:
          return a.key < b.key;
        case Sort::kCreateAscending:
          return a.create_revision < b.create_revision;
        case Sort::kCreateDescending:
          return a.create_revision > b.create_revision;
      }
      return false;
    });
    if (limit > 0 && kvs.size() > static_cast<size_t>(limit)) kvs.resize(limit);
    return kvs;
  }

  template <typename Record>
  Result<std::optional<Record>> getRecord(const std::string& k,
                                          Result<Record> (*fromJson)(const json&)) {
    SHADAN_ASSIGN_OR_RETURN(auto text, get(k));
    if (!text) return std::optional<Record>();
    SHADAN_ASSIGN_OR_RETURN(auto record, decode(*text, fromJson));
    return std::optional<Record>(std::move(record));
  }

  template <typename Record>
  Result<std::vector<Record>> listRecords(const std::string& prefix, Sort sort,
                                          Result<Record> (*fromJson)(const json&),
                                          int64_t limit = 0) {
    SHADAN_ASSIGN_OR_RETURN(auto kvs, list(prefix, sort, limit));
    std::vector<Record> records;
    records.reserve(kvs.size());
    for (const auto& kv : kvs) {
      SHADAN_ASSIGN_OR_RETURN(auto record, decode(kv.value, fromJson));
      records.push_back(std::move(record));
    }
    return records;
  }

  // A new lease, and every agent of present_ written again under it.
  Status renewPresence() {
    auto lease = client_->leaseGrant(kPresenceTtl);
    if (!lease.ok()) return storeError(lease.error());
    presence_lease_ = lease->id;
    presence_renewed_ = std::chrono::steady_clock::now();
    return putPresence(std::vector<std::string>(present_.begin(), present_.end()));
  }

  // presence/<agent> = this controller's name, under its lease, kEtcdRangesPerCall to a txn.
  // Outside the store's transactions: a record of who holds a session, compared by no one.
  Status putPresence(const std::vector<std::string>& agent_ids) {
    for (size_t begin = 0; begin < agent_ids.size(); begin += kEtcdRangesPerCall) {
      const size_t end = std::min(agent_ids.size(), begin + kEtcdRangesPerCall);
      std::vector<EtcdWrite> writes;
      for (size_t i = begin; i < end; ++i) {
        writes.push_back(EtcdWrite{key("presence/", agent_ids[i]), name_, presence_lease_});
      }
      auto written = client_->txn({}, writes);
      if (!written.ok()) return storeError(written.error());
      if (written->outcome == EtcdTxnResult::Outcome::kUnknown) {
        return makeError(
            ErrorCode::kUnavailable,
            std::string(kStoreUnavailable) + ": presence not known to be written: " + written->why);
      }
    }
    return okStatus();
  }

  // Deletes presence/<agent> if it is still this controller's: the agent may have said hello
  // to another controller before this one saw its session end.
  Status dropPresence(const std::string& agent_id) {
    EtcdRangeRequest request;
    request.key = key("presence/", agent_id);
    auto range = client_->range(request);
    if (!range.ok()) return storeError(range.error());
    if (range->kvs.empty() || range->kvs.front().value != name_) return okStatus();
    auto deleted = client_->txn({EtcdCompare{request.key, range->kvs.front().mod_revision}},
                                {EtcdWrite{request.key, std::nullopt}});
    if (!deleted.ok()) return storeError(deleted.error());
    return okStatus();  // not applied: another controller wrote it meanwhile, and keeps it
  }

  static constexpr std::chrono::seconds kPresenceTtl{10};

  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
  std::optional<EtcdTxn> txn_;
  const std::string fence_key_;  // writers/<random>: new for every store opened
  int64_t fence_revision_ = 0;   // its mod_revision as last written (0: not yet written)
  bool fence_known_ = true;      // false after a commit whose outcome stayed unknown
  uint64_t marks_ = 0;
  const std::string name_;         // this controller's, in presence records ("": none kept)
  std::set<std::string> present_;  // agents with a session here, as last noted
  int64_t presence_lease_ = 0;     // the lease they are written under (0: none now)
  std::chrono::steady_clock::time_point presence_renewed_{};
};

}  // namespace

Result<ControllerStorePtr> openEtcdControllerStore(std::unique_ptr<EtcdClient> client,
                                                   std::string prefix,
                                                   std::string controller_name) {
  if (prefix.empty() || prefix.front() != '/' || prefix.back() != '/') {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller store: the etcd prefix must start and end with '/'");
  }
  auto store = std::make_unique<EtcdControllerStore>(std::move(client), std::move(prefix),
                                                     std::move(controller_name));
  SHADAN_RETURN_IF_ERROR(store->probe());
  SHADAN_RETURN_IF_ERROR(store->dropEarlierPresence());
  return ControllerStorePtr(std::move(store));
}

Result<ControllerStorePtr> openEtcdControllerStore(const EtcdStoreOptions& options) {
  SHADAN_ASSIGN_OR_RETURN(auto client, EtcdClient::make(options.client()));
  return openEtcdControllerStore(std::move(client), options.prefix, options.controller_name);
}

Result<ControllerStorePtr> openConfiguredStore(const StoreConfig& store,
                                               const std::filesystem::path& state_dir) {
  if (store.kind == StoreConfig::Kind::kSqlite) {
    return openSqliteControllerStore(state_dir.string());
  }
  // The audit log and the agents' shipped logs stay in the state directory.
  SHADAN_RETURN_IF_ERROR(makeControllerStateDir(state_dir));
  EtcdStoreOptions options = store.etcd;
  SHADAN_ASSIGN_OR_RETURN(options.controller_name, controllerNameOf(store));
  return openEtcdControllerStore(options);
}

}  // namespace shadan::controller
