#include "controller/store_documents.h"

#include "common/sqlite.h"

namespace shadan::controller {
namespace {

constexpr const char* kColumns = "kind, id, body, open, created, updated";

Result<SqliteStatement> prepare(sqlite3* db, std::string_view sql, const char* purpose) {
  return SqliteStatement::prepare(db, sql, std::string("controller store: ") + purpose);
}

StoredDocument fromRow(const SqliteStatement& row) {
  StoredDocument document;
  document.kind = row.columnText(0);
  document.id = row.columnText(1);
  document.body = row.columnText(2);
  document.open = row.columnInt64(3) != 0;
  document.created_ms = row.columnInt64(4);
  document.updated_ms = row.columnInt64(5);
  return document;
}

Result<std::vector<StoredDocument>> collect(SqliteStatement& statement) {
  std::vector<StoredDocument> out;
  SHADAN_RETURN_IF_ERROR(statement.forEachRow([&](const SqliteStatement& row) -> Status {
    out.push_back(fromRow(row));
    return okStatus();
  }));
  return out;
}

}  // namespace

Status createDocumentsTable(sqlite3* db) {
  return sqliteExec(db, R"sql(
CREATE TABLE IF NOT EXISTS documents (
  kind    TEXT NOT NULL,
  id      TEXT NOT NULL,
  body    TEXT NOT NULL,
  open    INTEGER NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
) STRICT;
CREATE INDEX IF NOT EXISTS documents_open ON documents (kind, open, created);
)sql",
                    "controller store: documents schema");
}

Status putStoredDocument(sqlite3* db, const StoredDocument& document) {
  // The first put sets `created`; later ones keep it.
  SHADAN_ASSIGN_OR_RETURN(
      auto s, prepare(db,
                      "INSERT INTO documents (kind, id, body, open, created, updated) "
                      "VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT (kind, id) DO UPDATE SET "
                      "body = excluded.body, open = excluded.open, updated = excluded.updated",
                      "put document"));
  s.bindText(1, document.kind)
      .bindText(2, document.id)
      .bindText(3, document.body)
      .bindInt64(4, document.open ? 1 : 0)
      .bindInt64(5, document.created_ms)
      .bindInt64(6, document.updated_ms);
  return s.run();
}

Result<std::optional<StoredDocument>> getStoredDocument(sqlite3* db, const std::string& kind,
                                                        const std::string& id) {
  SHADAN_ASSIGN_OR_RETURN(
      auto s,
      prepare(db, std::string("SELECT ") + kColumns + " FROM documents WHERE kind = ?1 AND id = ?2",
              "get document"));
  s.bindText(1, kind).bindText(2, id);
  SHADAN_ASSIGN_OR_RETURN(auto rows, collect(s));
  if (rows.empty()) return std::optional<StoredDocument>();
  return std::optional<StoredDocument>(std::move(rows.front()));
}

Result<std::vector<StoredDocument>> openStoredDocuments(sqlite3* db, const std::string& kind) {
  SHADAN_ASSIGN_OR_RETURN(
      auto s, prepare(db,
                      std::string("SELECT ") + kColumns +
                          " FROM documents WHERE kind = ?1 AND open = 1 ORDER BY created, id",
                      "open documents"));
  s.bindText(1, kind);
  return collect(s);
}

}  // namespace shadan::controller
