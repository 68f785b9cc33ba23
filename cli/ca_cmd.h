#pragma once

// `shadanctl ca init|issue|pin`: the private CA of the agent <-> controller channel
// (PROTOCOL.md "Channel"), with OpenSSL 3.
//
//   ca init  --dir DIR [--name NAME] [--days N]   DIR/ca.key (0600) and DIR/ca.crt
//   ca issue --dir DIR --name CN (--server [--dns NAME]... [--ip ADDR]... | --client)
//            (--out PREFIX | --tls-dir DIR) [--days N]
//                                                 PREFIX.crt and PREFIX.key (0600), or the
//                                                 files of a TLS directory (tlsDirPaths)
//   ca pin   CERT                                 the SPKI SHA-256 pin of CERT
//   ca revoke --dir DIR CERT...                   adds CERTs to DIR/ca.crl (cli/ca_crl.cc)
//
// Keys are ECDSA P-256. Certificates are X.509 v3 signed with SHA-256: the CA with
// basicConstraints CA:TRUE,pathlen:0 and keyUsage keyCertSign,cRLSign; leaves with CA:FALSE,
// keyUsage digitalSignature, extendedKeyUsage serverAuth or clientAuth, and a subjectAltName
// (servers: the --dns/--ip names; clients: URI shadan:agent:<CN>). A client certificate's CN
// is the agent id the controller sees. Nothing is ever overwritten: every output file is
// created with O_EXCL.

#include <openssl/types.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"

namespace shadan {

inline constexpr int kCaDefaultDays = 3650;
inline constexpr int kLeafDefaultDays = 397;
inline constexpr int kCertificateMaxDays = 7300;

struct CaPaths {
  std::string cert;  // DIR/ca.crt
  std::string key;   // DIR/ca.key
  std::string crl;   // DIR/ca.crl, once a certificate has been revoked
};
CaPaths caPaths(const std::string& dir);

// Creates DIR (0700) when missing, then DIR/ca.key and DIR/ca.crt. Refuses when either exists.
Status initCertificateAuthority(const std::string& dir, const std::string& name,
                                int days = kCaDefaultDays);

struct CertificateRequest {
  std::string common_name;                // agent id for clients; 1-64 of A-Z a-z 0-9 . _ -
  bool server = false;                    // serverAuth; otherwise clientAuth
  std::vector<std::string> dns_names;     // servers only
  std::vector<std::string> ip_addresses;  // servers only
  int days = kLeafDefaultDays;
  // With `server`: clientAuth as well. An etcd member's certificate: etcd 3.4's JSON gateway
  // dials the member's own gRPC with it when client certificates are required (docs/ha.md).
  bool also_client = false;
};

struct IssuedCertificate {
  std::string cert_path;
  std::string key_path;
  std::string spki_pin;  // what an agent pins for a server certificate
};

// Issues a certificate signed by the CA in `ca_dir` into PREFIX.crt / PREFIX.key.
Result<IssuedCertificate> issueCertificate(const std::string& ca_dir,
                                           const CertificateRequest& request,
                                           const std::string& out_prefix);

// Whether issued files are fsynced before issue() returns. kNone only for throwaway
// credentials (the load generator's thousands of simulated agents, in a directory it removes).
enum class FileSync { kFsync, kNone };

// The CA of `ca_dir`, loaded (and its key checked against its certificate) once, for issuing
// many leaves: what issueCertificate() does per call. issue() is const and may be called from
// several threads at once.
class CertificateIssuer {
 public:
  static Result<CertificateIssuer> load(const std::string& ca_dir);
  Result<IssuedCertificate> issue(const CertificateRequest& request, const std::string& out_prefix,
                                  FileSync sync = FileSync::kFsync) const;
  // The CA itself, for signing what is not a certificate (its CRL).
  X509* caCertificate() const;
  EVP_PKEY* caKey() const;

 private:
  struct Loaded;
  explicit CertificateIssuer(std::shared_ptr<const Loaded> loaded) : loaded_(std::move(loaded)) {}
  std::shared_ptr<const Loaded> loaded_;
};

// `ca issue --tls-dir DIR`: the files of a TLS directory, named as their readers expect them.
// A client (agent) directory is what `shadan-agent run --tls-dir DIR` reads (agents/daemon.cc):
// DIR/ca.crt, DIR/agent.crt, DIR/agent.key. A server directory holds DIR/ca.crt,
// DIR/controller.crt and DIR/controller.key, the three paths of the controller config's "tls".
inline constexpr const char* kTlsDirCaFile = "ca.crt";
inline constexpr const char* kTlsDirClientName = "agent";
inline constexpr const char* kTlsDirServerName = "controller";

struct TlsDirPaths {
  std::string ca;    // DIR/ca.crt, a copy of the CA's certificate
  std::string cert;  // DIR/agent.crt or DIR/controller.crt
  std::string key;   // DIR/agent.key or DIR/controller.key (0600)
};
TlsDirPaths tlsDirPaths(const std::string& dir, bool server);

// Issues into `tls_dir` (created 0700 when missing): the certificate and key under the names
// above, and a copy of the CA certificate unless the same bytes are there already. Refuses,
// writing nothing, when the certificate or key exists or ca.crt holds another certificate.
Result<IssuedCertificate> issueIntoTlsDir(const std::string& ca_dir,
                                          const CertificateRequest& request,
                                          const std::string& tls_dir);

struct Revocation {
  std::string crl_path;
  std::vector<std::string> added;  // serials (hex) newly listed
  size_t listed = 0;               // serials in the list now
};

// Adds the certificates in `cert_files` to the CRL of the CA in `ca_dir` (CaPaths::crl),
// creating it when missing: a v2 CRL signed by the CA with SHA-256, thisUpdate now, nextUpdate
// the CA's own notAfter, its cRLNumber one more than before. Every file must hold a certificate
// issued by this CA (kInvalidArgument naming it otherwise), and an existing CRL must be this
// CA's; nothing is written then. Certificates already listed stay as they were. The file is
// replaced atomically (0644).
Result<Revocation> revokeCertificates(const std::string& ca_dir,
                                      const std::vector<std::string>& cert_files);

// `args` is the whole command line after the program name (args[0] == "ca").
// Exit codes: 0 done, 1 failed (e.g. a file exists), 2 usage.
int runCaCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

const char* caUsage();

}  // namespace shadan
