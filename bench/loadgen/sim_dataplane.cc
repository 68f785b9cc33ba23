#include "bench/loadgen/sim_dataplane.h"

#include <algorithm>

#include "common/sha256.h"

namespace shadan::loadgen {
namespace {

class MemoryFile final : public WritableLogFile {
 public:
  explicit MemoryFile(std::shared_ptr<std::string> data) : data_(std::move(data)) {}
  Status append(std::string_view bytes) override {
    data_->append(bytes);
    return okStatus();
  }
  Status sync() override { return okStatus(); }

 private:
  std::shared_ptr<std::string> data_;
};

Error noFile(const std::string& path) {
  return makeError(ErrorCode::kNotFound, path + ": no such file");
}

}  // namespace

Status NullFirewall::apply(std::string_view nft_script) {
  // The planner's scripts replace the whole table: "add table ...; delete table ...; table ...".
  static constexpr std::string_view kReplaceHeader =
      "add table inet shadan\ndelete table inet shadan\n";
  if (nft_script.substr(0, kReplaceHeader.size()) == kReplaceHeader) {
    nft_script.remove_prefix(kReplaceHeader.size());
  }
  table_ = std::string(nft_script);
  return okStatus();
}

Result<agent::TableSnapshot> NullFirewall::readTable() {
  agent::TableSnapshot snapshot;
  snapshot.present = !table_.empty();
  snapshot.listing = table_;
  snapshot.sha256 = sha256Hex(table_);
  return snapshot;
}

Result<nlohmann::json> NullFirewall::listForeignRulesetJson() {
  return nlohmann::json{{"nftables", nlohmann::json::array()}};
}

Status NullRoutes::sync(const std::vector<IpPrefix>& desired) {
  routes_ = desired;
  std::sort(routes_.begin(), routes_.end());
  return okStatus();
}

Status NullRoutes::setLinkUp(const std::string& ifname, bool) {
  return makeError(ErrorCode::kNotFound, "no interface \"" + ifname + "\" (simulated gateway)");
}

Result<bool> NullRoutes::isLinkUp(const std::string& ifname) {
  return makeError(ErrorCode::kNotFound, "no interface \"" + ifname + "\" (simulated gateway)");
}

Status MemoryStateStore::save(const agent::DesiredState& state) {
  state_ = state;
  return okStatus();
}

Status MemoryStateStore::rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                                     int64_t keep_ms) {
  std::erase_if(acks_, [&](const auto& entry) { return entry.second.at_ms < at_ms - keep_ms; });
  acks_[seq] = Kept{envelope, at_ms};
  return okStatus();
}

Result<std::vector<agent::StoredAck>> MemoryStateStore::recentAcks(int64_t since_ms, size_t limit) {
  std::vector<agent::StoredAck> out;
  for (const auto& [seq, kept] : acks_) {
    if (kept.at_ms >= since_ms) out.push_back(agent::StoredAck{seq, kept.envelope});
  }
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(limit));
  return out;
}

Result<std::string> MemoryLogFileSystem::readFile(const std::string& path) {
  const auto found = files_.find(path);
  if (found == files_.end()) return noFile(path);
  return *found->second;
}

Result<std::vector<std::string>> MemoryLogFileSystem::listDirectory(const std::string& dir) {
  const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  std::vector<std::string> names;
  for (const auto& [path, data] : files_) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = path.substr(prefix.size());
    if (name.find('/') == std::string::npos) names.push_back(name);
  }
  return names;
}

Result<std::unique_ptr<WritableLogFile>> MemoryLogFileSystem::openForAppend(
    const std::string& path) {
  auto& data = files_[path];
  if (!data) data = std::make_shared<std::string>();
  return std::unique_ptr<WritableLogFile>(std::make_unique<MemoryFile>(data));
}

Status MemoryLogFileSystem::createFile(const std::string& path, std::string_view contents) {
  if (files_.count(path) != 0) return makeError(ErrorCode::kState, path + ": exists");
  files_[path] = std::make_shared<std::string>(contents);
  return okStatus();
}

Status MemoryLogFileSystem::truncate(const std::string& path, uint64_t size) {
  const auto found = files_.find(path);
  if (found == files_.end()) return noFile(path);
  if (size < found->second->size()) found->second->resize(size);
  return okStatus();
}

Status MemoryLogFileSystem::rename(const std::string& from, const std::string& to) {
  if (files_.count(to) != 0) return makeError(ErrorCode::kState, to + ": exists");
  const auto found = files_.find(from);
  if (found == files_.end()) return noFile(from);
  files_[to] = found->second;
  files_.erase(found);
  return okStatus();
}

Status MemoryLogFileSystem::appendUnsynced(const std::string& path, std::string_view data) {
  const auto found = files_.find(path);
  if (found == files_.end()) return noFile(path);
  found->second->append(data);
  return okStatus();
}

Result<std::string> MemoryLogFileSystem::readAt(const std::string& path, uint64_t offset,
                                                size_t max_bytes) {
  const auto found = files_.find(path);
  if (found == files_.end()) return noFile(path);
  const std::string& data = *found->second;
  if (offset >= data.size()) return std::string();
  return data.substr(offset, max_bytes);
}

}  // namespace shadan::loadgen
