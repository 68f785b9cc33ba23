#include "controller/etcd_client.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "common/decimal.h"
#include "common/ed25519.h"
#include "common/tls.h"

namespace shadan::controller {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

// A whole-prefix range of a large fleet's dispatches is tens of MB; more is not an answer.
constexpr uint64_t kMaxAnswerBytes = 256ull * 1024 * 1024;

std::string toBase64(std::string_view bytes) {
  return base64Encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::string> fromBase64(const json& field, const char* what) {
  if (field.is_null()) return std::string();
  if (!field.is_string()) return makeError(ErrorCode::kParse, std::string(what) + " is not text");
  auto bytes = base64Decode(field.get_ref<const std::string&>());
  if (!bytes.ok()) return makeError(ErrorCode::kParse, std::string(what) + " is not base64");
  return std::string(bytes->begin(), bytes->end());
}

// The gateway writes int64 as decimal strings and leaves out zeros.
Result<int64_t> int64Field(const json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end() || found->is_null()) return int64_t{0};
  if (found->is_number_integer()) return found->get<int64_t>();
  if (!found->is_string())
    return makeError(ErrorCode::kParse, std::string(name) + " is not a number");
  const auto value = parseWholeDecimal<int64_t>(found->get_ref<const std::string&>());
  if (!value) return makeError(ErrorCode::kParse, std::string(name) + " is not a number");
  return *value;
}

bool boolField(const json& object, const char* name) {
  auto found = object.find(name);
  return found != object.end() && found->is_boolean() && found->get<bool>();
}

class BeastEtcdClient : public EtcdClient {
 public:
  BeastEtcdClient(EtcdClientOptions options, TlsContextPtr tls)
      : options_(std::move(options)), tls_(std::move(tls)) {}

  Result<EtcdRange> range(const EtcdRangeRequest& request) override {
    SHADAN_ASSIGN_OR_RETURN(auto answer, call("/v3/kv/range", rangeBody(request),
                                              /*repeatable=*/true));
    EtcdRange range;
    auto parsed = parseRange(answer, range);
    if (!parsed.ok()) return parsed.error().withContext("etcd " + currentEndpoint() + " range");
    return range;
  }

  // A txn of nothing but reads: no compare, every range in "success"; etcd serves it as one
  // linearizable read, all at the header's revision.
  Result<std::vector<EtcdRange>> rangeMany(const std::vector<EtcdRangeRequest>& requests) override {
    if (requests.size() > kEtcdRangesPerCall) {
      return makeError(ErrorCode::kInvalidArgument,
                       "etcd: at most " + std::to_string(kEtcdRangesPerCall) + " ranges at once");
    }
    std::vector<EtcdRange> out;
    if (requests.empty()) return out;
    if (requests.size() == 1) {  // one key: a plain range
      SHADAN_ASSIGN_OR_RETURN(auto range, this->range(requests.front()));
      out.push_back(std::move(range));
      return out;
    }
    json success = json::array();
    for (const auto& request : requests) {
      success.push_back({{"request_range", rangeBody(request)}});
    }
    SHADAN_ASSIGN_OR_RETURN(auto answer, call("/v3/kv/txn", json{{"success", success}},
                                              /*repeatable=*/true));
    const std::string where = "etcd " + currentEndpoint() + " txn of ranges";
    if (!answer.is_object()) return makeError(ErrorCode::kParse, where + ": not an object");
    auto header = answer.find("header");
    if (header == answer.end() || !header->is_object()) {
      return makeError(ErrorCode::kParse, where + ": no header");
    }
    auto revision = int64Field(*header, "revision");
    if (!revision.ok()) return revision.error().withContext(where);
    auto responses = answer.find("responses");
    if (responses == answer.end() || !responses->is_array() ||
        responses->size() != requests.size()) {
      return makeError(ErrorCode::kParse, where + ": not one response per range");
    }
    out.reserve(requests.size());
    for (const auto& response : *responses) {
      const auto body = response.is_object() ? response.find("response_range") : response.end();
      if (body == response.end() || !body->is_object()) {
        return makeError(ErrorCode::kParse, where + ": a response is not a range");
      }
      EtcdRange range;
      range.revision = *revision;
      auto parsed = parseKvs(*body, range);
      if (!parsed.ok()) return parsed.error().withContext(where);
      out.push_back(std::move(range));
    }
    return out;
  }

 private:
  static json rangeBody(const EtcdRangeRequest& request) {
    json body = {{"key", toBase64(request.key)}};
    if (!request.range_end.empty()) body["range_end"] = toBase64(request.range_end);
    if (request.limit > 0) body["limit"] = std::to_string(request.limit);
    if (request.revision > 0) body["revision"] = std::to_string(request.revision);
    if (request.min_create_revision > 0) {
      body["min_create_revision"] = std::to_string(request.min_create_revision);
    }
    if (request.keys_only) body["keys_only"] = true;
    if (request.sort != EtcdRangeRequest::Sort::kKey) {
      body["sort_target"] = "CREATE";
      body["sort_order"] =
          request.sort == EtcdRangeRequest::Sort::kCreateAscending ? "ASCEND" : "DESCEND";
    }
    return body;
  }

 public:
  Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compares,
                            const std::vector<EtcdWrite>& writes) override {
    json compare = json::array();
    for (const auto& c : compares) {
      compare.push_back({{"key", toBase64(c.key)},
                         {"result", "EQUAL"},
                         {"target", "MOD"},
                         {"mod_revision", std::to_string(c.mod_revision)}});
    }
    json success = json::array();
    for (const auto& w : writes) {
      if (w.value) {
        json put = {{"key", toBase64(w.key)}, {"value", toBase64(*w.value)}};
        if (w.lease != 0) put["lease"] = std::to_string(w.lease);
        success.push_back({{"request_put", std::move(put)}});
      } else {
        success.push_back({{"request_delete_range", {{"key", toBase64(w.key)}}}});
      }
    }
    bool unanswered = false;
    auto answer = call("/v3/kv/txn", json{{"compare", compare}, {"success", success}},
                       /*repeatable=*/false, &unanswered);
    EtcdTxnResult result;
    if (!answer.ok()) {
      if (!unanswered) return answer.error();
      result.outcome = EtcdTxnResult::Outcome::kUnknown;
      result.why = answer.error().message;
      return result;
    }
    const std::string where = "etcd " + currentEndpoint() + " txn";
    if (!answer->is_object()) return makeError(ErrorCode::kParse, where + ": not an object");
    if (!boolField(*answer, "succeeded")) return result;
    auto header = answer->find("header");
    if (header == answer->end() || !header->is_object()) {
      return makeError(ErrorCode::kParse, where + ": no header");
    }
    auto revision = int64Field(*header, "revision");
    if (!revision.ok()) return revision.error().withContext(where);
    result.outcome = EtcdTxnResult::Outcome::kApplied;
    result.revision = *revision;
    return result;
  }

  Result<EtcdLease> leaseGrant(std::chrono::seconds ttl) override {
    SHADAN_ASSIGN_OR_RETURN(auto answer,
                            call("/v3/lease/grant", json{{"TTL", std::to_string(ttl.count())}},
                                 /*repeatable=*/false));
    const std::string where = "etcd " + currentEndpoint() + " lease grant";
    if (!answer.is_object()) return makeError(ErrorCode::kParse, where + ": not an object");
    if (answer.contains("error") && answer["error"].is_string() &&
        !answer["error"].get_ref<const std::string&>().empty()) {
      return makeError(ErrorCode::kState, where + ": " + answer["error"].get<std::string>());
    }
    EtcdLease lease;
    auto id = int64Field(answer, "ID");
    auto granted = int64Field(answer, "TTL");
    if (!id.ok() || !granted.ok() || *id == 0 || *granted <= 0) {
      return makeError(ErrorCode::kParse, where + ": no lease id or TTL");
    }
    lease.id = *id;
    lease.ttl_s = *granted;
    return lease;
  }

  Result<int64_t> leaseKeepAlive(int64_t lease) override {
    // A stream on the gateway: one request in, one {"result": ...} out, then the end.
    SHADAN_ASSIGN_OR_RETURN(auto answer,
                            call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}},
                                 /*repeatable=*/true));
    const std::string where = "etcd " + currentEndpoint() + " lease keepalive";
    if (!answer.is_object()) return makeError(ErrorCode::kParse, where + ": not an object");
    auto result = answer.find("result");
    if (result == answer.end() || !result->is_object()) {
      auto error = answer.find("error");
      if (error != answer.end() && error->is_object() && error->contains("message") &&
          (*error)["message"].is_string()) {
        return makeError(ErrorCode::kState, where + ": " + (*error)["message"].get<std::string>());
      }
      return makeError(ErrorCode::kParse, where + ": no result");
    }
    auto left = int64Field(*result, "TTL");
    if (!left.ok()) return left.error().withContext(where);
    return std::max<int64_t>(*left, 0);
  }

  Status leaseRevoke(int64_t lease) override {
    auto answer =
        call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}, /*repeatable=*/true);
    if (answer.ok()) return okStatus();
    // "etcdserver: requested lease not found": ended already, which is what was asked.
    if (answer.error().code == ErrorCode::kState &&
        answer.error().message.find("lease not found") != std::string::npos) {
      return okStatus();
    }
    return answer.error();
  }

  std::string currentEndpoint() const override {
    return options_.endpoints.empty() ? "(none)" : options_.endpoints[current_].text();
  }

 private:
  static Status parseRange(const json& answer, EtcdRange& range) {
    if (!answer.is_object()) return makeError(ErrorCode::kParse, "not an object");
    auto header = answer.find("header");
    if (header == answer.end() || !header->is_object()) {
      return makeError(ErrorCode::kParse, "no header");
    }
    SHADAN_ASSIGN_OR_RETURN(range.revision, int64Field(*header, "revision"));
    return parseKvs(answer, range);
  }

  // A range answer's kvs and more (its revision is the caller's).
  static Status parseKvs(const json& answer, EtcdRange& range) {
    range.more = boolField(answer, "more");
    auto kvs = answer.find("kvs");
    if (kvs == answer.end() || kvs->is_null()) return okStatus();
    if (!kvs->is_array()) return makeError(ErrorCode::kParse, "kvs is not a list");
    range.kvs.reserve(kvs->size());
    for (const auto& kv : *kvs) {
      if (!kv.is_object()) return makeError(ErrorCode::kParse, "a kv is not an object");
      EtcdKeyValue out;
      SHADAN_ASSIGN_OR_RETURN(out.key, fromBase64(kv.value("key", json()), "key"));
      SHADAN_ASSIGN_OR_RETURN(out.value, fromBase64(kv.value("value", json()), "value"));
      SHADAN_ASSIGN_OR_RETURN(out.create_revision, int64Field(kv, "create_revision"));
      SHADAN_ASSIGN_OR_RETURN(out.mod_revision, int64Field(kv, "mod_revision"));
      SHADAN_ASSIGN_OR_RETURN(out.version, int64Field(kv, "version"));
      SHADAN_ASSIGN_OR_RETURN(out.lease, int64Field(kv, "lease"));
      range.kvs.push_back(std::move(out));
    }
    return okStatus();
  }

  // Posts `body` to `path` on the current member, moving on to the next member when this one
  // cannot be reached or answers that it cannot serve now (etcd's "leader changed", "no
  // leader", "request timed out": gRPC UNAVAILABLE), and, for a repeatable call, when it failed
  // after sending. A call that is not repeatable and was sent without an answer, or answered
  // so, sets *unanswered: etcd may still apply a write it timed out ("request timed out"), so
  // its outcome is not known.
  Result<json> call(const char* path, const json& body, bool repeatable,
                    bool* unanswered = nullptr) {
    if (options_.endpoints.empty()) {
      return makeError(ErrorCode::kUnavailable, "etcd: no endpoints configured");
    }
    const std::string text = body.dump();
    std::string failures;
    for (size_t tried = 0; tried < options_.endpoints.size(); ++tried) {
      bool sent = false;
      bool refused = false;  // the member answered that it cannot serve now
      const bool reused = connected();
      auto answer = attempt(path, text, sent, refused);
      if (!answer.ok() && answer.error().code == ErrorCode::kUnavailable && reused && !refused) {
        // A kept-alive connection the member closed while idle (a restart, its idle timeout):
        // once more on a new one.
        close();
        sent = false;
        answer = attempt(path, text, sent, refused);
      }
      if (answer.ok() || answer.error().code != ErrorCode::kUnavailable) return answer;
      close();
      if (sent && !repeatable) {
        if (unanswered != nullptr) *unanswered = true;
        if (refused) current_ = (current_ + 1) % options_.endpoints.size();
        return makeError(
            ErrorCode::kUnavailable,
            answer.error().message + (refused ? " (sent; it may still be applied)"
                                              : " (sent, no answer: it may have been applied)"));
      }
      failures += (failures.empty() ? "" : "; ") + answer.error().message;
      current_ = (current_ + 1) % options_.endpoints.size();
    }
    if (options_.endpoints.size() == 1) return makeError(ErrorCode::kUnavailable, failures);
    return makeError(ErrorCode::kUnavailable, "no etcd member answered: " + failures);
  }

  // Runs the io_context until the queued operation has finished (the stream's deadline bounds
  // it).
  void runQueued() {
    ioc_.restart();
    ioc_.run();
  }

  bool connected() const { return plain_.has_value() || secure_.has_value(); }

  Result<json> attempt(const char* path, const std::string& body, bool& sent, bool& refused) {
    const EtcdEndpoint& endpoint = options_.endpoints[current_];
    const std::string where = "etcd " + endpoint.text();
    if (!connected()) SHADAN_RETURN_IF_ERROR(connect(endpoint, where));
    http::request<http::string_body> request{http::verb::post, path, 11};
    request.set(http::field::host, endpoint.text());
    request.set(http::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    auto answer = secure_ ? exchange(*secure_, request, where, sent)
                          : exchange(*plain_, request, where, sent);
    if (!answer.ok()) return answer.error();
    auto& response = *answer;
    if (!response.keep_alive()) close();
    json parsed = json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
    if (response.result() != http::status::ok) {
      std::string message = "HTTP " + std::to_string(response.result_int());
      if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
        message = parsed["message"].get<std::string>();
      }
      // The gateway maps gRPC UNAVAILABLE (code 14) to 503: an election, a member cut off
      // from its peers, a proposal that timed out. Another member may serve it.
      constexpr int kGrpcUnavailable = 14;
      const bool unavailable =
          response.result() == http::status::service_unavailable ||
          (parsed.is_object() && parsed.contains("code") && parsed["code"].is_number_integer() &&
           parsed["code"].get<int>() == kGrpcUnavailable);
      if (unavailable) {
        refused = true;
        return makeError(ErrorCode::kUnavailable, where + ": " + message);
      }
      return makeError(ErrorCode::kState, where + ": " + message);
    }
    if (parsed.is_discarded()) return makeError(ErrorCode::kParse, where + ": answer is not JSON");
    return parsed;
  }

  Status connect(const EtcdEndpoint& endpoint, const std::string& where) {
    boost::system::error_code address_error;
    auto address = asio::ip::make_address(endpoint.host, address_error);
    if (address_error) return makeError(ErrorCode::kUnavailable, where + ": bad address");
    beast::tcp_stream* tcp = nullptr;
    if (endpoint.tls) {
      secure_.emplace(ioc_, *tls_);
      // The member's certificate must name the address dialled.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(secure_->native_handle()),
                                    endpoint.host.c_str());
      tcp = &beast::get_lowest_layer(*secure_);
    } else {
      plain_.emplace(ioc_);
      tcp = &*plain_;
    }
    tcp->expires_after(options_.timeout);
    boost::system::error_code error;
    tcp->async_connect(asio::ip::tcp::endpoint(address, endpoint.port),
                       [&](boost::system::error_code ec) { error = ec; });
    runQueued();
    if (error) {
      close();
      return makeError(ErrorCode::kUnavailable, where + ": connect: " + error.message());
    }
    tcp->socket().set_option(asio::ip::tcp::no_delay(true));
    if (!secure_) return okStatus();
    secure_->async_handshake(asio::ssl::stream_base::client,
                             [&](boost::system::error_code ec) { error = ec; });
    runQueued();
    if (error) {
      std::string reason = tlsHandshakeFailureReason(error, secure_->native_handle());
      close();
      return makeError(ErrorCode::kUnavailable, where + ": TLS: " + reason);
    }
    return okStatus();
  }

  template <typename Stream>
  Result<http::response<http::string_body>> exchange(Stream& stream,
                                                     http::request<http::string_body>& request,
                                                     const std::string& where, bool& sent) {
    beast::get_lowest_layer(stream).expires_after(options_.timeout);
    boost::system::error_code write_error;
    size_t written = 0;
    http::async_write(stream, request, [&](boost::system::error_code ec, size_t n) {
      write_error = ec;
      written = n;
    });
    runQueued();
    sent = written > 0;
    if (write_error) {
      return makeError(ErrorCode::kUnavailable, where + ": send: " + write_error.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    boost::system::error_code read_error;
    http::async_read(stream, buffer_, parser,
                     [&](boost::system::error_code ec, size_t) { read_error = ec; });
    runQueued();
    if (read_error) {
      return makeError(ErrorCode::kUnavailable, where + ": answer: " + read_error.message());
    }
    return parser.release();
  }

  void close() {
    boost::system::error_code ignored;
    if (plain_) {
      plain_->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      plain_->socket().close(ignored);
      plain_.reset();
    }
    if (secure_) {
      // No TLS close_notify: the connection is dropped, not ended in agreement.
      beast::get_lowest_layer(*secure_).socket().close(ignored);
      secure_.reset();
    }
    buffer_.clear();
  }

  EtcdClientOptions options_;
  TlsContextPtr tls_;  // set when an endpoint is https
  size_t current_ = 0;
  asio::io_context ioc_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
};

}  // namespace

std::string EtcdEndpoint::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<EtcdEndpoint> parseEtcdEndpoint(std::string_view url) {
  const std::string quoted = "etcd endpoint \"" + std::string(url.substr(0, 200)) + "\"";
  bool tls = false;
  std::string_view rest;
  if (url.starts_with("https://")) {
    tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return makeError(ErrorCode::kInvalidArgument, quoted + ": must start with https:// or http://");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos || rest.find('@') != std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument, quoted + ": no path or user info");
  }
  std::string_view host;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return makeError(ErrorCode::kInvalidArgument, quoted + ": unclosed [");
    }
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return makeError(ErrorCode::kInvalidArgument, quoted + ": junk after ]");
    }
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    auto colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  EtcdEndpoint endpoint;
  boost::system::error_code error;
  auto address = asio::ip::make_address(std::string(host), error);
  if (error) {
    return makeError(ErrorCode::kInvalidArgument, quoted + ": the host must be an IP address");
  }
  if (!tls && !address.is_loopback()) {
    return makeError(ErrorCode::kInvalidArgument,
                     quoted + ": plain http only to a loopback address; use https://");
  }
  endpoint.host = address.to_string();
  endpoint.tls = tls;
  if (!port_text.empty()) {
    const auto port = parseWholeDecimal<unsigned>(port_text);
    if (!port || *port == 0 || *port > 65535) {
      return makeError(ErrorCode::kInvalidArgument, quoted + ": the port must be 1-65535");
    }
    endpoint.port = static_cast<uint16_t>(*port);
  }
  return endpoint;
}

Result<std::vector<EtcdRange>> EtcdClient::rangeMany(
    const std::vector<EtcdRangeRequest>& requests) {
  std::vector<EtcdRange> out;
  out.reserve(requests.size());
  for (const auto& request : requests) {
    SHADAN_ASSIGN_OR_RETURN(auto range, this->range(request));
    out.push_back(std::move(range));
  }
  return out;
}

std::string etcdPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key: etcd's "\0" range end
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::make(EtcdClientOptions options) {
  if (options.endpoints.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "etcd: no endpoints");
  }
  if (options.timeout.count() <= 0) {
    return makeError(ErrorCode::kInvalidArgument, "etcd: the timeout must be positive");
  }
  const bool any_tls = std::any_of(options.endpoints.begin(), options.endpoints.end(),
                                   [](const EtcdEndpoint& e) { return e.tls; });
  TlsContextPtr tls;
  if (any_tls) {
    if (options.tls_ca.empty() || options.tls_cert.empty() || options.tls_key.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "etcd: https endpoints need a CA, a client certificate and its key");
    }
    auto context = makeServiceClientTlsContext(options.tls_ca, options.tls_cert, options.tls_key);
    if (!context.ok()) return context.error().withContext("etcd TLS");
    tls = std::move(*context);
  }
  return std::unique_ptr<EtcdClient>(
      std::make_unique<BeastEtcdClient>(std::move(options), std::move(tls)));
}

}  // namespace shadan::controller
