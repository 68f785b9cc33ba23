#include "common/tls_socket.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <climits>
#include <new>

namespace shadan {
namespace {

namespace asio = boost::asio;
using ErrorCode = boost::system::error_code;
using Descriptor = TlsSocket::Descriptor;

// The socket BIO of OpenSSL would do, but it writes with write(2): a peer that closed first
// raises SIGPIPE, which kills a daemon that did not ignore it. This one uses send(MSG_NOSIGNAL).
Descriptor* descriptorOf(BIO* bio) { return static_cast<Descriptor*>(BIO_get_data(bio)); }

bool wouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

int bioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t sent = ::send(descriptorOf(bio)->fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (sent < 0 && wouldBlock(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(sent);
}

int bioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  Descriptor* descriptor = descriptorOf(bio);
  const ssize_t received = ::recv(descriptor->fd, data, static_cast<size_t>(size), 0);
  if (received == 0) descriptor->eof = true;
  if (received < 0 && wouldBlock(errno)) BIO_set_retry_read(bio);
  return static_cast<int>(received);
}

long bioControl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return descriptorOf(bio)->eof ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* socketMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shadan socket");
    if (made == nullptr || BIO_meth_set_write(made, bioWrite) != 1 ||
        BIO_meth_set_read(made, bioRead) != 1 || BIO_meth_set_ctrl(made, bioControl) != 1) {
      throw std::bad_alloc();
    }
    return made;
  }();
  return method;
}

SSL* newSsl(asio::ssl::context& tls) {
  SSL* ssl = SSL_new(tls.native_handle());
  if (ssl == nullptr) throw std::bad_alloc();
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                        SSL_MODE_RELEASE_BUFFERS);
  return ssl;
}

int clampToInt(size_t size) { return size > INT_MAX ? INT_MAX : static_cast<int>(size); }

}  // namespace

TlsSocket::TlsSocket(asio::io_context& io, asio::ssl::context& tls)
    : socket_(io), ssl_(newSsl(tls)) {}

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, asio::ssl::context& tls)
    : socket_(std::move(socket)), ssl_(newSsl(tls)) {}

TlsSocket::~TlsSocket() { SSL_free(ssl_); }

ErrorCode TlsSocket::ready() {
  if (!socket_.is_open()) return asio::error::operation_aborted;
  if (attached_) return {};
  ErrorCode ec;
  socket_.non_blocking(true, ec);
  if (ec) return ec;
  BIO* bio = BIO_new(socketMethod());
  if (bio == nullptr) return asio::error::no_memory;
  descriptor_.fd = socket_.native_handle();
  BIO_set_data(bio, &descriptor_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_ from here
  attached_ = true;
  return {};
}

TlsSocket::Outcome TlsSocket::failure(int rc) {
  const int saved_errno = errno;
  const int ssl_error = SSL_get_error(ssl_, rc);
  switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
      return Outcome{Want::kRead, {}, 0};
    case SSL_ERROR_WANT_WRITE:
      return Outcome{Want::kWrite, {}, 0};
    case SSL_ERROR_ZERO_RETURN:
      return Outcome{Want::kDone, asio::error::eof, 0};
    default:
      break;
  }
  failed_ = true;
  const unsigned long queued = ERR_get_error();
  ERR_clear_error();
  if (ssl_error == SSL_ERROR_SSL && queued != 0) {
    if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      return Outcome{Want::kDone, asio::ssl::error::stream_truncated, 0};
    }
    return Outcome{Want::kDone,
                   ErrorCode(static_cast<int>(queued), asio::error::get_ssl_category()), 0};
  }
  if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0 && !descriptor_.eof) {
    return Outcome{Want::kDone, ErrorCode(saved_errno, boost::system::system_category()), 0};
  }
  // The peer closed the connection without a close_notify.
  return Outcome{Want::kDone, asio::ssl::error::stream_truncated, 0};
}

// One SSL call on the attached socket (`nothing_to_do`: a zero-length transfer, done at once):
// success is rc > 0 (bytes for SSL_read/SSL_write; SSL_do_handshake's 1, which the handshake
// ignores).
template <class Call>
TlsSocket::Outcome TlsSocket::once(bool nothing_to_do, Call call) {
  if (ErrorCode ec = ready()) return Outcome{Want::kDone, ec, 0};
  if (nothing_to_do) return Outcome{};
  ERR_clear_error();
  const int rc = call();
  if (rc > 0) return Outcome{Want::kDone, {}, static_cast<size_t>(rc)};
  return failure(rc);
}

TlsSocket::Outcome TlsSocket::handshakeOnce() {
  return once(false, [this] { return SSL_do_handshake(ssl_); });
}

TlsSocket::Outcome TlsSocket::readOnce(void* data, size_t size) {
  return once(size == 0, [&] { return SSL_read(ssl_, data, clampToInt(size)); });
}

TlsSocket::Outcome TlsSocket::writeOnce(const void* data, size_t size) {
  return once(size == 0, [&] { return SSL_write(ssl_, data, clampToInt(size)); });
}

void TlsSocket::shutdownAndClose() {
  if (socket_.is_open() && attached_ && !failed_ && SSL_is_init_finished(ssl_) == 1) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // best effort: a full socket buffer simply gets no close_notify
    ERR_clear_error();
  }
  ErrorCode ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void teardown(boost::beast::role_type, TlsSocket& socket, ErrorCode& ec) {
  socket.shutdownAndClose();
  ec = {};
}

}  // namespace shadan
