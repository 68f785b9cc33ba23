#pragma once

// TLS contexts for the agent <-> controller channel and the controller's API (PROTOCOL.md
// "Channel"): TLS 1.3 only, mutual authentication against a private CA file, and the
// controller's public key pinned by the agent.
//
// Contracts:
//   - Only TLS 1.3 is offered or accepted (min and max protocol version); the CA file is the
//     only trust anchor (the system's default verify paths are never loaded).
//   - Server contexts demand a client certificate (SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT);
//     OpenSSL also checks the extendedKeyUsage purpose (clientAuth / serverAuth) of the peer.
//   - Client contexts verify the server's chain against the CA file and, in the verify callback
//     (so before any application byte is sent), that the SHA-256 of the leaf certificate's DER
//     SubjectPublicKeyInfo equals the pin. A mismatch fails the handshake with
//     X509_V_ERR_APPLICATION_VERIFICATION (see tlsHandshakeFailureReason).
//   - Private key files readable or writable by group or others are refused.
//   - Errors are values whose message names the file and OpenSSL's reason.
//   - A context may be shared by many streams on one thread; it must outlive them (hence the
//     shared_ptr).

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace shadan {

using TlsContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// A context for the controller's listening side. With `crl_file` (a PEM CRL of the CA, as
// `shadanctl ca revoke` writes it) a client certificate it lists is refused in the handshake
// (X509_V_FLAG_CRL_CHECK on the leaf). The CRL must be signed by the CA of `ca_file` and
// unexpired, or the context is not made: a bad list fails at start, not at every handshake.
Result<TlsContextPtr> makeServerTlsContext(const std::string& ca_file, const std::string& cert_file,
                                           const std::string& key_file,
                                           const std::string& crl_file = {});

// A context for the agent's dialling side. `controller_pin`: 64 lower-case hex characters
// (spkiPinOfCertificate of the controller's leaf certificate).
Result<TlsContextPtr> makeClientTlsContext(const std::string& ca_file, const std::string& cert_file,
                                           const std::string& key_file,
                                           const std::string& controller_pin);

// A context for dialling a service of the deployment's own other than the controller (the
// controller's etcd members): TLS 1.3 only, the server's chain verified against `ca_file` alone,
// and `cert_file` presented as the client certificate. The server's name or address is checked
// per connection (X509_VERIFY_PARAM_set1_ip_asc / SSL_set1_host), as one context serves several
// servers.
Result<TlsContextPtr> makeServiceClientTlsContext(const std::string& ca_file,
                                                  const std::string& cert_file,
                                                  const std::string& key_file);

// Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of the first certificate in the PEM
// file `cert_file`.
Result<std::string> spkiPinOfCertificate(const std::string& cert_file);
std::string spkiPinOf(X509* certificate);

// kInvalidArgument unless `pin` is 64 lower-case hex characters.
Status validateSpkiPin(std::string_view pin);

// kIo when `key_file` cannot be stat'ed, kInvalidArgument when group or others have any
// permission on it.
Status checkPrivateKeyFileMode(const std::string& key_file);

// The subject CN of the peer's (verified) certificate on `ssl`; kNotFound without one.
Result<std::string> peerCommonName(SSL* ssl);

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using X509CrlPtr = std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)>;

// The first certificate of the PEM file `path`: kInvalidArgument when no path is given, kIo
// when it cannot be read or is not a regular file, kParse when it holds no PEM certificate.
// Errors name the file ("certificate file PATH: ...").
Result<X509Ptr> readPemCertificate(const std::string& path);
// The same for a certificate revocation list ("CRL file PATH: ...").
Result<X509CrlPtr> readPemCrl(const std::string& path);

// The CN of the certificate in the PEM file `cert_file`.
Result<std::string> certificateCommonName(const std::string& cert_file);

// A readable reason for a failed handshake: the certificate verification result when there is
// one (e.g. "controller certificate does not match the pinned key"), else `error`'s message.
std::string tlsHandshakeFailureReason(const boost::system::error_code& error, SSL* ssl);

// Everything on OpenSSL's error queue of this thread, joined with "; " (and the queue emptied).
// "unknown OpenSSL error" when the queue is empty.
std::string drainOpensslErrors();

}  // namespace shadan
