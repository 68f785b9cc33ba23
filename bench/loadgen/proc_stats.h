#pragma once

// A process's footprint as /proc reports it, read the same way for every program measured
// (docs/benchmarks.md, "Fleet scale"): RssAnon, VmRSS and VmHWM from /proc/PID/status, Pss from
// /proc/PID/smaps_rollup, CPU time from /proc/PID/stat.

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/result.h"

namespace shadan::loadgen {

struct ProcStats {
  int64_t rss_anon_kb = 0;  // the process's own anonymous memory
  int64_t vm_rss_kb = 0;    // resident, shared libraries' file pages included
  int64_t vm_hwm_kb = 0;    // peak VmRSS
  int64_t pss_kb = 0;       // proportional share (0 when smaps_rollup cannot be read)
  double cpu_s = 0;         // user + system
  nlohmann::json toJson() const;
};

Result<ProcStats> readProcStats(pid_t pid);

}  // namespace shadan::loadgen
