#include "cli/controller_cmd.h"

// <utility> before any Boost.Asio header (Boost 1.74 + GCC 12 in C++20).
#include <utility>
//
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/api_client.h"
#include "cli/shadanctl.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "tests/cli/fake_api_transport.h"
#include "tests/fakes/fake_clock.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Json = nlohmann::json;
using Tcp = asio::ip::tcp;

constexpr const char* kToken = "s3cr3t-token-for-tests";

// ---------------------------------------------------------------------------------------------
// Certificates made with OpenSSL in a temp directory: a CA and a server leaf for 127.0.0.1.

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

PkeyPtr newKey() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free); }

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509Ptr makeCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                 bool is_ca, const char* san) {
  static long serial = 1;
  X509Ptr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (is_ca) {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    addExtension(cert.get(), signer, NID_subject_alt_name, san);
  }
  EXPECT_GT(X509_sign(cert.get(), issuer_key, nullptr), 0);
  return cert;
}

void writePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"), BIO_free);
  ASSERT_NE(bio, nullptr);
  if (cert != nullptr) {
    ASSERT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
  }
  if (key != nullptr) {
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTPS server on 127.0.0.1 port 0: one connection at a time, answers from a handler.

struct SeenRequest {
  std::string method;
  std::string target;
  std::string authorization;
  std::string body;
};

struct CannedAnswer {
  int status = 200;
  std::string body;
  bool stall = false;  // read the request, then never answer
};

class TestHttpsServer {
 public:
  using Handler = std::function<CannedAnswer(const SeenRequest&)>;

  TestHttpsServer(const std::string& cert_file, const std::string& key_file, int max_tls_version,
                  Handler handler)
      : context_(asio::ssl::context::tls_server), handler_(std::move(handler)) {
    context_.use_certificate_chain_file(cert_file);
    context_.use_private_key_file(key_file, asio::ssl::context::pem);
    SSL_CTX_set_min_proto_version(context_.native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(context_.native_handle(), max_tls_version);
    acceptor_.open(Tcp::v4());
    acceptor_.set_option(Tcp::acceptor::reuse_address(true));
    acceptor_.bind(Tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~TestHttpsServer() {
    stop_ = true;
    // Wake a blocking accept().
    boost::system::error_code ignored;
    Tcp::socket poke(io_);
    poke.connect(Tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }
  int handshakes_failed() const { return handshakes_failed_; }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code error;
      Tcp::socket socket(io_);
      acceptor_.accept(socket, error);
      if (error || stop_) continue;
      asio::ssl::stream<Tcp::socket&> stream(socket, context_);
      stream.handshake(asio::ssl::stream_base::server, error);
      if (error) {
        ++handshakes_failed_;
        continue;
      }
      beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(stream, buffer, request, error);
      if (error) continue;
      SeenRequest seen{std::string(request.method_string()), std::string(request.target()),
                       std::string(request[http::field::authorization]), request.body()};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.push_back(seen);
      }
      CannedAnswer answer = handler_(seen);
      if (answer.stall) {
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = answer.body;
      response.prepare_payload();
      http::write(stream, response, error);
      stream.shutdown(error);
    }
  }

  asio::io_context io_;
  asio::ssl::context context_;
  Tcp::acceptor acceptor_{io_};
  Handler handler_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_failed_{0};
  std::mutex mutex_;
  std::vector<SeenRequest> seen_;
  std::thread thread_;
};

class ControllerCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shadan-ctl-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_vars_["SHADAN_TOKEN"] = kToken;
    env_vars_["HOME"] = dir_.string();  // no config file there unless a test writes one
    env_.make_transport = [this](const ApiClientOptions& options) -> std::unique_ptr<ApiTransport> {
      fake_.last_options = options;
      if (use_real_client_) return std::make_unique<ApiClient>(options);
      return std::make_unique<FakeTransport>(fake_);
    };
    env_.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_vars_.find(name);
      if (it == env_vars_.end()) return std::nullopt;
      return it->second;
    };
    env_.in = &in_;
    env_.stdin_is_tty = false;
    env_.monotonic_now = [this] { return std::chrono::steady_clock::time_point(fake_time_); };
    env_.sleep = [this](std::chrono::milliseconds d) {
      fake_time_ += d;
      sleeps_.push_back(d);
    };
    env_.clock = &clock_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  int run(std::vector<std::string> args, bool with_connection = true) {
    out_.str("");
    err_.str("");
    if (with_connection) {
      args.insert(args.end(), {"--controller", "https://127.0.0.1:" + std::to_string(port_), "--ca",
                               ca_file_, "--timeout", "2"});
    }
    return runControllerCommand(args, out_, err_, env_);
  }
  bool errSays(const std::string& part) const { return err_.str().find(part) != std::string::npos; }
  bool outSays(const std::string& part) const { return out_.str().find(part) != std::string::npos; }

  // Certificates for the HTTPS tests: ca.crt signs server.crt (127.0.0.1); other-ca.crt is
  // an unrelated CA.
  void makeCertificates() {
    PkeyPtr ca_key = newKey();
    X509Ptr ca = makeCert("test ca", ca_key.get(), nullptr, ca_key.get(), true, nullptr);
    PkeyPtr server_key = newKey();
    X509Ptr server = makeCert("controller", server_key.get(), ca.get(), ca_key.get(), false,
                              "IP:127.0.0.1,DNS:controller.test");
    PkeyPtr other_key = newKey();
    X509Ptr other = makeCert("other ca", other_key.get(), nullptr, other_key.get(), true, nullptr);
    writePem(path("ca.crt"), ca.get(), nullptr);
    writePem(path("other-ca.crt"), other.get(), nullptr);
    writePem(path("server.crt"), server.get(), nullptr);
    writePem(path("server.key"), nullptr, server_key.get());
    ca_file_ = path("ca.crt");
  }

  std::filesystem::path dir_;
  FakeApi fake_;
  bool use_real_client_ = false;
  std::map<std::string, std::string> env_vars_;
  std::istringstream in_;
  std::chrono::steady_clock::duration fake_time_{};
  std::vector<std::chrono::milliseconds> sleeps_;
  testing::FakeClock clock_{1795687260000};
  ControllerCmdEnv env_;
  std::string ca_file_ = "/nonexistent/ca.crt";
  uint16_t port_ = 8443;
  std::ostringstream out_;
  std::ostringstream err_;
};

// ---------------------------------------------------------------------------------------------
// Argument handling.

struct UsageCase {
  std::vector<std::string> args;
  const char* expected;
};

TEST_F(ControllerCmdTest, BadArgumentsAreUsageErrorsAndSendNothing) {
  const std::vector<UsageCase> cases = {
      {{"isolate"}, "'isolate' needs a SEGMENT"},
      {{"isolate", "lgwan"}, "'isolate' needs --reason TEXT"},
      {{"isolate", "lgwan", "--reason", ""}, "--reason must not be empty"},
      {{"isolate", "lgwan", "--reason", std::string(513, 'x')}, "longer than 512"},
      {{"isolate", "lgwan", "--reason", "a\nb"}, "control character"},
      {{"isolate", "lgwan", "dmz", "--reason", "r"}, "'isolate' takes no argument \"dmz\""},
      {{"isolate", "../x", "--reason", "r"}, "invalid segment name"},
      {{"isolate", "lgwan", "--reason", "r", "--ttl", "forever"}, "--ttl: invalid duration"},
      {{"isolate", "lgwan", "--reason", "r", "--ttl", "1500ms"}, "--ttl must be whole seconds"},
      {{"isolate", "lgwan", "--reason", "r", "--wait", "0"}, "--wait must be a whole number"},
      {{"isolate", "lgwan", "--reason", "r", "--wait", "abc"}, "--wait must be a whole number"},
      {{"isolate", "lgwan", "--reason", "r", "--drill=yes"}, "option --drill takes no value"},
      {{"isolate", "lgwan", "--reason", "r", "--token", "abc"}, "there is no --token"},
      {{"isolate", "lgwan", "--reason", "r", "--reason", "s"}, "option --reason given twice"},
      {{"restore", "lgwan", "--reason", "r", "--ttl", "5m"}, "unknown option \"--ttl\""},
      {{"restore", "lgwan", "--reason", "r", "--profile", "a b"}, "invalid profile name"},
      {{"status", "extra"}, "'status' takes no argument"},
      {{"status", "--order", "../../etc"}, "invalid order id"},
      {{"approvals", "--yes"}, "unknown option \"--yes\""},
      {{"approve"}, "'approve' needs an APPROVAL_ID"},
      {{"approve", "ap-1"}, "'approve' needs --key FILE"},
      {{"approve", "ap-1", "--key", "/nonexistent.key"}, "pass --yes"},
      {{"approve", "ap-1", "--key", "/nonexistent.key", "--yes"}, "--key:"},
      {{"status", "--timeout"}, "option --timeout needs a value"},
  };
  for (const UsageCase& c : cases) {
    EXPECT_EQ(run(c.args, false), kExitUsage) << c.expected;
    EXPECT_TRUE(errSays(c.expected)) << "expected '" << c.expected << "' in: " << err_.str();
  }
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(ControllerCmdTest, LadderOptionsNameExactlyOneRungAndSendNothingWhenWrong) {
  std::string too_many = "10.20.0.1";
  for (int i = 2; i <= 257; ++i) too_many += ",fd00::" + std::to_string(i);
  const std::vector<UsageCase> cases = {
      {{"isolate", "--reason", "r"},
       "'isolate' needs a SEGMENT, --host ADDR[,ADDR...], --uplink or --island"},
      {{"restore", "--reason", "r"},
       "'restore' needs a SEGMENT, --host ADDR[,ADDR...], --uplink or --island"},
      {{"isolate", "lgwan", "--uplink", "--reason", "r"},
       "'isolate' takes exactly one of SEGMENT, --host, --uplink and --island, not \"lgwan\" and "
       "--uplink"},
      {{"isolate", "--host", "10.20.0.5", "--island", "--reason", "r"}, "not --host and --island"},
      {{"restore", "--uplink", "--island", "--reason", "r"}, "not --uplink and --island"},
      {{"isolate", "--island", "--link-down", "--reason", "r"}, "--link-down goes with --uplink"},
      {{"isolate", "lgwan", "--link-down", "--reason", "r"}, "--link-down goes with --uplink"},
      {{"restore", "--uplink", "--link-down", "--reason", "r"}, "unknown option \"--link-down\""},
      {{"isolate", "lgwan", "--gateways", "core-gw", "--reason", "r"},
       "--gateways goes with --uplink or --island only"},
      {{"restore", "--host", "10.20.0.5", "--gateways", "core-gw", "--reason", "r"},
       "--gateways goes with --uplink or --island only"},
      {{"isolate", "--host", "10.20.0.999", "--reason", "r"},
       "--host: \"10.20.0.999\" is not an address or prefix"},
      {{"isolate", "--host", "10.20.0.0/16", "--reason", "r"},
       "--host: 10.20.0.0/16 is wider than /24"},
      {{"isolate", "--host", "fd00::/64", "--reason", "r"}, "--host: fd00::/64 is wider than /120"},
      {{"isolate", "--host", "10.20.0.5,,10.20.0.6", "--reason", "r"}, "--host: empty item"},
      {{"isolate", "--host", "10.20.0.5,10.20.0.5/32", "--reason", "r"},
       "--host: 10.20.0.5 given twice"},
      {{"isolate", "--host", too_many, "--reason", "r"}, "--host: at most 256 addresses"},
      {{"isolate", "--host", "10.20.0.5", "--host", "10.20.0.6", "--reason", "r"},
       "option --host given twice"},
      {{"isolate", "--island", "--gateways", "core-gw,../x", "--reason", "r"},
       "--gateways: invalid gateway name"},
      {{"isolate", "--island", "--gateways", "core-gw,core-gw", "--reason", "r"},
       "--gateways: core-gw given twice"},
      {{"isolate", "--uplink", "--gateways", "", "--reason", "r"}, "--gateways: empty item"},
      {{"isolate", "--uplink"}, "'isolate' needs --reason TEXT"},
      {{"isolate", "--uplink=yes", "--reason", "r"}, "option --uplink takes no value"},
  };
  for (const UsageCase& c : cases) {
    EXPECT_EQ(run(c.args, false), kExitUsage) << c.expected;
    EXPECT_TRUE(errSays(c.expected)) << "expected '" << c.expected << "' in: " << err_.str();
  }
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(ControllerCmdTest, ConnectionSettingsAreRequiredAndValidated) {
  EXPECT_EQ(run({"status"}, false), kExitUsage);
  EXPECT_TRUE(errSays("no controller"));
  EXPECT_EQ(run({"status", "--controller", "http://127.0.0.1:1", "--ca", "x"}, false), kExitUsage);
  EXPECT_TRUE(errSays("must start with https://"));
  EXPECT_EQ(run({"status", "--controller", "https://127.0.0.1:99999", "--ca", "x"}, false),
            kExitUsage);
  EXPECT_TRUE(errSays("bad port"));
  EXPECT_EQ(run({"status", "--controller", "https://127.0.0.1:8443"}, false), kExitUsage);
  EXPECT_TRUE(errSays("no CA file"));
  EXPECT_EQ(run({"status", "--controller", "https://127.0.0.1:8443", "--ca", "x", "--timeout", "0"},
                false),
            kExitUsage);
  EXPECT_TRUE(errSays("--timeout must be"));
  env_vars_.erase("SHADAN_TOKEN");
  EXPECT_EQ(run({"status"}), kExitUsage);
  EXPECT_TRUE(errSays("no API token"));
  env_vars_["SHADAN_TOKEN"] = "has space";
  EXPECT_EQ(run({"status"}), kExitUsage);
  EXPECT_TRUE(errSays("SHADAN_TOKEN: the token holds spaces"));
  EXPECT_FALSE(errSays("has space"));  // never echo a token
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(ControllerCmdTest, TokenFileMustBePrivateAndWinsOverTheEnvironment) {
  { std::ofstream(path("token")) << "file-token\n"; }
  ASSERT_EQ(::chmod(path("token").c_str(), 0644), 0);
  EXPECT_EQ(run({"status", "--token-file", path("token")}), kExitUsage);
  EXPECT_TRUE(errSays("chmod 600"));
  EXPECT_FALSE(errSays("file-token"));
  ASSERT_EQ(::chmod(path("token").c_str(), 0600), 0);
  fake_.answer(200, Json::object());
  EXPECT_EQ(run({"status", "--token-file", path("token")}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.last_options.token, "file-token");
}

TEST_F(ControllerCmdTest, ConfigFileSuppliesConnectionSettings) {
  std::filesystem::create_directories(dir_ / ".config/shadan");
  { std::ofstream(path("mytoken")) << "config-token"; }
  ASSERT_EQ(::chmod(path("mytoken").c_str(), 0600), 0);
  {
    std::ofstream(path(".config/shadan/shadanctl.json"))
        << R"({"controller":"https://[::1]:9443","ca":"/etc/shadan/ca.crt","token_file":")"
        << path("mytoken") << "\"}";
  }
  env_vars_.erase("SHADAN_TOKEN");
  fake_.answer(200, Json::object());
  EXPECT_EQ(run({"status"}, false), kExitOk) << err_.str();
  EXPECT_EQ(fake_.last_options.url.host, "::1");
  EXPECT_TRUE(fake_.last_options.url.host_is_ip);
  EXPECT_EQ(fake_.last_options.url.port, 9443);
  EXPECT_EQ(fake_.last_options.ca_file, "/etc/shadan/ca.crt");
  EXPECT_EQ(fake_.last_options.token, "config-token");
  // A command-line option beats the config file.
  fake_.answer(200, Json::object());
  EXPECT_EQ(run({"status", "--controller", "https://ctl.example:8443"}, false), kExitOk);
  EXPECT_EQ(fake_.last_options.url.host, "ctl.example");
  EXPECT_FALSE(fake_.last_options.url.host_is_ip);
  // Unknown members are refused: a typo must not silently fall back to defaults.
  { std::ofstream(path("bad.json")) << R"({"controler":"https://x:1"})"; }
  EXPECT_EQ(run({"status", "--config", path("bad.json")}, false), kExitUsage);
  EXPECT_TRUE(errSays("unknown member"));
  EXPECT_EQ(run({"status", "--config", path("missing.json")}, false), kExitUsage);
  EXPECT_TRUE(errSays("cannot open config file"));
}

// ---------------------------------------------------------------------------------------------
// Command logic against the fake transport.

TEST_F(ControllerCmdTest, IsolateSendsTheContractBody) {
  fake_.answer(
      202, {{"order_id", "0b7e"}, {"state", "dispatched"}, {"gateways", {"core-gw", "inet-gw"}}});
  fake_.answer(200, {{"order_id", "0b7e"},
                     {"gateways",
                      {{"core-gw", {{"state", "pending"}, {"delivery", "pending"}}},
                       {"inet-gw", {{"state", "pending"}, {"delivery", "pending"}}}}}});
  EXPECT_EQ(run({"isolate", "lgwan", "--reason", "JPCERT notice", "--ticket", "INC-1", "--ttl",
                 "30m", "--drill", "--profile", "inbound"}),
            kExitOk)
      << err_.str();
  // The request, then one read of the order so the answer can say what is true.
  ASSERT_EQ(fake_.calls.size(), 2u);
  EXPECT_EQ(fake_.calls[0].method, "POST");
  EXPECT_EQ(fake_.calls[0].path, "/v1/isolate");
  EXPECT_EQ(*fake_.calls[0].body, (Json{{"segment", "lgwan"},
                                        {"reason", "JPCERT notice"},
                                        {"ticket", "INC-1"},
                                        {"ttl_s", 1800},
                                        {"drill", true},
                                        {"profile", "inbound"}}));
  EXPECT_EQ(fake_.calls[1].method, "GET");
  EXPECT_EQ(fake_.calls[1].path, "/v1/orders/0b7e");
  EXPECT_TRUE(
      outSays("order 0b7e accepted; not yet applied: core-gw pending (sent, no ack yet), "
              "inet-gw pending (sent, no ack yet)"))
      << out_.str();
}

// An order answer of the controller with per-gateway delivery facts.
Json deliveryAnswer(const std::vector<std::pair<std::string, Json>>& gateways,
                    const std::string& outcome = "") {
  Json out = {{"order_id", "o-1"}, {"action", "isolate"},   {"segment", "office"},
              {"profile", "full"}, {"state", "dispatched"}, {"gateways", Json::object()}};
  for (const auto& [id, entry] : gateways) out["gateways"][id] = entry;
  if (!outcome.empty()) out["outcome"] = outcome;
  return out;
}

const Json kQueuedNeverConnected = {{"state", "pending"},
                                    {"delivery", "queued"},
                                    {"connected", false},
                                    {"note", "gateway never connected"}};
const Json kQueuedOffline = {{"state", "pending"},
                             {"delivery", "queued"},
                             {"connected", false},
                             {"note", "gateway offline"}};
const Json kApplied = {{"state", "applied"}, {"delivery", "applied"}, {"connected", true}};

TEST_F(ControllerCmdTest, IsolateWithoutWaitSaysNothingIsAppliedWhenTheGatewayIsOffline) {
  // The administrator's case: the only gateway never connected. The order is accepted and
  // stored; nothing is isolated, and the answer must say so.
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}, {"gateways", {"gw"}}});
  fake_.answer(200, deliveryAnswer({{"gw", kQueuedNeverConnected}}));
  EXPECT_EQ(run({"isolate", "office", "--reason", "x"}), kExitOk) << err_.str();
  EXPECT_TRUE(
      outSays("isolate of office: order o-1 accepted; not yet applied: gw queued (gateway "
              "never connected)"))
      << out_.str();
  EXPECT_TRUE(outSays("shadanctl status --order o-1")) << out_.str();
  EXPECT_FALSE(outSays("dispatched")) << out_.str();
  EXPECT_FALSE(outSays("ISOLATED")) << out_.str();
  EXPECT_FALSE(outSays("isolated")) << out_.str();
}

TEST_F(ControllerCmdTest, IsolateWithoutWaitNamesAppliedAndWaitingGateways) {
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}});
  fake_.answer(200, deliveryAnswer({{"core-gw", kApplied}, {"edge-gw", kQueuedOffline}}));
  EXPECT_EQ(run({"isolate", "office", "--reason", "x"}), kExitOk);
  EXPECT_TRUE(
      outSays("order o-1 accepted; applied on: core-gw; not yet applied: edge-gw queued "
              "(gateway offline)"))
      << out_.str();

  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}});
  fake_.answer(200, deliveryAnswer({{"core-gw", kApplied}, {"edge-gw", kApplied}}));
  EXPECT_EQ(run({"isolate", "office", "--reason", "x"}), kExitOk);
  EXPECT_TRUE(outSays("order o-1 accepted; applied on every gateway (core-gw, edge-gw)\n"))
      << out_.str();
  EXPECT_FALSE(outSays("follow it")) << out_.str();
}

TEST_F(ControllerCmdTest, IsolateWithoutWaitThatCannotReadTheOrderBackClaimsNothing) {
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}, {"gateways", {"a", "b"}}});
  fake_.answers.push_back(makeError(ErrorCode::kUnavailable, "cannot connect to x: refused"));
  EXPECT_EQ(run({"isolate", "office", "--reason", "x"}), kExitOk);  // it was accepted
  EXPECT_TRUE(
      outSays("order o-1 accepted; not confirmed by any gateway yet (targets: a, b); "
              "could not read it back: cannot connect to x: refused"))
      << out_.str();
  EXPECT_FALSE(outSays("dispatched")) << out_.str();
}

TEST_F(ControllerCmdTest, IsolateWaitNamesTheOfflineGatewayWhenItGivesUp) {
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}});
  for (int i = 0; i < 20; ++i) {
    fake_.answer(200, deliveryAnswer({{"core-gw", kApplied}, {"edge-gw", kQueuedOffline}}));
  }
  EXPECT_EQ(run({"isolate", "office", "--reason", "x", "--wait", "2"}), kExitFailure);
  EXPECT_TRUE(
      errSays("gave up waiting after 2 s: 1 gateway(s) still pending: edge-gw queued "
              "(gateway offline)"))
      << err_.str();
  EXPECT_TRUE(outSays("edge-gw  queued")) << out_.str();
  EXPECT_TRUE(outSays("gateway offline")) << out_.str();
  EXPECT_FALSE(outSays("dispatched")) << out_.str();

  // Every gateway offline: the same, both named.
  fake_.answers.clear();
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}});
  for (int i = 0; i < 20; ++i) {
    fake_.answer(200,
                 deliveryAnswer({{"core-gw", kQueuedNeverConnected}, {"edge-gw", kQueuedOffline}}));
  }
  EXPECT_EQ(run({"isolate", "office", "--reason", "x", "--wait", "1"}), kExitFailure);
  EXPECT_TRUE(
      errSays("2 gateway(s) still pending: core-gw queued (gateway never connected), "
              "edge-gw queued (gateway offline)"))
      << err_.str();
}

TEST_F(ControllerCmdTest, IsolateWaitNamesTheGatewayThatRejected) {
  fake_.answer(202, {{"order_id", "o-1"}, {"state", "dispatched"}});
  fake_.answer(200, deliveryAnswer({{"core-gw", kApplied},
                                    {"edge-gw",
                                     {{"state", "rejected"},
                                      {"delivery", "rejected"},
                                      {"ack", {{"reason", "old_segment_gen"}}}}}}));
  EXPECT_EQ(run({"isolate", "office", "--reason", "x", "--wait", "5"}), kExitFailure);
  EXPECT_TRUE(errSays("did not apply on every gateway: edge-gw rejected (old_segment_gen)"))
      << err_.str();
}

TEST_F(ControllerCmdTest, StatusShowsWhatTheAcksSayNotTheRequest) {
  // office was ordered isolated ("isolated": true is the request), but neither gateway has it.
  fake_.answer(
      200, {{"segments",
             {{"office",
               {{"isolated", true},
                {"profile", "full"},
                {"gen", 1},
                {"protected", false},
                {"state", "queued"},
                {"order_id", "o-1"},
                {"action", "isolate"},
                {"applied", 0},
                {"gateways", 2},
                {"by_gateway", {{"core-gw", "queued"}, {"edge-gw", "queued"}}}}},
              {"lab",
               {{"isolated", true},
                {"profile", "full"},
                {"gen", 4},
                {"protected", false},
                {"state", "partial"},
                {"order_id", "o-2"},
                {"action", "isolate"},
                {"applied", 1},
                {"gateways", 2},
                {"by_gateway", {{"core-gw", "applied"}, {"edge-gw", "queued"}}}}}}},
            {"gateways",
             {{"core-gw",
               {{"connected", true},
                {"enrollment", "approved"},
                {"unacked", 0},
                {"state", {{"isolated", {"lab:full"}}}}}},
              {"edge-gw", {{"connected", false}, {"enrollment", "approved"}}}}},
            {"orders",
             {deliveryAnswer({{"core-gw", kApplied}, {"edge-gw", kQueuedOffline}}, "partial")}}});
  EXPECT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_FALSE(outSays("ISOLATED")) << out_.str();
  EXPECT_FALSE(outSays("dispatched")) << out_.str();
  EXPECT_TRUE(outSays("office   queued")) << out_.str();
  EXPECT_TRUE(outSays("lab      partial")) << out_.str();
  EXPECT_TRUE(outSays("isolate  1/2      edge-gw queued (offline)")) << out_.str();
  EXPECT_TRUE(outSays("isolate  0/2      core-gw queued, edge-gw queued (offline)")) << out_.str();
  EXPECT_TRUE(outSays("lab:full")) << out_.str();
  EXPECT_TRUE(outSays("o-1  isolate office  partial  core-gw=applied  edge-gw=queued"))
      << out_.str();

  fake_.answer(200,
               deliveryAnswer({{"core-gw", kApplied}, {"edge-gw", kQueuedOffline}}, "partial"));
  EXPECT_EQ(run({"status", "--order", "o-1"}), kExitOk);
  EXPECT_TRUE(outSays("outcome partial")) << out_.str();
  EXPECT_FALSE(outSays("dispatched")) << out_.str();
  EXPECT_TRUE(outSays("edge-gw  queued")) << out_.str();
  EXPECT_TRUE(outSays("applied on: core-gw; not yet applied: edge-gw queued (gateway offline)"))
      << out_.str();
}

TEST_F(ControllerCmdTest, StatusFromAControllerWithoutFactsSaysUnknown) {
  fake_.answer(200, {{"segments", {{"office", {{"isolated", true}, {"gen", 1}}}}}});
  EXPECT_EQ(run({"status"}), kExitOk);
  EXPECT_FALSE(outSays("ISOLATED")) << out_.str();
  EXPECT_TRUE(outSays("office   unknown")) << out_.str();
  EXPECT_TRUE(outSays("isolate requested, no facts reported")) << out_.str();
}

TEST_F(ControllerCmdTest, AwaitingApprovalExitsFour) {
  fake_.answer(202, {{"order_id", "o-1"},
                     {"state", "awaiting_approval"},
                     {"approval_id", "ap-7"},
                     {"needed", 2},
                     {"have", 0}});
  EXPECT_EQ(run({"restore", "lgwan", "--reason", "all clear"}), kExitAwaitingApproval);
  EXPECT_EQ(fake_.calls[0].path, "/v1/restore");
  EXPECT_EQ(*fake_.calls[0].body, (Json{{"segment", "lgwan"}, {"reason", "all clear"}}));
  EXPECT_TRUE(outSays("approval ap-7 (0 of 2 operator signatures)"));
  EXPECT_TRUE(outSays("shadanctl approve ap-7"));
}

TEST_F(ControllerCmdTest, RefusalsAndUnreachableHaveDistinctExitCodes) {
  fake_.answer(401, {{"error", {{"code", "unauthorized"}, {"message", "bad token"}}}});
  EXPECT_EQ(run({"status"}), kExitFailure);
  EXPECT_TRUE(errSays("did not accept the token")) << err_.str();
  fake_.answer(403, {{"error", {{"code", "forbidden"}, {"message", "detectors may not"}}}});
  EXPECT_EQ(run({"isolate", "core", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("not allowed for this token"));
  EXPECT_TRUE(errSays("detectors may not"));
  fake_.answer(409, {{"error", {{"code", "conflict"}, {"message", "already isolated"}}}});
  EXPECT_EQ(run({"isolate", "core", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("HTTP 409 \"conflict\": \"already isolated\""));
  fake_.answers.push_back(makeError(ErrorCode::kUnavailable, "cannot connect to x: refused"));
  EXPECT_EQ(run({"status"}), kExitUnreachable);
  fake_.answers.push_back(makeError(ErrorCode::kParse, "controller answer: byte 3: junk"));
  EXPECT_EQ(run({"status"}), kExitFailure);
}

Json orderAnswer(const std::string& core_state, const std::string& inet_state) {
  Json gateways = Json::object();
  gateways["core-gw"] = {{"state", core_state}};
  if (core_state == "applied") {
    gateways["core-gw"]["ack"] = {{"applied_at", "2026-11-26T10:01:02.000Z"},
                                  {"ruleset_sha256", std::string(64, 'a')}};
  }
  gateways["inet-gw"] = {{"state", inet_state}};
  return {{"order_id", "o-9"}, {"gateways", gateways}};
}

TEST_F(ControllerCmdTest, IsolateWaitPollsUntilEveryGatewayAnswered) {
  fake_.answer(202, {{"order_id", "o-9"}, {"state", "dispatched"}});
  fake_.answer(200, orderAnswer("pending", "pending"));
  fake_.answer(200, orderAnswer("applied", "pending"));
  fake_.answer(200, orderAnswer("applied", "already_applied"));
  EXPECT_EQ(run({"isolate", "lgwan", "--reason", "r", "--wait", "30"}), kExitOk) << err_.str();
  ASSERT_EQ(fake_.calls.size(), 4u);
  EXPECT_EQ(fake_.calls[1].method, "GET");
  EXPECT_EQ(fake_.calls[1].path, "/v1/orders/o-9");
  EXPECT_EQ(sleeps_.size(), 2u);
  EXPECT_TRUE(outSays("GATEWAY")) << out_.str();
  EXPECT_TRUE(outSays("core-gw  applied")) << out_.str();
  EXPECT_TRUE(outSays("2026-11-26T10:01:02.000Z  -       aaaaaaaaaaaa ")) << out_.str();
  // Without the controller's sent/ack times there is no latency to report.
  EXPECT_FALSE(outSays("dispatch -> last ack")) << out_.str();
  EXPECT_TRUE(outSays("inet-gw  already_applied")) << out_.str();
}

TEST_F(ControllerCmdTest, IsolateWaitGivesUpAfterTheDeadline) {
  fake_.answer(202, {{"order_id", "o-9"}, {"state", "dispatched"}});
  for (int i = 0; i < 20; ++i) fake_.answer(200, orderAnswer("applied", "pending"));
  EXPECT_EQ(run({"isolate", "lgwan", "--reason", "r", "--wait", "2"}), kExitFailure);
  EXPECT_TRUE(errSays("gave up waiting after 2 s: 1 gateway(s) still pending")) << err_.str();
  // 2 s at 500 ms per poll: 5 polls, 4 sleeps, never past the deadline.
  EXPECT_EQ(fake_.calls.size(), 6u);
  EXPECT_EQ(fake_time_, std::chrono::seconds(2));
}

TEST_F(ControllerCmdTest, IsolateWaitReportsAFailedGateway) {
  fake_.answer(202, {{"order_id", "o-9"}, {"state", "dispatched"}});
  fake_.answer(200, orderAnswer("applied", "rejected"));
  EXPECT_EQ(run({"isolate", "lgwan", "--reason", "r", "--wait", "5", "--json"}), kExitFailure);
  auto printed = Json::parse(out_.str());
  EXPECT_EQ(printed["order_id"], "o-9");
  EXPECT_EQ(printed["complete"], true);
  EXPECT_EQ(printed["order"]["gateways"]["inet-gw"]["state"], "rejected");
  EXPECT_TRUE(errSays("did not apply on every gateway"));
}

TEST_F(ControllerCmdTest, StatusPrintsSegmentsGatewaysAndOrders) {
  fake_.answer(
      200,
      {{"segments",
        {{"lgwan", {{"isolated", true}, {"profile", "full"}, {"gen", 57}, {"state", "isolated"}}},
         {"dmz", {{"isolated", false}, {"profile", nullptr}, {"gen", 3}, {"state", "open"}}}}},
       {"gateways",
        {{"core-gw",
          {{"connected", true}, {"connected_to", "ctl-b"}, {"last_seen", "2026-11-26T10:00:00Z"}}},
         {"inet-gw", {{"connected", false}, {"connected_to", nullptr}, {"last_seen", nullptr}}}}},
       {"orders",
        {{{"order_id", "o-9"},
          {"action", "isolate"},
          {"segment", "lgwan"},
          {"gateways", {{"core-gw", {{"state", "applied"}}}}}}}}});
  EXPECT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].path, "/v1/status");
  EXPECT_TRUE(outSays("lgwan    ISOLATED  full     57")) << out_.str();
  EXPECT_TRUE(outSays("inet-gw  NO ")) << out_.str();
  EXPECT_TRUE(outSays("core-gw  yes (on ctl-b)  2026-11-26T10:00:00Z")) << out_.str();
  EXPECT_TRUE(outSays("o-9  isolate lgwan  -  core-gw=applied")) << out_.str();

  fake_.answer(200, orderAnswer("failed", "pending"));
  EXPECT_EQ(run({"status", "--order", "o-9", "--json"}), kExitOk);
  EXPECT_EQ(fake_.calls[1].path, "/v1/orders/o-9");
  EXPECT_EQ(Json::parse(out_.str()), orderAnswer("failed", "pending"));
}

TEST_F(ControllerCmdTest, LadderOptionsBecomeTheRequestBody) {
  struct BodyCase {
    std::vector<std::string> args;
    const char* path;
    Json body;
  };
  const std::vector<BodyCase> cases = {
      {{"isolate", "--host", "10.20.0.5,10.20.0.16/28,FD00::7", "--reason", "EDR"},
       "/v1/isolate",
       {{"scope", "host"},
        {"hosts", {"10.20.0.5", "10.20.0.16/28", "fd00::7"}},
        {"reason", "EDR"}}},
      {{"isolate", "--uplink", "--link-down", "--gateways", "core-gw,inet-gw", "--ttl", "1h",
        "--reason", "exfiltration"},
       "/v1/isolate",
       {{"scope", "uplink"},
        {"gateways", {"core-gw", "inet-gw"}},
        {"link_down", true},
        {"ttl_s", 3600},
        {"reason", "exfiltration"}}},
      {{"isolate", "--island", "--reason", "worm"},
       "/v1/isolate",
       {{"scope", "island"}, {"reason", "worm"}}},
      {{"restore", "--host", "10.20.0.5", "--reason", "clean"},
       "/v1/restore",
       {{"scope", "host"}, {"hosts", {"10.20.0.5"}}, {"reason", "clean"}}},
      {{"restore", "--island", "--gateways", "lab-gw", "--reason", "clean"},
       "/v1/restore",
       {{"scope", "island"}, {"gateways", {"lab-gw"}}, {"reason", "clean"}}},
  };
  for (const BodyCase& c : cases) {
    fake_.calls.clear();
    fake_.answer(202, {{"order_id", "o-1"},
                       {"state", "awaiting_approval"},
                       {"approval_id", "o-1"},
                       {"needed", 2},
                       {"have", 0}});
    EXPECT_EQ(run(c.args), kExitAwaitingApproval) << c.body.dump() << err_.str();
    ASSERT_EQ(fake_.calls.size(), 1u);
    EXPECT_EQ(fake_.calls[0].path, c.path);
    EXPECT_EQ(*fake_.calls[0].body, c.body);
  }
}

TEST_F(ControllerCmdTest, LadderAnswersNameTheRungAsTheControllerResolvedIt) {
  fake_.answer(202, {{"order_id", "o-1"},
                     {"state", "dispatched"},
                     {"scope", "host"},
                     {"segment", "lgwan"},
                     {"hosts", {"10.20.0.5"}},
                     {"gateways", {"core-gw"}}});
  fake_.answer(200, deliveryAnswer({{"core-gw", kApplied}}, "applied"));
  EXPECT_EQ(run({"isolate", "--host", "10.20.0.5", "--reason", "EDR"}), kExitOk) << err_.str();
  EXPECT_TRUE(
      outSays("isolate of host 10.20.0.5 in lgwan: order o-1 accepted; applied on every "
              "gateway (core-gw)"))
      << out_.str();

  fake_.answer(202, {{"order_id", "o-2"},
                     {"state", "awaiting_approval"},
                     {"approval_id", "o-2"},
                     {"needed", 2},
                     {"have", 0},
                     {"scope", "uplink"},
                     {"gateways", {"core-gw", "edge-gw"}}});
  EXPECT_EQ(run({"isolate", "--uplink", "--link-down", "--reason", "exfil"}),
            kExitAwaitingApproval);
  EXPECT_TRUE(outSays("isolate of uplink (links down) is awaiting approval: order o-2"))
      << out_.str();

  fake_.answer(400, {{"error", {{"code", "bad_request"}, {"message", "hosts: spans segment"}}}});
  EXPECT_EQ(run({"isolate", "--host", "10.20.0.0/24", "--reason", "r"}), kExitFailure);
  EXPECT_TRUE(errSays("host 10.20.0.0/24")) << err_.str();
  EXPECT_TRUE(errSays("hosts: spans segment")) << err_.str();
}

TEST_F(ControllerCmdTest, StatusShowsTheLadderOfEachGateway) {
  const Json status = {
      {"segments",
       {{"lgwan", {{"isolated", false}, {"gen", 0}, {"protected", false}, {"state", "open"}}}}},
      {"gateways",
       {{"core-gw",
         {{"connected", true},
          {"enrollment", "approved"},
          {"unacked", 1},
          {"state", {{"isolated", {"lgwan/10.20.0.5/32:full", "@uplink:full"}}}},
          {"ladder",
           {{"segments", Json::object()},
            {"hosts", {{"lgwan", {"10.20.0.5", "10.20.0.6", "10.20.0.7", "10.20.0.8"}}}},
            {"hosts_unlisted", Json::array()},
            {"uplink", {{"profiles", {"full"}}, {"link_down", true}}},
            {"island", nullptr},
            {"acked_at", "2026-11-26T10:00:00.000Z"},
            {"pending", {{{"order_id", "o-3"}, {"action", "isolate"}, {"scope", "island"}}}}}}}},
        {"edge-gw",
         {{"connected", false},
          {"ladder",
           {{"segments", {{"office", {"full"}}}},
            {"hosts", {{"kiosk", Json::array()}}},
            {"hosts_unlisted", {"kiosk"}},
            {"uplink", nullptr},
            {"island", {{"profiles", {"full"}}}},
            {"acked_at", nullptr},
            {"pending", Json::array()}}}}}}},
      {"orders",
       {{{"order_id", "o-2"},
         {"action", "isolate"},
         {"scope", "uplink"},
         {"segment", nullptr},
         {"link_down", true},
         {"outcome", "applied"},
         {"gateways", {{"core-gw", {{"state", "applied"}, {"delivery", "applied"}}}}}},
        {{"order_id", "o-1"},
         {"action", "isolate"},
         {"scope", "host"},
         {"segment", "lgwan"},
         {"hosts", {"10.20.0.5"}},
         {"outcome", "applied"},
         {"gateways", {{"core-gw", {{"state", "applied"}, {"delivery", "applied"}}}}}}}}};
  fake_.answer(200, status);
  EXPECT_EQ(run({"status"}), kExitOk) << err_.str();
  EXPECT_TRUE(outSays("GATEWAY  SEGMENTS     HOSTS")) << out_.str();
  EXPECT_TRUE(
      outSays("core-gw  -            lgwan 10.20.0.5,10.20.0.6,10.20.0.7 (+1 more)  "
              "CUT, LINKS DOWN  -       isolate island"))
      << out_.str();
  EXPECT_TRUE(outSays("edge-gw  office:full  kiosk (more than the ack lists)")) << out_.str();
  EXPECT_TRUE(outSays("ISLAND")) << out_.str();
  EXPECT_TRUE(outSays("o-2  isolate uplink (links down)  applied")) << out_.str();
  EXPECT_TRUE(outSays("o-1  isolate host 10.20.0.5 in lgwan  applied")) << out_.str();

  fake_.answer(200, status);
  EXPECT_EQ(run({"status", "--json"}), kExitOk);
  EXPECT_EQ(Json::parse(out_.str())["gateways"]["core-gw"]["ladder"],
            status["gateways"]["core-gw"]["ladder"]);

  fake_.answer(200, status["orders"][1]);
  EXPECT_EQ(run({"status", "--order", "o-1"}), kExitOk);
  EXPECT_TRUE(outSays("order o-1  action isolate  segment lgwan  scope host 10.20.0.5 in lgwan"))
      << out_.str();
}

TEST_F(ControllerCmdTest, OrderTableReportsDispatchToAckTimes) {
  Json answer = orderAnswer("applied", "applied");
  answer["gateways"]["core-gw"]["sent_at"] = "2026-11-26T10:01:02.000Z";
  answer["gateways"]["core-gw"]["updated_at"] = "2026-11-26T10:01:02.031Z";
  answer["gateways"]["inet-gw"]["sent_at"] = "2026-11-26T10:01:02.002Z";
  answer["gateways"]["inet-gw"]["updated_at"] = "2026-11-26T10:01:02.045Z";
  fake_.answer(200, answer);
  EXPECT_EQ(run({"status", "--order", "o-9"}), kExitOk) << err_.str();
  EXPECT_TRUE(outSays("ACK_MS")) << out_.str();
  EXPECT_TRUE(outSays("  31  ")) << out_.str();
  EXPECT_TRUE(outSays("  43  ")) << out_.str();
  EXPECT_TRUE(outSays("dispatch -> last ack: 45 ms (2 gateways, controller clock)")) << out_.str();

  // One gateway still pending: no total yet.
  answer["gateways"]["inet-gw"] = {{"state", "pending"}, {"sent_at", "2026-11-26T10:01:02.002Z"}};
  fake_.answer(200, answer);
  EXPECT_EQ(run({"status", "--order", "o-9"}), kExitOk);
  EXPECT_FALSE(outSays("dispatch -> last ack")) << out_.str();
}

class ApproveTest : public ControllerCmdTest {
 protected:
  void SetUp() override {
    ControllerCmdTest::SetUp();
    ASSERT_TRUE(writePrivateKeyFile(path("op.key"), key_).ok());
    authz_.command_id = "3f0c8a52-7a1e-4c7b-9f3e-5d0b1c2a3e4f";
    authz_.action = OrderAction::kRestore;
    authz_.segment = "lgwan";
    authz_.profile = "full";
    authz_.segment_gen = 58;
    authz_.targets = {"core-gw", "inet-gw"};
    authz_.requested_by = "op:sato";
    authz_.reason = "all clear per INC-4711";
    authz_.issued_at_ms = clock_.unixMillis() - 60'000;
    authz_.expires_at_ms = clock_.unixMillis() + 30 * 60'000;
    payload_ = serializeAuthz(authz_);
  }
  Json approvalsAnswer(std::string_view payload_type = kAuthzPayloadType) const {
    return {
        {"approvals",
         {{{"approval_id", "ap-7"},
           {"payloadType", payload_type},
           {"payload", base64Encode(std::span<const uint8_t>(
                           reinterpret_cast<const uint8_t*>(payload_.data()), payload_.size()))},
           {"needed", 2},
           {"have", 0}}}}};
  }

  Ed25519KeyPair key_ = Ed25519KeyPair::generate();
  Authz authz_;
  std::string payload_;
};

TEST_F(ApproveTest, SignsTheExactPaeBytesAfterShowingTheOrder) {
  fake_.answer(200, approvalsAnswer());
  fake_.answer(200, {{"have", 1}, {"needed", 2}, {"state", "awaiting_approval"}});
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitOk) << err_.str();
  ASSERT_EQ(fake_.calls.size(), 2u);
  EXPECT_EQ(fake_.calls[0].path, "/v1/approvals");
  EXPECT_EQ(fake_.calls[1].method, "POST");
  EXPECT_EQ(fake_.calls[1].path, "/v1/approvals/ap-7/signatures");
  const Json& body = *fake_.calls[1].body;
  EXPECT_EQ(body["keyid"], key_.keyId());
  auto sig = base64Decode(body["sig"].get<std::string>());
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(ed25519Verify(key_.publicKey(), dssePae(kAuthzPayloadType, payload_), *sig));
  for (const char* shown : {"restore", "lgwan", "core-gw, inet-gw", "op:sato",
                            "all clear per INC-4711", "expires_at"}) {
    EXPECT_TRUE(outSays(shown)) << shown << " in " << out_.str();
  }
  EXPECT_TRUE(outSays("signature accepted (1 of 2)"));
}

TEST_F(ApproveTest, ShowsTheRungOfAnUplinkOrHostOrderBeforeSigning) {
  authz_.action = OrderAction::kIsolate;
  authz_.scope = IsolationScope::kUplink;
  authz_.segment = "";
  authz_.link_down = true;
  payload_ = serializeAuthz(authz_);
  fake_.answer(200, approvalsAnswer());
  env_.stdin_is_tty = true;
  in_.str("n\n");
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key")}), kExitFailure);
  EXPECT_TRUE(outSays("  cuts          uplink (links down) (profile full, gen 58)")) << out_.str();
  EXPECT_TRUE(errSays("Sign this isolate of uplink (links down)? [y/N]")) << err_.str();

  authz_.scope = IsolationScope::kHost;
  authz_.segment = "lgwan";
  authz_.link_down = false;
  authz_.hosts = {IpPrefix::parse("10.20.0.5").value(), IpPrefix::parse("10.20.0.6").value()};
  payload_ = serializeAuthz(authz_);
  fake_.answer(200, approvalsAnswer());
  EXPECT_EQ(run({"approvals"}), kExitOk);
  EXPECT_TRUE(outSays("isolate  hosts 10.20.0.5, 10.20.0.6 in lgwan:full")) << out_.str();
}

TEST_F(ApproveTest, PromptsOnATerminalAndSignsNothingWithoutYes) {
  env_.stdin_is_tty = true;
  in_.str("n\n");
  fake_.answer(200, approvalsAnswer());
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key")}), kExitFailure);
  EXPECT_TRUE(errSays("Sign this restore of lgwan? [y/N]"));
  EXPECT_TRUE(errSays("not signed"));
  EXPECT_EQ(fake_.calls.size(), 1u);

  in_.clear();
  in_.str("y\n");
  fake_.answer(200, approvalsAnswer());
  fake_.answer(200, {{"have", 2}, {"needed", 2}, {"state", "dispatched"}, {"order_id", "o-1"}});
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key")}), kExitOk) << err_.str();
  EXPECT_TRUE(outSays("threshold met, order o-1 sent to the gateways (not applied until they ack"));
}

TEST_F(ApproveTest, RefusesExpiredUnknownOrForeignTypedApprovals) {
  fake_.answer(200, approvalsAnswer());
  EXPECT_EQ(run({"approve", "ap-8", "--key", path("op.key"), "--yes"}), kExitFailure);
  EXPECT_TRUE(errSays("no pending approval ap-8"));

  fake_.answer(200, approvalsAnswer(kDispatchPayloadType));
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitFailure);
  EXPECT_TRUE(errSays("is not an authz; refusing"));

  clock_.setUnixMillis(authz_.expires_at_ms);
  fake_.answer(200, approvalsAnswer());
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitFailure);
  EXPECT_TRUE(errSays("expired"));
  for (const FakeCall& call : fake_.calls) EXPECT_EQ(call.method, "GET");
}

TEST_F(ApproveTest, ReportsTheControllersApprovalState) {
  // The answer shape of docs/controller.md.
  fake_.answer(200, approvalsAnswer());
  fake_.answer(200, {{"approval_id", "ap-7"},
                     {"order_id", "ap-7"},
                     {"state", "pending"},
                     {"needed", 2},
                     {"have", 1},
                     {"approvers", {"op:ito"}}});
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitOk);
  EXPECT_TRUE(
      outSays("signature accepted (1 of 2) by op:ito; still pending (the requester "
              "op:sato must be among the signers)"))
      << out_.str();
  fake_.answer(200, approvalsAnswer());
  fake_.answer(200, {{"approval_id", "ap-7"},
                     {"order_id", "ap-7"},
                     {"state", "complete"},
                     {"needed", 2},
                     {"have", 2},
                     {"approvers", {"op:ito", "op:sato"}}});
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitOk);
  EXPECT_TRUE(
      outSays("(2 of 2) by op:ito, op:sato; threshold met, order ap-7 sent to the gateways"))
      << out_.str();
  // A refused signature (e.g. not an operator key) is exit 1 with the controller's reason.
  fake_.answer(200, approvalsAnswer());
  fake_.answer(403, {{"error", {{"code", "forbidden"}, {"message", "key is not an operator"}}}});
  EXPECT_EQ(run({"approve", "ap-7", "--key", path("op.key"), "--yes"}), kExitFailure);
  EXPECT_TRUE(errSays("key is not an operator"));
}

TEST_F(ControllerCmdTest, AgentsListsAndApproves) {
  fake_.answer(200, {{"agents",
                      {{{"agent_id", "core-gw"},
                        {"keyid", std::string(64, 'b')},
                        {"status", "pending"},
                        {"connected", true},
                        {"connected_to", "ctl-a"},
                        {"last_seen", "2026-11-26T10:00:00Z"}}}}});
  EXPECT_EQ(run({"agents"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.calls[0].path, "/v1/agents");
  EXPECT_TRUE(outSays("core-gw  pending  bbbbbbbbbbbbbbbb  true (on ctl-a)")) << out_.str();
  EXPECT_EQ(run({"agents", "approve", "core-gw"}), kExitUsage);
  EXPECT_TRUE(errSays("needs --reason"));
  EXPECT_EQ(run({"agents", "bless", "core-gw"}), kExitUsage);
  fake_.answer(200, {{"agent_id", "core-gw"}, {"status", "approved"}});
  EXPECT_EQ(run({"agents", "approve", "core-gw", "--reason", "new gateway, ticket INC-2"}),
            kExitOk);
  ASSERT_EQ(fake_.calls.size(), 2u);
  EXPECT_EQ(fake_.calls[1].method, "POST");
  EXPECT_EQ(fake_.calls[1].path, "/v1/agents/core-gw/approve");
  EXPECT_EQ(*fake_.calls[1].body, (Json{{"reason", "new gateway, ticket INC-2"}}));
  EXPECT_TRUE(outSays("agent core-gw approved"));
}

TEST_F(ApproveTest, ApprovalsListsPendingOrders) {
  fake_.answer(200, approvalsAnswer());
  EXPECT_EQ(run({"approvals"}), kExitOk);
  EXPECT_TRUE(outSays("ap-7")) << out_.str();
  EXPECT_TRUE(outSays("restore  lgwan:full  op:sato       0/2")) << out_.str();
  fake_.answer(200, {{"approvals", Json::array()}});
  EXPECT_EQ(run({"approvals"}), kExitOk);
  EXPECT_TRUE(outSays("no orders awaiting approval"));
}

// ---------------------------------------------------------------------------------------------
// The real client against a real TLS server.

TEST(ControllerUrlTest, ParsesHostsAndPorts) {
  auto v4 = parseControllerUrl("https://10.0.0.1:8443/");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "10.0.0.1");
  EXPECT_EQ(v4->port, 8443);
  EXPECT_TRUE(v4->host_is_ip);
  auto name = parseControllerUrl("https://ctl.example");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->port, 443);
  EXPECT_FALSE(name->host_is_ip);
  for (const char* bad : {"https://", "https://h:0", "https://h:1/v1", "https://u@h:1",
                          "https://[::1", "https://h:", "ftp://h:1", "https://a b:1"}) {
    EXPECT_FALSE(parseControllerUrl(bad).ok()) << bad;
  }
}

class HttpsClientTest : public ControllerCmdTest {
 protected:
  void SetUp() override {
    ControllerCmdTest::SetUp();
    makeCertificates();
    use_real_client_ = true;
  }
  void start(int max_tls_version, TestHttpsServer::Handler handler) {
    server_ = std::make_unique<TestHttpsServer>(path("server.crt"), path("server.key"),
                                                max_tls_version, std::move(handler));
    port_ = server_->port();
  }
  std::unique_ptr<TestHttpsServer> server_;
};

TEST_F(HttpsClientTest, SendsTheBearerTokenAndParsesTheAnswer) {
  start(TLS1_3_VERSION, [](const SeenRequest&) {
    return CannedAnswer{202, R"({"order_id":"o-1","state":"dispatched","gateways":["gw1"]})"};
  });
  EXPECT_EQ(run({"isolate", "lgwan", "--reason", "test", "--json"}), kExitOk) << err_.str();
  const auto seen = server_->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/isolate");
  EXPECT_EQ(seen[0].authorization, std::string("Bearer ") + kToken);
  EXPECT_EQ(Json::parse(seen[0].body), (Json{{"segment", "lgwan"}, {"reason", "test"}}));
  EXPECT_EQ(Json::parse(out_.str())["order_id"], "o-1");
  EXPECT_EQ(err_.str().find(kToken), std::string::npos);
}

TEST_F(HttpsClientTest, UnauthorizedIsAClearFailure) {
  start(TLS1_3_VERSION, [](const SeenRequest&) {
    return CannedAnswer{401, R"({"error":{"code":"unauthorized","message":"unknown token"}})"};
  });
  EXPECT_EQ(run({"status"}), kExitFailure);
  EXPECT_TRUE(
      errSays("the controller did not accept the token (HTTP 401 \"unauthorized\": "
              "\"unknown token\")"))
      << err_.str();
  EXPECT_EQ(err_.str().find(kToken), std::string::npos);
}

TEST_F(HttpsClientTest, RefusesATls12Server) {
  start(TLS1_2_VERSION, [](const SeenRequest&) { return CannedAnswer{200, "{}"}; });
  EXPECT_EQ(run({"status"}), kExitUnreachable);
  EXPECT_TRUE(errSays("TLS handshake failed")) << err_.str();
  EXPECT_TRUE(server_->seen().empty());
}

TEST_F(HttpsClientTest, RefusesAServerFromAnotherCa) {
  start(TLS1_3_VERSION, [](const SeenRequest&) { return CannedAnswer{200, "{}"}; });
  ca_file_ = path("other-ca.crt");
  EXPECT_EQ(run({"status"}), kExitUnreachable);
  EXPECT_TRUE(errSays("certificate verify failed")) << err_.str();
  EXPECT_TRUE(server_->seen().empty());  // the token never left
}

TEST_F(HttpsClientTest, RefusesACertificateForAnotherName) {
  start(TLS1_3_VERSION, [](const SeenRequest&) { return CannedAnswer{200, "{}"}; });
  // The right CA, but the certificate names 127.0.0.1 and controller.test, not localhost.
  EXPECT_EQ(run({"status", "--controller", "https://localhost:" + std::to_string(port_), "--ca",
                 ca_file_},
                false),
            kExitUnreachable);
  EXPECT_TRUE(errSays("certificate verify failed")) << err_.str();
  EXPECT_TRUE(server_->seen().empty());
}

TEST_F(HttpsClientTest, ClosedPortIsUnreachableAndABadCaFileIsAUsageError) {
  // Bind a port, then close it: nothing listens there any more.
  {
    asio::io_context io;
    Tcp::acceptor acceptor(io, Tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor.local_endpoint().port();
  }
  EXPECT_EQ(run({"status"}), kExitUnreachable);
  EXPECT_TRUE(errSays("cannot connect to 127.0.0.1:" + std::to_string(port_))) << err_.str();
  ca_file_ = path("server.key");  // not a certificate
  EXPECT_EQ(run({"status"}), kExitUsage);
  EXPECT_TRUE(errSays("cannot load CA file")) << err_.str();
}

TEST_F(HttpsClientTest, TimesOutOnASilentServer) {
  start(TLS1_3_VERSION, [](const SeenRequest&) { return CannedAnswer{200, "", true}; });
  const auto start_time = std::chrono::steady_clock::now();
  // run() appends --timeout 2 itself; pass everything by hand for a 1 s timeout.
  out_.str("");
  err_.str("");
  const int code =
      runControllerCommand({"status", "--controller", "https://127.0.0.1:" + std::to_string(port_),
                            "--ca", ca_file_, "--timeout", "1"},
                           out_, err_, env_);
  const auto elapsed = std::chrono::steady_clock::now() - start_time;
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_TRUE(errSays("timed out after 1000 ms")) << err_.str();
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST_F(HttpsClientTest, CapsTheAnswerSize) {
  start(TLS1_3_VERSION, [](const SeenRequest&) {
    return CannedAnswer{200, "{\"pad\":\"" + std::string(64 * 1024, 'x') + "\"}"};
  });
  ApiClientOptions options;
  options.url = *parseControllerUrl("https://127.0.0.1:" + std::to_string(port_));
  options.ca_file = ca_file_;
  options.token = kToken;
  options.max_response_bytes = 16 * 1024;
  ApiClient client(options);
  auto answer = client.request("GET", "/v1/status", std::nullopt);
  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.error().message.find("over the 16384-byte cap"), std::string::npos)
      << answer.error().message;
  // And refuses to send an oversized body.
  auto too_big = client.request("POST", "/v1/isolate",
                                Json{{"reason", std::string(kApiMaxRequestBytes, 'r')}});
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("cap"), std::string::npos);
}

}  // namespace
}  // namespace shadan
