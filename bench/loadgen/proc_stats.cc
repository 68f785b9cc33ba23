#include "bench/loadgen/proc_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace shadan::loadgen {
namespace {

// The value of "Name:   1234 kB" lines of a /proc file; -1 when absent.
int64_t kbField(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + ":");
  const size_t start =
      at == std::string::npos
          ? (text.compare(0, name.size() + 1, name + ":") == 0 ? 0 : std::string::npos)
          : at + 1;
  if (start == std::string::npos) return -1;
  std::istringstream line(text.substr(start + name.size() + 1, 40));
  int64_t value = -1;
  line >> value;
  return value;
}

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return makeError(ErrorCode::kNotFound, path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

nlohmann::json ProcStats::toJson() const {
  return {{"rss_anon_kb", rss_anon_kb},
          {"vm_rss_kb", vm_rss_kb},
          {"vm_hwm_kb", vm_hwm_kb},
          {"pss_kb", pss_kb},
          {"cpu_s", cpu_s}};
}

Result<ProcStats> readProcStats(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  SHADAN_ASSIGN_OR_RETURN(const std::string status, slurp(base + "/status"));
  ProcStats stats;
  stats.rss_anon_kb = kbField(status, "RssAnon");
  stats.vm_rss_kb = kbField(status, "VmRSS");
  stats.vm_hwm_kb = kbField(status, "VmHWM");
  if (auto rollup = slurp(base + "/smaps_rollup"); rollup.ok()) {
    stats.pss_kb = std::max<int64_t>(0, kbField(*rollup, "Pss"));
  }
  SHADAN_ASSIGN_OR_RETURN(const std::string stat, slurp(base + "/stat"));
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return makeError(ErrorCode::kParse, base + "/stat: no comm");
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  long long utime = 0;
  long long stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  stats.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return stats;
}

}  // namespace shadan::loadgen
