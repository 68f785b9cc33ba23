#pragma once

// A TLS stream over a TCP socket for the agent channel: OpenSSL reads and writes the socket's
// descriptor itself (a BIO that calls recv and send, the latter with MSG_NOSIGNAL), and the
// stream waits for readiness on the reactor.
//
// Why not asio::ssl::stream: it stages every byte through two 17 KiB vectors and a BIO pair of
// two more 17 KiB buffers per connection, about 70 KiB that never shrink. At 10,000 agents that
// was 700 MB of the controller's 1 GB (docs/benchmarks.md "Fleet scale"). Here, with
// SSL_MODE_RELEASE_BUFFERS, an idle connection holds no record buffer at all, and every byte is
// copied once less.
//
// Contracts:
//   - Models Beast's AsyncStream (get_executor, async_read_some, async_write_some) with
//     next_layer() the TCP socket, so websocket::stream<TlsSocket> and http::async_read work and
//     beast::get_lowest_layer() reaches the socket. async_teardown() below lets a WebSocket close
//     handshake end the stream (close_notify best effort, then the TCP close).
//   - At most one read and one write outstanding at a time (Beast's own rule), all on one
//     thread: the socket's executor. Handlers are never invoked from inside the initiating call.
//   - Errors as asio::ssl::stream reports them: OpenSSL's in asio::error::get_ssl_category() (so
//     tlsHandshakeFailureReason reads them alike), a close_notify as asio::error::eof, a TCP
//     close without one as asio::ssl::error::stream_truncated.
//   - Closing the socket (next_layer().close()) ends pending operations with operation_aborted,
//     and the SSL object never touches a descriptor again: its number may already belong to
//     another connection.
//   - The dialling side connects next_layer() first; the descriptor is attached to the SSL
//     object by the first operation.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <utility>
// clang-format off
#include <openssl/ssl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/system/error_code.hpp>
// clang-format on
#include <algorithm>
#include <cstddef>
#include <string>

namespace shadan {

class TlsSocket {
 public:
  using next_layer_type = boost::asio::ip::tcp::socket;
  using lowest_layer_type = next_layer_type;
  using executor_type = next_layer_type::executor_type;

  // The dialling side: a socket still to be connected.
  TlsSocket(boost::asio::io_context& io, boost::asio::ssl::context& tls);
  // The accepting side: a connected socket.
  TlsSocket(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  next_layer_type& next_layer() { return socket_; }
  SSL* native_handle() { return ssl_; }

  // Handler: void(error_code).
  template <class Handler>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Handler&& handler) {
    if (type == boost::asio::ssl::stream_base::client) {
      SSL_set_connect_state(ssl_);
    } else {
      SSL_set_accept_state(ssl_);
    }
    return start<false>([this](void*, size_t) { return handshakeOnce(); }, nullptr, 0,
                        std::forward<Handler>(handler));
  }

  // Handler: void(error_code, size_t). Reads into the first non-empty buffer.
  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      if (boost::asio::mutable_buffer(*it).size() != 0) {
        first = *it;
        break;
      }
    }
    return start<true>([this](void* data, size_t size) { return readOnce(data, size); },
                       first.data(), first.size(), std::forward<Handler>(handler));
  }

  // Handler: void(error_code, size_t). A sequence of several buffers (a WebSocket frame header
  // and its payload) is gathered into one record of up to kMaxGather bytes.
  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    boost::asio::const_buffer first;
    size_t non_empty = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::const_buffer buffer(*it);
      if (buffer.size() == 0) continue;
      if (non_empty++ == 0) first = buffer;
    }
    std::string gathered;
    if (non_empty > 1) {
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers) && gathered.size() < kMaxGather; ++it) {
        const boost::asio::const_buffer buffer(*it);
        const size_t take = std::min(buffer.size(), kMaxGather - gathered.size());
        gathered.append(static_cast<const char*>(buffer.data()), take);
      }
    }
    return start<true>([this](void* bytes, size_t length) { return writeOnce(bytes, length); },
                       const_cast<void*>(first.data()), first.size(),
                       std::forward<Handler>(handler), std::move(gathered));
  }

  // A close_notify if the session is sound and the socket takes it now (never waits), then the
  // TCP close. For the WebSocket teardown and for orderly ends.
  void shutdownAndClose();

  static constexpr size_t kMaxGather = 16 * 1024;  // one TLS record

 private:
  enum class Want { kDone, kRead, kWrite };
  struct Outcome {
    Want want = Want::kDone;
    boost::system::error_code ec;
    size_t bytes = 0;
  };

  // One try of the operation: done (with its result) or what the socket must become first.
  template <bool kWithBytes, class Try>
  struct Op {
    TlsSocket* socket;
    Try attempt;
    void* data;
    size_t size;
    std::string gathered;  // when not empty, the bytes to write instead of data/size
    bool waited = false;
    bool posted = false;
    Outcome done{};

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (!posted) {
        if (ec) {
          done = Outcome{Want::kDone, ec, 0};
        } else {
          done = gathered.empty() ? attempt(data, size) : attempt(gathered.data(), gathered.size());
          if (done.want != Want::kDone) {
            waited = true;
            socket->socket_.async_wait(done.want == Want::kRead
                                           ? boost::asio::socket_base::wait_read
                                           : boost::asio::socket_base::wait_write,
                                       std::move(self));
            return;
          }
          if (!waited) {
            // Finished without waiting: complete from the executor, not from the initiator.
            posted = true;
            boost::asio::post(socket->get_executor(), std::move(self));
            return;
          }
        }
      }
      if constexpr (kWithBytes) {
        self.complete(done.ec, done.bytes);
      } else {
        self.complete(done.ec);
      }
    }
  };

  template <bool kWithBytes, class Try, class Handler>
  auto start(Try attempt, void* data, size_t size, Handler&& handler, std::string gathered = {}) {
    using Signature = std::conditional_t<kWithBytes, void(boost::system::error_code, size_t),
                                         void(boost::system::error_code)>;
    return boost::asio::async_compose<Handler, Signature>(
        Op<kWithBytes, Try>{this, std::move(attempt), data, size, std::move(gathered)}, handler,
        socket_);
  }

  Outcome handshakeOnce();
  Outcome readOnce(void* data, size_t size);
  Outcome writeOnce(const void* data, size_t size);
  template <class Call>
  Outcome once(bool nothing_to_do, Call call);  // the three above share it (tls_socket.cc)
  // Why an SSL call returned `rc`, read before anything else touches errno or the error queue.
  Outcome failure(int rc);
  // Attaches the descriptor on first use; operation_aborted once the socket is closed.
  boost::system::error_code ready();

 public:
  // The BIO's view of the socket (common/tls_socket.cc).
  struct Descriptor {
    int fd = -1;
    bool eof = false;
  };

 private:
  next_layer_type socket_;
  SSL* ssl_ = nullptr;
  Descriptor descriptor_;
  bool attached_ = false;
  bool failed_ = false;  // after a fatal error OpenSSL forbids SSL_shutdown
};

// Beast's WebSocket close handshake ends the stream with these (found by argument lookup).
void teardown(boost::beast::role_type role, TlsSocket& socket, boost::system::error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type, TlsSocket& socket, TeardownHandler&& handler) {
  socket.shutdownAndClose();
  boost::asio::post(socket.get_executor(),
                    boost::beast::bind_front_handler(std::forward<TeardownHandler>(handler),
                                                     boost::system::error_code{}));
}

}  // namespace shadan
