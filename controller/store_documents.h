#pragma once

// The SQLite side of ControllerStore's documents (controller/store.h): one table keyed by
// (kind, id). Internal to the SQLite store; callers use ControllerStore.

#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controller/store.h"

namespace shadan::controller {

Status createDocumentsTable(sqlite3* db);
Status putStoredDocument(sqlite3* db, const StoredDocument& document);
Result<std::optional<StoredDocument>> getStoredDocument(sqlite3* db, const std::string& kind,
                                                        const std::string& id);
Result<std::vector<StoredDocument>> openStoredDocuments(sqlite3* db, const std::string& kind);

}  // namespace shadan::controller
