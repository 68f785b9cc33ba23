#pragma once

// FirewallBackend over libnftables (1.0.6): nft scripts go to the kernel as one netlink batch,
// in-process, through ONE long-lived nft_ctx.
//
// Threading: libnftables keeps global state and is not thread-safe. The backend belongs to the
// thread that called create(); a call from any other thread is a broken invariant and aborts.
//
// Network namespace: the context talks to the namespace of the creating thread (its netlink
// socket is bound there).

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "agents/dataplane/firewall_backend.h"
#include "common/result.h"

struct nft_ctx;

namespace shadan {

class NftablesBackend final : public FirewallBackend {
 public:
  static Result<std::unique_ptr<NftablesBackend>> create();

  NftablesBackend(const NftablesBackend&) = delete;
  NftablesBackend& operator=(const NftablesBackend&) = delete;
  ~NftablesBackend() override;

  Status apply(std::string_view nft_script) override;
  Result<TableSnapshot> readTable() override;
  Result<std::string> listRuleset() override;
  Result<nlohmann::json> listRulesetJson() override;

  // Sends `nft_script` to the kernel in dry-run mode: parsed, evaluated and validated by the
  // kernel, then aborted. Catches what apply() would reject without changing anything.
  Status check(std::string_view nft_script);

 private:
  struct CtxDeleter {
    void operator()(nft_ctx* ctx) const;
  };
  using CtxPtr = std::unique_ptr<nft_ctx, CtxDeleter>;

  // What one libnftables call left behind; both buffers are drained by run().
  struct RunResult {
    int rc = 0;
    std::string output;
    std::string error;
  };

  explicit NftablesBackend(CtxPtr ctx);

  RunResult run(std::string_view commands);
  void requireOwnerThread(const char* what) const;

  CtxPtr ctx_;
  std::thread::id owner_;
};

}  // namespace shadan
