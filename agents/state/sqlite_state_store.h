#pragma once

// StateStore in SQLite: <state-dir>/agent.db, WAL journal, synchronous=FULL (a committed order
// survives power loss). Also takes an exclusive flock on <state-dir>/lock for the life of the
// object, so two processes can never write the same gateway's state (the daemon, later, holds
// it for good and the local commands talk to it instead).

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/state/state_store.h"
#include "common/sqlite.h"

namespace shadan::agent {

class SqliteStateStore : public StateStore {
 public:
  // Takes the lock (waiting up to `lock_wait` for another process to let go, then failing with
  // kUnavailable), opens or creates the database and checks its schema version. A missing
  // directory is created (0700) only with `create_directory` (the daemon, `init`); otherwise
  // it is kNotFound, so that a mistyped --state-dir is not created silently.
  static Result<std::unique_ptr<SqliteStateStore>> open(
      const std::filesystem::path& state_dir,
      std::chrono::milliseconds lock_wait = std::chrono::seconds(5), bool create_directory = true);

  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  Result<DesiredState> load() override;
  Status save(const DesiredState& state) override;
  // One commit with PRAGMA synchronous=NORMAL: in WAL mode that commit is not fsynced (the
  // next FULL commit syncs it with its own frames); the connection goes back to FULL after.
  Status saveUnsynced(const DesiredState& state) override;
  Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                     int64_t keep_ms) override;
  Result<std::vector<StoredAck>> recentAcks(int64_t since_ms, size_t limit) override;

 private:
  struct Statements;
  SqliteStateStore(SqliteDbPtr db, int lock_fd);

  // Runs `write` (one transaction) with PRAGMA synchronous=NORMAL, then goes back to FULL: in
  // WAL mode that commit is not fsynced; the next FULL commit syncs it with its own frames.
  Status unsynced(const std::function<Status()>& write);

  // The writes that turn the stored rows from `stored_` into `state` (everything when the
  // stored rows are not known). Runs inside the caller's transaction.
  Status writeChanges(const DesiredState& state);

  SqliteDbPtr db_;
  int lock_fd_;
  // Prepared once and reused by every commit: compiling the SQL cost more than running it.
  std::unique_ptr<Statements> statements_;
  // What the database holds, as of the last load() or successful commit of this process (which
  // holds the lock: nobody else writes). save() writes only the rows that differ from it: one
  // order costs the same with ten thousand remembered command ids as with none, and the
  // post-apply hash commit is one UPDATE. Unknown (nullopt) before the first load or save.
  std::optional<DesiredState> stored_;
};

}  // namespace shadan::agent
