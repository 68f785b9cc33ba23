#pragma once

// A real one-member etcd (Debian's etcd-server, /usr/bin/etcd) for the store tests: loopback
// ports of its own, its data in a directory of the test's, stopped (SIGKILL) and reaped when the
// object goes. No root needed.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "controller/etcd_client.h"

namespace shadan::testing {

inline constexpr const char* kEtcdBinary = "/usr/bin/etcd";

// A loopback port nobody listens on right now (the kernel's pick for port 0).
inline uint16_t freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// An EtcdClient that passes every call to `inner`: the base of the tests' faulty clients (a
// lost answer, a partition), which override only what they change.
class ForwardingEtcdClient : public controller::EtcdClient {
 public:
  explicit ForwardingEtcdClient(std::unique_ptr<controller::EtcdClient> inner)
      : inner_(std::move(inner)) {}

  Result<controller::EtcdRange> range(const controller::EtcdRangeRequest& request) override {
    return inner_->range(request);
  }
  Result<controller::EtcdTxnResult> txn(const std::vector<controller::EtcdCompare>& compares,
                                        const std::vector<controller::EtcdWrite>& writes) override {
    return inner_->txn(compares, writes);
  }
  Result<controller::EtcdLease> leaseGrant(std::chrono::seconds ttl) override {
    return inner_->leaseGrant(ttl);
  }
  Result<int64_t> leaseKeepAlive(int64_t lease) override { return inner_->leaseKeepAlive(lease); }
  Status leaseRevoke(int64_t lease) override { return inner_->leaseRevoke(lease); }
  std::string currentEndpoint() const override { return inner_->currentEndpoint(); }

 protected:
  controller::EtcdClient& inner() { return *inner_; }

 private:
  std::unique_ptr<controller::EtcdClient> inner_;
};

// A member that speaks only https with client certificates (etcd's --client-cert-auth).
struct EtcdMemberTls {
  std::string ca;                       // trusted for client certificates
  std::string cert, key;                // the member's, naming 127.0.0.1
  std::string client_cert, client_key;  // for the readiness probe
};

class EtcdMember {
 public:
  // Starts a member with its data under `dir` and waits until it answers (up to 20 s). Throws
  // with etcd's log when it does not. `extra` flags are passed on (e.g. --max-txn-ops=...).
  explicit EtcdMember(const std::filesystem::path& dir, std::vector<std::string> extra = {},
                      std::optional<EtcdMemberTls> tls = std::nullopt)
      : dir_(dir), extra_(std::move(extra)), tls_(std::move(tls)) {
    if (::access(kEtcdBinary, X_OK) != 0) {
      throw std::runtime_error(std::string(kEtcdBinary) +
                               " is not there: scripts/install-deps.sh installs etcd-server");
    }
    std::filesystem::create_directories(dir_);
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (startOnce()) return;
      stop();  // a port taken meanwhile: try others
    }
    throw std::runtime_error("etcd did not start; its log: " + (dir_ / "etcd.log").string());
  }
  ~EtcdMember() { stop(); }
  EtcdMember(const EtcdMember&) = delete;
  EtcdMember& operator=(const EtcdMember&) = delete;

  controller::EtcdEndpoint endpoint() const {
    return {"127.0.0.1", client_port_, tls_.has_value()};
  }
  std::string clientUrl() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(client_port_);
  }
  pid_t pid() const { return pid_; }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  bool startOnce() {
    client_port_ = freeLoopbackPort();
    const uint16_t peer_port = freeLoopbackPort();
    const std::string client = clientUrl();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    std::vector<std::string> args = {kEtcdBinary,
                                     "--name=m",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=m=" + peer,
                                     "--logger=zap",
                                     "--log-level=warn"};
    if (tls_) {
      args.insert(args.end(), {"--cert-file=" + tls_->cert, "--key-file=" + tls_->key,
                               "--client-cert-auth", "--trusted-ca-file=" + tls_->ca});
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    const std::string log = (dir_ / "etcd.log").string();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(kEtcdBinary, argv.data());
      ::_exit(127);
    }
    controller::EtcdClientOptions probe_options{{endpoint()}, std::chrono::milliseconds(500)};
    if (tls_) {
      probe_options.tls_ca = tls_->ca;
      probe_options.tls_cert = tls_->client_cert;
      probe_options.tls_key = tls_->client_key;
    }
    auto client_or = controller::EtcdClient::make(probe_options);
    if (!client_or.ok()) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      controller::EtcdRangeRequest probe;
      probe.key = "/";
      if ((*client_or)->range(probe).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::filesystem::path dir_;
  std::vector<std::string> extra_;
  std::optional<EtcdMemberTls> tls_;
  uint16_t client_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace shadan::testing
