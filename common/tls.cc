#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/sha256.h"

namespace shadan {
namespace {

namespace ssl = boost::asio::ssl;

using FilePtr = std::unique_ptr<FILE, decltype(&std::fclose)>;

Error tlsError(const std::string& what) {
  return makeError(ErrorCode::kIo, what + ": " + drainOpensslErrors());
}

Status checkReadable(const std::string& role, const std::string& path) {
  if (path.empty()) return makeError(ErrorCode::kInvalidArgument, role + " file not given");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return makeError(ErrorCode::kIo, role + " file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(ErrorCode::kIo, role + " file " + path + ": not a regular file");
  }
  return okStatus();
}

// The first PEM object `read` finds in `path`, or an error naming the file as a `role` file.
template <typename Object, typename Free, typename Read>
Result<std::unique_ptr<Object, Free>> readPem(const std::string& role, const std::string& path,
                                              Free free, Read read) {
  SHADAN_RETURN_IF_ERROR(checkReadable(role, path));
  FilePtr file(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!file) return makeError(ErrorCode::kIo, role + " file " + path + ": " + std::strerror(errno));
  std::unique_ptr<Object, Free> object(read(file.get(), nullptr, nullptr, nullptr), free);
  if (!object) {
    return makeError(ErrorCode::kParse,
                     role + " file " + path + ": no PEM " + role + ": " + drainOpensslErrors());
  }
  return object;
}

std::string commonNameOf(X509* certificate) {
  X509_NAME* subject = X509_get_subject_name(certificate);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

// Everything both sides share: TLS 1.3 only, the CA file as the only anchor, our chain and key.
Result<TlsContextPtr> makeContext(ssl::context::method method, const std::string& ca_file,
                                  const std::string& cert_file, const std::string& key_file) {
  SHADAN_RETURN_IF_ERROR(checkReadable("CA", ca_file));
  SHADAN_RETURN_IF_ERROR(checkReadable("certificate", cert_file));
  SHADAN_RETURN_IF_ERROR(checkReadable("private key", key_file));
  SHADAN_RETURN_IF_ERROR(checkPrivateKeyFileMode(key_file));
  ERR_clear_error();
  TlsContextPtr context;
  try {
    context = std::make_shared<ssl::context>(method);
  } catch (const boost::system::system_error& e) {
    return makeError(ErrorCode::kInternal, std::string("TLS context: ") + e.what());
  }
  SSL_CTX* ctx = context->native_handle();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return tlsError("TLS context: cannot restrict to TLS 1.3");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // An idle connection gives its record buffers back (about 34 KB each): a controller holds one
  // connection per gateway, and an agent's link is idle almost always.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return tlsError("CA file " + ca_file);
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return tlsError("certificate file " + cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return tlsError("private key file " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return tlsError("private key file " + key_file + " does not match " + cert_file);
  }
  SSL_CTX_set_verify_depth(ctx, 4);
  return context;
}

// Loads `crl_file` into the context's store and checks every client leaf against it.
Status addRevocationList(SSL_CTX* ctx, const std::string& ca_file, const std::string& crl_file) {
  SHADAN_ASSIGN_OR_RETURN(auto crl, readPemCrl(crl_file));
  SHADAN_ASSIGN_OR_RETURN(auto ca, readPemCertificate(ca_file));
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) != 1) {
    drainOpensslErrors();
    return makeError(ErrorCode::kInvalidArgument,
                     "CRL file " + crl_file + " is not signed by the CA of " + ca_file);
  }
  // An expired list would make OpenSSL refuse every client: say so now, once.
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      next != nullptr && X509_cmp_current_time(next) < 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "CRL file " + crl_file +
                         " has expired (nextUpdate passed); write a new one with shadanctl ca "
                         "revoke");
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  if (X509_STORE_add_crl(store, crl.get()) != 1 ||
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1) {
    return tlsError("CRL file " + crl_file);
  }
  return okStatus();
}

}  // namespace

std::string drainOpensslErrors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!out.empty()) out += "; ";
    out += buffer.data();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Status checkPrivateKeyFileMode(const std::string& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) {
    return makeError(ErrorCode::kIo, "private key file " + key_file + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return makeError(ErrorCode::kInvalidArgument,
                     "private key file " + key_file + " is accessible by group or others (mode " +
                         mode + "); refusing it (chmod 600 " + key_file + ")");
  }
  return okStatus();
}

Status validateSpkiPin(std::string_view pin) {
  if (pin.size() != 64 || pin.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     "controller pin must be 64 lower-case hex characters (SHA-256 of the "
                     "certificate's SubjectPublicKeyInfo; see shadanctl ca pin)");
  }
  return okStatus();
}

std::string spkiPinOf(X509* certificate) {
  unsigned char* der = nullptr;
  const int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(certificate), &der);
  if (length <= 0) return {};
  std::string bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return sha256Hex(bytes);
}

Result<std::string> spkiPinOfCertificate(const std::string& cert_file) {
  SHADAN_ASSIGN_OR_RETURN(auto certificate, readPemCertificate(cert_file));
  std::string pin = spkiPinOf(certificate.get());
  if (pin.empty()) return tlsError("certificate file " + cert_file + ": public key");
  return pin;
}

Result<std::string> certificateCommonName(const std::string& cert_file) {
  SHADAN_ASSIGN_OR_RETURN(auto certificate, readPemCertificate(cert_file));
  std::string name = commonNameOf(certificate.get());
  if (name.empty()) {
    return makeError(ErrorCode::kNotFound, "certificate file " + cert_file + ": no subject CN");
  }
  return name;
}

Result<std::string> peerCommonName(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return makeError(ErrorCode::kNotFound, "the peer sent no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    return makeError(ErrorCode::kInvalidArgument, "the peer's certificate is not verified");
  }
  std::string name = commonNameOf(peer);
  if (name.empty()) return makeError(ErrorCode::kNotFound, "the peer's certificate has no CN");
  return name;
}

Result<TlsContextPtr> makeServerTlsContext(const std::string& ca_file, const std::string& cert_file,
                                           const std::string& key_file,
                                           const std::string& crl_file) {
  SHADAN_ASSIGN_OR_RETURN(auto context,
                          makeContext(ssl::context::tls_server, ca_file, cert_file, key_file));
  SSL_CTX* ctx = context->native_handle();
  if (!crl_file.empty()) SHADAN_RETURN_IF_ERROR(addRevocationList(ctx, ca_file, crl_file));
  // The CA names the server asks for: only our CA.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str());
  if (names == nullptr) return tlsError("CA file " + ca_file + ": CA names");
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Agents hold one long connection; tickets would only be unused key material.
  SSL_CTX_set_num_tickets(ctx, 0);
  return context;
}

Result<TlsContextPtr> makeClientTlsContext(const std::string& ca_file, const std::string& cert_file,
                                           const std::string& key_file,
                                           const std::string& controller_pin) {
  SHADAN_RETURN_IF_ERROR(validateSpkiPin(controller_pin));
  SHADAN_ASSIGN_OR_RETURN(auto context,
                          makeContext(ssl::context::tls_client, ca_file, cert_file, key_file));
  boost::system::error_code error;
  context->set_verify_mode(ssl::verify_peer, error);
  if (!error) {
    context->set_verify_callback(
        [pin = controller_pin](bool preverified, ssl::verify_context& verify) {
          X509_STORE_CTX* store = verify.native_handle();
          if (!preverified) return false;
          // Depth 0 is the controller's own certificate; the chain above it is the CA's.
          if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
          X509* leaf = X509_STORE_CTX_get_current_cert(store);
          if (leaf == nullptr || spkiPinOf(leaf) != pin) {
            X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
            return false;
          }
          return true;
        },
        error);
  }
  if (error) return makeError(ErrorCode::kInternal, "TLS client verification: " + error.message());
  return context;
}

Result<TlsContextPtr> makeServiceClientTlsContext(const std::string& ca_file,
                                                  const std::string& cert_file,
                                                  const std::string& key_file) {
  SHADAN_ASSIGN_OR_RETURN(auto context,
                          makeContext(ssl::context::tls_client, ca_file, cert_file, key_file));
  SSL_CTX_set_verify(context->native_handle(), SSL_VERIFY_PEER, nullptr);
  return context;
}

std::string tlsHandshakeFailureReason(const boost::system::error_code& error, SSL* ssl) {
  if (ssl != nullptr) {
    const long result = SSL_get_verify_result(ssl);
    if (result == X509_V_ERR_APPLICATION_VERIFICATION) {
      return "controller certificate does not match the pinned key";
    }
    if (result != X509_V_OK) {
      return std::string("peer certificate rejected: ") + X509_verify_cert_error_string(result);
    }
  }
  return error.message();
}

Result<X509Ptr> readPemCertificate(const std::string& path) {
  return readPem<X509>("certificate", path, &X509_free, &PEM_read_X509);
}

Result<X509CrlPtr> readPemCrl(const std::string& path) {
  return readPem<X509_CRL>("CRL", path, &X509_CRL_free, &PEM_read_X509_CRL);
}

}  // namespace shadan
