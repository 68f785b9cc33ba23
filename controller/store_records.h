#pragma once

// The controller store's records as names and JSON documents, shared by the stores
// (controller/store.h): SQLite reads its enum columns with the parse functions; a store that
// keeps one document per record (etcd, controller/etcd_store.h) uses the JSON forms.
//
// Contracts:
//   - parse*() are the inverses of the *Name() functions of store.h; nullopt for anything else.
//   - *ToJson() then *FromJson() gives back an equal record. Bytes that need not be text (an
//     order's authz payload, an approval's payload, signatures, public keys) are base64.
//   - *FromJson() refuses a document that lacks a field or has one of the wrong type, with
//     kState "controller store: corrupt <what> <id>": a store holds only what it wrote.

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "controller/store.h"

namespace shadan::controller {

std::optional<AgentStatus> parseAgentStatus(std::string_view name);
std::optional<OrderState> parseOrderState(std::string_view name);
std::optional<DispatchState> parseDispatchState(std::string_view name);
std::optional<ApprovalState> parseApprovalState(std::string_view name);

nlohmann::json agentToJson(const AgentRecord& agent);
Result<AgentRecord> agentFromJson(const nlohmann::json& doc);
nlohmann::json orderToJson(const OrderRecord& order);
Result<OrderRecord> orderFromJson(const nlohmann::json& doc);
nlohmann::json dispatchToJson(const DispatchRecord& dispatch);
Result<DispatchRecord> dispatchFromJson(const nlohmann::json& doc);
nlohmann::json approvalToJson(const ApprovalRecord& approval);
Result<ApprovalRecord> approvalFromJson(const nlohmann::json& doc);
nlohmann::json segmentToJson(const SegmentRecord& segment);
Result<SegmentRecord> segmentFromJson(const nlohmann::json& doc);
nlohmann::json documentToJson(const StoredDocument& document);
Result<StoredDocument> documentFromJson(const nlohmann::json& doc);

// The JSON array of approval signatures as SQLite keeps it ([{"keyid","sig"}], sig base64), and
// back.
nlohmann::json signaturesToJson(const std::vector<DsseSignature>& signatures);
std::optional<std::vector<DsseSignature>> signaturesFromJson(const nlohmann::json& doc);

}  // namespace shadan::controller
