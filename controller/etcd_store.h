#pragma once

// ControllerStore on etcd (v3 API, controller/etcd_client.h): the same contract as the SQLite
// store (controller/store.h), for controllers that share one store (docs/ha.md).
//
// Layout, under `prefix` (default "/shadan/"), one JSON document per record
// (controller/store_records.h); key parts are percent-escaped ('%' and '/'):
//   agents/<agent>                 AgentRecord
//   seq/<agent>                    the last seq handed out, decimal
//   segments/<generation key>      SegmentRecord (gen included)
//   orders/<command_id>            OrderRecord; listOrders() is newest-created first
//   dispatches/<command_id>/<agent> DispatchRecord
//   pending/<agent>/<command_id>   "" while the dispatch is pending: an index, the record
//                                  itself is only in dispatches/ (written through Raft once);
//                                  pendingDispatches() lists these in creation order (etcd's
//                                  create revision) and reads the records as of that revision
//   byseq/<agent>/<seq>            command_id of the dispatch with that seq
//   approvals/<approval_id>        ApprovalRecord
//   documents/<kind>/<id>          StoredDocument
//   writers/<random>               a fence per store opened: the mark of its last commit
//   presence/<agent>               the name of the controller the agent's session is on,
//                                  under that controller's lease (TTL 10 s, renewed by
//                                  keepPresence): not a record of the store's contract, a
//                                  view for status; written outside transactions
//
// Contracts beyond store.h's:
//   - transaction(fn) is optimistic: reads inside fn are served as of one etcd revision (the
//     first read's), writes are buffered (and seen by later reads in fn), and the commit is one
//     etcd txn whose compares say that no key fn read has changed since. When another writer got
//     there first, nothing is written and transaction() fails with kState ("changed by another
//     writer"); fn is not run again, because fn may have done more than store calls.
//   - Every commit also writes this store's fence key (writers/<random>, new per store opened)
//     with a new mark, compared against the revision of its last write. A commit sent without
//     an answer is settled through it: the mark read back means applied (success); else the
//     fence is written again, so the lost commit can never apply, and the error is
//     kStoreUnavailable ("not applied"). With etcd silent even then, the error is
//     kStoreOutcomeUnknown and the next commit reads the fence first (fencing the lost one).
//   - A write outside transaction() is a transaction of its own; those (and nextSeq,
//     nextSegmentGen) are retried a few times on such a conflict, having no other effects.
//   - A fan-out's transaction writes two keys per gateway: etcd's --max-txn-ops (default 128)
//     and --max-request-bytes must be sized for the fleet (docs/ha.md); etcd's refusal comes
//     back as the transaction's error.
//   - Durable when a write returns: etcd commits through its Raft log on a quorum.
//   - Not thread-safe, like the SQLite store.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "controller/config.h"
#include "controller/etcd_client.h"
#include "controller/store.h"

namespace shadan::controller {

// Connects (one range of the prefix) so a wrong address fails at start, with kUnavailable.
// EtcdStoreOptions is the config's store section (controller/config.h).
Result<ControllerStorePtr> openEtcdControllerStore(const EtcdStoreOptions& options);
// Over a client of the caller's (tests: a client that drops answers).
Result<ControllerStorePtr> openEtcdControllerStore(std::unique_ptr<EtcdClient> client,
                                                   std::string prefix,
                                                   std::string controller_name = "");

// The store a controller's config names: SQLite in `state_dir` (the default), or etcd.
Result<ControllerStorePtr> openConfiguredStore(const StoreConfig& store,
                                               const std::filesystem::path& state_dir);

}  // namespace shadan::controller
