#include "cli/api_client.h"

// <utility> before any Boost.Asio header: Boost 1.74 with GCC 12 in C++20 needs std::exchange
// declared first.
#include <utility>
//
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fstream>
#include <sstream>

#include "common/strict_json.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Tcp = asio::ip::tcp;
using Json = nlohmann::json;

bool isVisibleAscii(std::string_view text) {
  for (const char c : text) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

Error unavailable(const std::string& what, const ControllerUrl& url, const std::string& detail) {
  return makeError(ErrorCode::kUnavailable,
                   what + " " + url.host + ":" + std::to_string(url.port) + ": " + detail);
}

// The most useful OpenSSL reason for a failed handshake ("certificate verify failed",
// "unsupported protocol"), from the error queue or the verify result.
std::string tlsDetail(const beast::error_code& error, SSL* ssl) {
  if (ssl != nullptr) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    }
  }
  return error.message();
}

// Runs the posted asynchronous operations until `done` or the deadline; on the deadline it
// calls `cancel` and lets the cancelled handlers finish. Returns false on timeout.
template <typename Cancel>
bool runUntil(asio::io_context& io, const bool& done,
              std::chrono::steady_clock::time_point deadline, Cancel cancel) {
  io.restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_one_until(deadline);
  }
  if (done) return true;
  cancel();
  io.restart();
  io.run();
  return false;
}

}  // namespace

Result<ControllerUrl> parseControllerUrl(std::string_view url) {
  const std::string_view scheme = "https://";
  auto bad = [&](const std::string& why) {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller URL " + quoteForMessage(url) + " " + why);
  };
  if (url.substr(0, scheme.size()) != scheme) return bad("must start with https://");
  std::string_view rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return bad("must be https://HOST:PORT (no path, query or user)");
  }
  ControllerUrl out;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed [");
    out.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("has text after ]");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("has an empty port");
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      out.host = std::string(rest.substr(0, colon));
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("has an empty port");
    } else {
      out.host = std::string(rest);
    }
  }
  if (out.host.empty()) return bad("has no host");
  if (!port_text.empty()) {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(std::string(port_text)) == 0 || std::stoul(std::string(port_text)) > 65535) {
      return bad("has a bad port (1-65535)");
    }
    out.port = static_cast<uint16_t>(std::stoul(std::string(port_text)));
  }
  boost::system::error_code ip_error;
  asio::ip::make_address(out.host, ip_error);
  out.host_is_ip = !ip_error;
  if (!out.host_is_ip && out.host.find_first_not_of(
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                             std::string::npos) {
    return bad("has a host that is neither a DNS name nor an IP address");
  }
  return out;
}

std::string ApiResponse::errorSummary() const {
  std::string summary = "HTTP " + std::to_string(status);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const Json& error = body["error"];
    if (error.contains("code") && error["code"].is_string()) {
      summary += " " + quoteForMessage(error["code"].get<std::string>());
    }
    if (error.contains("message") && error["message"].is_string()) {
      summary += ": " + quoteForMessage(error["message"].get<std::string>());
    }
  }
  return summary;
}

Status validateToken(std::string_view token) {
  if (token.empty()) return makeError(ErrorCode::kInvalidArgument, "the token is empty");
  if (token.size() > kApiMaxTokenBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the token is longer than " + std::to_string(kApiMaxTokenBytes) + " bytes");
  }
  if (!isVisibleAscii(token)) {
    // Never echo the token, even a broken one.
    return makeError(ErrorCode::kInvalidArgument,
                     "the token holds spaces, control or non-ASCII characters");
  }
  return okStatus();
}

Result<std::string> loadTokenFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return makeError(ErrorCode::kNotFound, "cannot read token file " + path);
  }
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info.st_mode & 07777);
    return makeError(ErrorCode::kInvalidArgument, "token file " + path + " has mode " + mode +
                                                      " (readable by others); chmod 600 " + path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, "cannot open token file " + path);
  std::string token(kApiMaxTokenBytes + 2, '\0');
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<size_t>(in.gcount()));
  if (!token.empty() && token.back() == '\n') token.pop_back();
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (Status valid = validateToken(token); !valid.ok()) {
    return valid.error().withContext("token file " + path);
  }
  return token;
}

Result<ApiResponse> ApiClient::request(std::string_view method, std::string_view path,
                                       const std::optional<Json>& body) {
  if (method != "GET" && method != "POST") {
    return makeError(ErrorCode::kInternal, "unsupported method " + std::string(method));
  }
  if (path.substr(0, 4) != "/v1/" || !isVisibleAscii(path)) {
    return makeError(ErrorCode::kInternal, "bad API path " + quoteForMessage(path));
  }
  SHADAN_RETURN_IF_ERROR(validateToken(options_.token));
  std::string body_text;
  if (body) {
    body_text = body->dump();
    if (body_text.size() > kApiMaxRequestBytes) {
      return makeError(ErrorCode::kInvalidArgument,
                       "request body of " + std::to_string(body_text.size()) +
                           " bytes is over the " + std::to_string(kApiMaxRequestBytes) +
                           "-byte cap");
    }
  }
  SHADAN_ASSIGN_OR_RETURN(
      RawApiResponse answer,
      exchange(method, path,
               body ? std::optional<std::string_view>("application/json") : std::nullopt,
               std::move(body_text)));
  return std::move(answer.response);
}

Result<RawApiResponse> ApiTransport::requestRaw(const RawApiRequest& request) {
  return makeError(ErrorCode::kInternal, "this transport cannot send " + request.content_type +
                                             " bodies to " + quoteForMessage(request.path));
}

Result<RawApiResponse> ApiClient::requestRaw(const RawApiRequest& request) {
  if (request.method != "POST") {
    return makeError(ErrorCode::kInternal, "unsupported method " + request.method);
  }
  if (request.path.substr(0, 4) != "/v1/" || !isVisibleAscii(request.path)) {
    return makeError(ErrorCode::kInternal, "bad API path " + quoteForMessage(request.path));
  }
  if (request.content_type.empty() || !isVisibleAscii(request.content_type)) {
    return makeError(ErrorCode::kInternal,
                     "bad content type " + quoteForMessage(request.content_type));
  }
  SHADAN_RETURN_IF_ERROR(validateToken(options_.token));
  if (request.body.size() > kApiMaxRawRequestBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "request body of " + std::to_string(request.body.size()) +
                         " bytes is over the " + std::to_string(kApiMaxRawRequestBytes) +
                         "-byte cap");
  }
  return exchange(request.method, request.path, request.content_type, request.body);
}

Result<RawApiResponse> ApiClient::exchange(std::string_view method, std::string_view path,
                                           std::optional<std::string_view> content_type,
                                           std::string body_text) {
  const ControllerUrl& url = options_.url;
  try {
    asio::ssl::context context(asio::ssl::context::tls_client);
    SSL_CTX* native = context.native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
      return makeError(ErrorCode::kInternal, "cannot restrict TLS to version 1.3");
    }
    // The private CA only: no set_default_verify_paths(), so the system store never counts.
    boost::system::error_code ca_error;
    context.load_verify_file(options_.ca_file, ca_error);
    if (ca_error) {
      return makeError(ErrorCode::kInvalidArgument,
                       "cannot load CA file " + options_.ca_file + ": " + ca_error.message());
    }
    context.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);

    asio::io_context io;
    beast::ssl_stream<beast::tcp_stream> stream(io, context);
    SSL* ssl = stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (url.host_is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) != 1) {
        return makeError(ErrorCode::kInternal, "cannot set the expected IP " + url.host);
      }
    } else {
      if (X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size()) != 1 ||
          SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(url.host.c_str())) != 1) {
        return makeError(ErrorCode::kInternal, "cannot set the expected host " + url.host);
      }
    }

    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    const std::string timeout_text = std::to_string(options_.timeout.count()) + " ms";
    beast::get_lowest_layer(stream).expires_at(deadline);

    // Resolve (IP literals resolve at once; names may hit DNS, which the deadline bounds).
    Tcp::resolver resolver(io);
    Tcp::resolver::results_type endpoints;
    beast::error_code step_error;
    bool done = false;
    resolver.async_resolve(url.host, std::to_string(url.port),
                           [&](const beast::error_code& error, Tcp::resolver::results_type r) {
                             step_error = error;
                             endpoints = std::move(r);
                             done = true;
                           });
    if (!runUntil(io, done, deadline, [&] { resolver.cancel(); })) {
      return unavailable("timed out after " + timeout_text + " resolving", url, "no answer");
    }
    if (step_error) return unavailable("cannot resolve", url, step_error.message());

    done = false;
    beast::get_lowest_layer(stream).async_connect(
        endpoints, [&](const beast::error_code& error, const Tcp::endpoint&) {
          step_error = error;
          done = true;
        });
    runUntil(io, done, deadline, [&] { beast::get_lowest_layer(stream).cancel(); });
    if (step_error == beast::error::timeout || !done) {
      return unavailable("timed out after " + timeout_text + " connecting to", url, "no answer");
    }
    if (step_error) return unavailable("cannot connect to", url, step_error.message());
    // The request goes out as more than one TLS record (headers, body); with Nagle the second
    // waits for the server's delayed ACK of the first: 40 ms added to every request.
    beast::error_code option_error;
    beast::get_lowest_layer(stream).socket().set_option(Tcp::no_delay(true), option_error);

    done = false;
    stream.async_handshake(asio::ssl::stream_base::client, [&](const beast::error_code& error) {
      step_error = error;
      done = true;
    });
    runUntil(io, done, deadline, [&] { beast::get_lowest_layer(stream).cancel(); });
    if (step_error == beast::error::timeout || !done) {
      return unavailable("timed out after " + timeout_text + " in the TLS handshake with", url,
                         "no answer");
    }
    if (step_error) {
      return unavailable("TLS handshake failed with", url, tlsDetail(step_error, ssl));
    }

    http::request<http::string_body> req{method == "GET" ? http::verb::get : http::verb::post,
                                         std::string(path), 11};
    req.set(http::field::host, url.host_is_ip && url.host.find(':') != std::string::npos
                                   ? "[" + url.host + "]:" + std::to_string(url.port)
                                   : url.host + ":" + std::to_string(url.port));
    req.set(http::field::user_agent, std::string("shadanctl/") + SHADAN_VERSION);
    req.set(http::field::accept, "application/json");
    req.set(http::field::authorization, "Bearer " + options_.token);
    req.set(http::field::connection, "close");
    if (content_type) {
      req.set(http::field::content_type, std::string(*content_type));
      req.body() = std::move(body_text);
    }
    req.prepare_payload();

    done = false;
    http::async_write(stream, req, [&](const beast::error_code& error, size_t) {
      step_error = error;
      done = true;
    });
    runUntil(io, done, deadline, [&] { beast::get_lowest_layer(stream).cancel(); });
    if (step_error == beast::error::timeout || !done) {
      return unavailable("timed out after " + timeout_text + " sending to", url, "no answer");
    }
    if (step_error) return unavailable("cannot send to", url, step_error.message());

    // Beast 1.74 does not enforce body_limit on async reads (seen in tests), so the cap is
    // checked here: the declared Content-Length after the header, then the body read so far
    // after every read (at most one 64 KiB read past the cap is ever buffered).
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(options_.max_response_bytes);
    const auto over_cap = [&] {
      return makeError(ErrorCode::kParse, "the controller's answer is over the " +
                                              std::to_string(options_.max_response_bytes) +
                                              "-byte cap");
    };
    done = false;
    http::async_read_header(stream, buffer, parser, [&](const beast::error_code& error, size_t) {
      step_error = error;
      done = true;
    });
    runUntil(io, done, deadline, [&] { beast::get_lowest_layer(stream).cancel(); });
    while (!step_error && done && !parser.is_done()) {
      if (parser.content_length().value_or(0) > options_.max_response_bytes ||
          parser.get().body().size() > options_.max_response_bytes) {
        return over_cap();
      }
      done = false;
      http::async_read_some(stream, buffer, parser, [&](const beast::error_code& error, size_t) {
        step_error = error;
        done = true;
      });
      runUntil(io, done, deadline, [&] { beast::get_lowest_layer(stream).cancel(); });
    }
    if (step_error == beast::error::timeout || !done) {
      return unavailable("timed out after " + timeout_text + " waiting for the answer of", url,
                         "no answer");
    }
    if (step_error == http::error::body_limit ||
        parser.get().body().size() > options_.max_response_bytes) {
      return over_cap();
    }
    if (step_error) return unavailable("cannot read the answer of", url, step_error.message());
    // No TLS shutdown handshake: the answer is complete (framed by HTTP), and waiting for the
    // peer's close_notify would only add a way to hang.
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().close(ignored);

    const auto& res = parser.get();
    RawApiResponse answer;
    ApiResponse& response = answer.response;
    response.status = static_cast<int>(res.result_int());
    if (auto retry_after = res.find(http::field::retry_after); retry_after != res.end()) {
      answer.retry_after = std::string(retry_after->value());
    }
    if (!res.body().empty()) {
      auto parsed = parseStrictJson(res.body(), "controller answer", options_.max_response_bytes);
      if (!parsed.ok()) {
        if (!response.ok()) return answer;  // an error status with a non-JSON body
        return parsed.error();
      }
      response.body = std::move(*parsed);
    }
    return answer;
  } catch (const std::exception& e) {
    // Asio/OpenSSL setup failures (out of memory, a broken TLS library); not the network.
    return makeError(ErrorCode::kInternal, std::string("HTTPS client: ") + e.what());
  }
}

}  // namespace shadan
