#pragma once

// Following a detector's log file the way `tail -F` does, for `shadanctl forward`: complete
// lines only, across rotation and truncation, from a position a restart can resume at.
//
// Contracts:
//   - Only complete lines (ending in '\n') are returned; a partial last line waits for its
//     newline. A line longer than `max_line_bytes` (not counting the newline) comes back as
//     kOversize without its text, once its newline arrives; it is never held in memory whole.
//   - Rotation: when the path names a different file (device, inode) than the one open, the
//     open file is read to its end first. The switch to the new file (read from offset 0)
//     happens only once the old file gave nothing since the previous look at the path, so a
//     writer that still appends to the renamed file for a moment is not cut off: in a loop
//     that sleeps between reads, the old file gets at least one sleep of grace.
//   - Truncation (the file is shorter than what was read, as after copytruncate): reading
//     starts again at 0. A truncation that the writer refills past the read offset before the
//     follower looks cannot be told from growth; nothing short of hashing the head could.
//   - Bytes left without a newline when the follower leaves a file (rotation) or the file is
//     truncated come back as one kIncomplete line: they are not silently forgotten.
//   - Every rotation, truncation and start decision is said on `notices`, one line each.
//   - position() is the first byte not yet returned in a line: a restart resumed there reads
//     the next line again, never half of one.
//   - Never blocks (regular files read at EOF return 0); the caller decides how long to sleep.
// Thread-compatible; one follower per file.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan {

// Which file a path named: rotation gives the path a new (device, inode).
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

struct LogPosition {
  FileIdentity file;
  uint64_t offset = 0;  // first byte not yet consumed
  bool operator==(const LogPosition&) const = default;
};

enum class LogLineKind {
  kComplete,    // `text` holds the line without its '\n'
  kOversize,    // longer than the limit; `text` is empty
  kIncomplete,  // no '\n' before the file was left or truncated; `text` is empty
};

struct LogLine {
  LogLineKind kind = LogLineKind::kComplete;
  FileIdentity file;
  uint64_t offset = 0;  // of its first byte in `file`
  uint64_t end = 0;     // just past its '\n' (kIncomplete: past its last byte)
  std::string text;
};

struct LogRead {
  std::vector<LogLine> lines;
  // Nothing more can be read right now: no complete line is waiting and no rotation is being
  // waited out. `shadanctl forward --once` reads until this is true.
  bool at_end = false;
};

// Where the first read begins.
struct FollowStart {
  // The persisted position. Used when the path still names that file: from its offset (from 0,
  // with a notice, when the file is now shorter). A different file at the path was rotated in
  // while nobody followed: it is read from 0, with a notice.
  std::optional<LogPosition> resume;
  // Without `resume`: read the existing file from 0 instead of from its end. A file that
  // appears only after following began is always read from 0.
  bool from_start = false;
};

class LogFollower {
 public:
  // REQUIRES: `notices` outlives the follower. Nothing is opened before the first read().
  LogFollower(std::string path, FollowStart start, size_t max_line_bytes, std::ostream& notices);

  // Up to `max_lines` (> 0) lines that are complete now, in file order. A missing file is not
  // an error (it may be between rotation steps, or not written yet): no lines, at_end. Errors
  // (kIo) are the ones a retry will not fix: the path cannot be opened or read for another
  // reason than its absence.
  Result<LogRead> read(size_t max_lines);

  // Opens the file if it is not open yet and decides where reading starts (FollowStart);
  // read() does this itself. A missing file is not an error: position() stays nullopt.
  Status open();

  // nullopt until a file was opened.
  std::optional<LogPosition> position() const;

  const std::string& path() const { return path_; }

 private:
  // Takes one line out of the buffer; false when no complete line is buffered.
  bool takeLine(LogRead& out);
  // Called at the end of the open file: handles rotation and truncation. Returns true when it
  // changed what is read (reading goes on), false when there is nothing more for now.
  Result<bool> lookAtPath(LogRead& out);
  // The unterminated bytes being dropped (rotation, truncation) as one kIncomplete line.
  void abandonPartial(LogRead& out);
  void resetTo(uint64_t offset);

  const std::string path_;
  const FollowStart follow_;
  const size_t max_line_bytes_;
  std::ostream& notices_;

  UniqueFd fd_;
  FileIdentity file_;
  bool opened_once_ = false;
  bool said_missing_ = false;

  uint64_t consumed_ = 0;     // position(): start of the first line not yet returned
  std::string buffer_;        // bytes read, from file offset buffer_base_
  size_t start_ = 0;          // buffer_[start_..] are not yet consumed or dropped
  size_t scanned_ = 0;        // buffer_[start_..scanned_) holds no '\n'
  uint64_t buffer_base_ = 0;  // file offset of buffer_[0]
  bool discarding_ = false;   // inside an oversize line: its bytes are dropped as they come

  bool rotation_pending_ = false;
  uint64_t bytes_since_look_ = 0;  // read from the open file since lookAtPath() last ran
};

}  // namespace shadan
