#include "cli/ca_cmd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>

#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/tls.h"

namespace shadan {
namespace {

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using BignumPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)>;
using FilePtr = std::unique_ptr<FILE, decltype(&std::fclose)>;

Error opensslError(const std::string& what) {
  return makeError(ErrorCode::kInternal, what + ": " + drainOpensslErrors());
}

bool onlyChars(const std::string& text, const char* allowed) {
  return text.find_first_not_of(allowed) == std::string::npos;
}

constexpr const char* kNameChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

Status validateCommonName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !onlyChars(name, kNameChars) || name[0] == '-') {
    return makeError(
        ErrorCode::kInvalidArgument,
        "name must be 1-64 of A-Z a-z 0-9 . _ - (not starting with -), not '" + name + "'");
  }
  return okStatus();
}

Status validateCaName(const std::string& name) {
  const std::string allowed = std::string(kNameChars) + " ";
  if (name.empty() || name.size() > 64 || !onlyChars(name, allowed.c_str())) {
    return makeError(ErrorCode::kInvalidArgument,
                     "CA name must be 1-64 of A-Z a-z 0-9 space . _ -, not '" + name + "'");
  }
  return okStatus();
}

Status validateDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253 ||
      !onlyChars(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") ||
      name.front() == '.' || name.front() == '-' || name.back() == '.' ||
      name.find("..") != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument, "--dns: not a DNS name: '" + name + "'");
  }
  return okStatus();
}

Status validateIpAddress(const std::string& address) {
  unsigned char buffer[16];
  if (inet_pton(AF_INET, address.c_str(), buffer) != 1 &&
      inet_pton(AF_INET6, address.c_str(), buffer) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "--ip: not an IP address: '" + address + "'");
  }
  return okStatus();
}

Status validateDays(int days) {
  if (days < 1 || days > kCertificateMaxDays) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--days must be from 1 to " + std::to_string(kCertificateMaxDays));
  }
  return okStatus();
}

Status refuseExisting(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       path + " already exists; refusing to overwrite it");
    }
  }
  return okStatus();
}

// Creates `dir` (0700; missing parents get the default mode) unless it is a directory already.
// `option` names it in errors.
Status ensurePrivateDirectory(const std::string& option, const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::exists(dir, error)) {
    std::filesystem::path target(dir);
    if (!target.has_filename()) target = target.parent_path();  // "DIR/"
    if (const auto parent = target.parent_path(); !parent.empty()) {
      std::filesystem::create_directories(parent, error);
    }
    if (::mkdir(target.c_str(), 0700) != 0) {
      return makeError(ErrorCode::kIo, option + " " + dir + ": " + std::strerror(errno));
    }
  } else if (!std::filesystem::is_directory(dir, error)) {
    return makeError(ErrorCode::kInvalidArgument, option + " " + dir + " is not a directory");
  }
  return okStatus();
}

// The whole of a small file (a PEM certificate); nullopt when it cannot be read.
std::optional<std::string> readSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

// Creates `path` exclusively with `mode` and lets `write` fill it; removes it on failure.
Status writeNewFile(const std::string& path, mode_t mode, const std::function<bool(FILE*)>& write,
                    FileSync sync = FileSync::kFsync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return makeError(ErrorCode::kIo, path + ": " + std::strerror(errno));
  FilePtr file(::fdopen(fd, "w"), &std::fclose);
  if (!file) {
    const int saved = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return makeError(ErrorCode::kIo, path + ": " + std::strerror(saved));
  }
  const bool written = write(file.get());
  const bool flushed =
      std::fflush(file.get()) == 0 && (sync == FileSync::kNone || ::fsync(fd) == 0);
  file.reset();
  if (!written || !flushed) {
    ::unlink(path.c_str());
    return makeError(ErrorCode::kIo, path + ": write failed: " + drainOpensslErrors());
  }
  return okStatus();
}

Result<EvpPkeyPtr> generateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  if (!key) return opensslError("EC P-256 key generation");
  return key;
}

Status addExtension(X509* certificate, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()),
                         &X509_EXTENSION_free);
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return opensslError(std::string("certificate extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return okStatus();
}

// A certificate for `key` named `common_name`, valid for `days`, with a random 127-bit serial.
// `issuer` null: self-signed (the CA).
Result<X509Ptr> newCertificate(const std::string& common_name, EVP_PKEY* key, int days,
                               X509* issuer) {
  X509Ptr certificate(X509_new(), &X509_free);
  if (!certificate) return opensslError("X509_new");
  X509* x = certificate.get();
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return opensslError("serial number");
  serial[0] &= 0x7f;  // positive, as RFC 5280 wants
  BignumPtr serial_bn(BN_bin2bn(serial, sizeof serial, nullptr), &BN_free);
  X509_NAME* name = X509_get_subject_name(x);
  // Backdated a few minutes: a peer whose clock is slightly behind still accepts it.
  if (X509_set_version(x, X509_VERSION_3) != 1 || !serial_bn ||
      BN_to_ASN1_INTEGER(serial_bn.get(), X509_get_serialNumber(x)) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(x), -300) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(x), days, 0, nullptr) == nullptr ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(x, key) != 1) {
    return opensslError("certificate fields");
  }
  return certificate;
}

Result<EvpPkeyPtr> loadCaKey(const std::string& path) {
  SHADAN_RETURN_IF_ERROR(checkPrivateKeyFileMode(path));
  FilePtr file(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!file) return makeError(ErrorCode::kIo, path + ": " + std::strerror(errno));
  EvpPkeyPtr key(PEM_read_PrivateKey(file.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key)
    return makeError(ErrorCode::kParse, path + ": no PEM private key: " + drainOpensslErrors());
  return key;
}

// Writes PREFIX.key first and the certificate second, removing the key if the certificate
// cannot be written: a key without its certificate is useless and confusing.
Status writePair(const std::string& key_path, EVP_PKEY* key, const std::string& cert_path,
                 X509* certificate, FileSync sync = FileSync::kFsync) {
  SHADAN_RETURN_IF_ERROR(writeNewFile(
      key_path, 0600,
      [&](FILE* file) {
        return PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
      },
      sync));
  Status written = writeNewFile(
      cert_path, 0644, [&](FILE* file) { return PEM_write_X509(file, certificate) == 1; }, sync);
  if (!written.ok()) ::unlink(key_path.c_str());
  return written;
}

// Checks everything about `request` that needs no file and returns its subjectAltName value.
Result<std::string> checkedAltNames(const CertificateRequest& request) {
  SHADAN_RETURN_IF_ERROR(validateCommonName(request.common_name));
  SHADAN_RETURN_IF_ERROR(validateDays(request.days));
  if (!request.server && (!request.dns_names.empty() || !request.ip_addresses.empty())) {
    return makeError(ErrorCode::kInvalidArgument, "--dns and --ip are for --server certificates");
  }
  std::string alt_names;
  auto addAltName = [&](const std::string& entry) {
    alt_names += (alt_names.empty() ? "" : ",") + entry;
  };
  for (const std::string& dns : request.dns_names) {
    SHADAN_RETURN_IF_ERROR(validateDnsName(dns));
    addAltName("DNS:" + dns);
  }
  for (const std::string& ip : request.ip_addresses) {
    SHADAN_RETURN_IF_ERROR(validateIpAddress(ip));
    addAltName("IP:" + ip);
  }
  if (request.server && alt_names.empty()) addAltName("DNS:" + request.common_name);
  if (!request.server) addAltName("URI:shadan:agent:" + request.common_name);
  return alt_names;
}

}  // namespace

CaPaths caPaths(const std::string& dir) {
  const std::filesystem::path base(dir);
  return CaPaths{(base / "ca.crt").string(), (base / "ca.key").string(),
                 (base / "ca.crl").string()};
}

Status initCertificateAuthority(const std::string& dir, const std::string& name, int days) {
  if (dir.empty()) return makeError(ErrorCode::kInvalidArgument, "--dir must not be empty");
  SHADAN_RETURN_IF_ERROR(validateCaName(name));
  SHADAN_RETURN_IF_ERROR(validateDays(days));
  const CaPaths paths = caPaths(dir);
  SHADAN_RETURN_IF_ERROR(ensurePrivateDirectory("--dir", dir));
  SHADAN_RETURN_IF_ERROR(refuseExisting({paths.key, paths.cert}));

  SHADAN_ASSIGN_OR_RETURN(auto key, generateP256Key());
  SHADAN_ASSIGN_OR_RETURN(auto certificate, newCertificate(name, key.get(), days, nullptr));
  X509* x = certificate.get();
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  SHADAN_RETURN_IF_ERROR(
      addExtension(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_subject_key_identifier, "hash"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(x, key.get(), EVP_sha256()) == 0) return opensslError("signing the CA");
  return writePair(paths.key, key.get(), paths.cert, x);
}

struct CertificateIssuer::Loaded {
  std::string ca_dir;
  EvpPkeyPtr key{nullptr, &EVP_PKEY_free};
  X509Ptr cert{nullptr, &X509_free};
};

Result<CertificateIssuer> CertificateIssuer::load(const std::string& ca_dir) {
  const CaPaths ca = caPaths(ca_dir);
  auto loaded = std::make_shared<Loaded>();
  loaded->ca_dir = ca_dir;
  auto ca_key = loadCaKey(ca.key);
  if (!ca_key.ok()) return ca_key.error().withContext("CA in " + ca_dir);
  auto ca_cert = readPemCertificate(ca.cert);
  if (!ca_cert.ok()) return ca_cert.error().withContext("CA in " + ca_dir);
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    return makeError(ErrorCode::kInvalidArgument,
                     "CA in " + ca_dir + ": " + ca.key + " does not match " + ca.cert);
  }
  loaded->key = std::move(*ca_key);
  loaded->cert = std::move(*ca_cert);
  return CertificateIssuer(std::move(loaded));
}

X509* CertificateIssuer::caCertificate() const { return loaded_->cert.get(); }
EVP_PKEY* CertificateIssuer::caKey() const { return loaded_->key.get(); }

Result<IssuedCertificate> CertificateIssuer::issue(const CertificateRequest& request,
                                                   const std::string& out_prefix,
                                                   FileSync sync) const {
  SHADAN_ASSIGN_OR_RETURN(const std::string alt_names, checkedAltNames(request));
  if (out_prefix.empty()) return makeError(ErrorCode::kInvalidArgument, "--out must not be empty");

  IssuedCertificate issued{out_prefix + ".crt", out_prefix + ".key", {}};
  SHADAN_RETURN_IF_ERROR(refuseExisting({issued.key_path, issued.cert_path}));
  X509* ca_cert = loaded_->cert.get();
  SHADAN_ASSIGN_OR_RETURN(auto key, generateP256Key());
  SHADAN_ASSIGN_OR_RETURN(auto certificate,
                          newCertificate(request.common_name, key.get(), request.days, ca_cert));
  X509* x = certificate.get();
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert, x, nullptr, nullptr, 0);
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_key_usage, "critical,digitalSignature"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_ext_key_usage,
                                      !request.server       ? "clientAuth"
                                      : request.also_client ? "serverAuth,clientAuth"
                                                            : "serverAuth"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_subject_key_identifier, "hash"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_authority_key_identifier, "keyid:always"));
  SHADAN_RETURN_IF_ERROR(addExtension(x, &ctx, NID_subject_alt_name, alt_names));
  if (X509_sign(x, loaded_->key.get(), EVP_sha256()) == 0) {
    return opensslError("signing the certificate");
  }
  SHADAN_RETURN_IF_ERROR(writePair(issued.key_path, key.get(), issued.cert_path, x, sync));
  issued.spki_pin = spkiPinOf(x);
  return issued;
}

Result<IssuedCertificate> issueCertificate(const std::string& ca_dir,
                                           const CertificateRequest& request,
                                           const std::string& out_prefix) {
  // Checked before the CA is read, so a bad request or an existing file names itself.
  SHADAN_RETURN_IF_ERROR(checkedAltNames(request));
  if (out_prefix.empty()) return makeError(ErrorCode::kInvalidArgument, "--out must not be empty");
  SHADAN_RETURN_IF_ERROR(refuseExisting({out_prefix + ".key", out_prefix + ".crt"}));
  SHADAN_ASSIGN_OR_RETURN(const CertificateIssuer issuer, CertificateIssuer::load(ca_dir));
  return issuer.issue(request, out_prefix);
}

TlsDirPaths tlsDirPaths(const std::string& dir, bool server) {
  const std::filesystem::path base(dir);
  const std::string name = server ? kTlsDirServerName : kTlsDirClientName;
  return TlsDirPaths{(base / kTlsDirCaFile).string(), (base / (name + ".crt")).string(),
                     (base / (name + ".key")).string()};
}

Result<IssuedCertificate> issueIntoTlsDir(const std::string& ca_dir,
                                          const CertificateRequest& request,
                                          const std::string& tls_dir) {
  if (tls_dir.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "--tls-dir must not be empty");
  }
  const TlsDirPaths paths = tlsDirPaths(tls_dir, request.server);
  // The CA certificate the peer checks against: copied unless the same one is there already
  // (a controller and an agent issued into one directory share it). Another CA's ca.crt is
  // never replaced: the directory would then trust a CA it was not meant to.
  const std::string ca_cert_path = caPaths(ca_dir).cert;
  const std::optional<std::string> ca_cert = readSmallFile(ca_cert_path);
  if (!ca_cert) {
    return makeError(ErrorCode::kIo, "CA in " + ca_dir + ": cannot read " + ca_cert_path);
  }
  struct stat st {};
  const bool have_ca = ::lstat(paths.ca.c_str(), &st) == 0;
  if (have_ca && readSmallFile(paths.ca) != ca_cert) {
    return makeError(ErrorCode::kInvalidArgument, paths.ca + " already exists and is not " +
                                                      ca_cert_path + "; refusing to overwrite it");
  }
  SHADAN_RETURN_IF_ERROR(refuseExisting({paths.key, paths.cert}));
  // Bad input is refused before the directory is made.
  SHADAN_RETURN_IF_ERROR(checkedAltNames(request));
  std::error_code error;
  const bool created = !std::filesystem::exists(tls_dir, error);
  SHADAN_RETURN_IF_ERROR(ensurePrivateDirectory("--tls-dir", tls_dir));
  const std::string prefix = paths.cert.substr(0, paths.cert.size() - 4);  // without ".crt"
  auto issued = issueCertificate(ca_dir, request, prefix);
  if (!issued.ok()) {
    if (created) ::rmdir(tls_dir.c_str());  // only when still empty: nothing else is removed
    return issued.error();
  }
  if (!have_ca) {
    Status copied = writeNewFile(paths.ca, 0644, [&](FILE* file) {
      return std::fwrite(ca_cert->data(), 1, ca_cert->size(), file) == ca_cert->size();
    });
    if (!copied.ok()) {
      // All three files or none: a directory without ca.crt would not start the agent.
      ::unlink(issued->key_path.c_str());
      ::unlink(issued->cert_path.c_str());
      return copied.error();
    }
  }
  return *issued;
}

const char* caUsage() {
  return R"(usage: shadanctl ca <init|issue|pin|revoke> [options]

  ca init --dir DIR [--name NAME] [--days N]
      Creates the private CA of the agent channel: DIR/ca.key (ECDSA P-256, mode 0600) and
      DIR/ca.crt. DIR is created (0700) when missing. NAME: the CA's CN (default "Shadan CA").
      N: validity in days (default 3650).
  ca issue --dir DIR --name CN ([--server [--dns NAME]... [--ip ADDR]...] [--client])
           (--out PREFIX | --tls-dir TLSDIR) [--days N]
      Issues PREFIX.crt and PREFIX.key (0600) signed by the CA in DIR. --tls-dir instead
      fills TLSDIR (created 0700) with ca.crt (a copy of DIR/ca.crt) and agent.crt, agent.key
      (--client: what shadan-agent run --tls-dir TLSDIR reads) or controller.crt,
      controller.key (--server: the controller config's "tls" files).
      --server: the controller's certificate (serverAuth; subjectAltName from --dns/--ip,
      default DNS:CN); prints the pin agents configure.
      --client: an agent's certificate (clientAuth); CN is the agent id.
      --server --client: both usages, as an etcd member's certificate needs (docs/ha.md);
      --out only.
      N: validity in days (default 397).
  ca pin CERT
      Prints the pin of CERT: lower-case hex SHA-256 of its DER SubjectPublicKeyInfo.
  ca revoke --dir DIR CERT...
      Adds each CERT (issued by the CA in DIR) to the CA's revocation list DIR/ca.crl,
      created at the first revocation, signed by the CA, valid as long as the CA. Install it
      as the controller config's "tls": {"crl": ...} and restart the controller: a revoked
      agent can no longer connect to the hub, nor present its certificate to the API. Already
      revoked certificates are left as they are. Prints the CRL's path.

Nothing is ever overwritten. Exit 0: done, 1: failed, 2: usage error.
)";
}

int runCaCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto usage = [&](const std::string& message) { return printUsageError(err, "ca", message); };
  auto failure = [&](const Error& error) {
    err << "shadanctl: " << error.message << "\n";
    return kExitFailure;
  };
  if (args.size() < 2) {
    return usage("'ca' needs a subcommand (subcommands: init, issue, pin, revoke)");
  }
  const std::string& sub = args[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    out << caUsage();
    return kExitOk;
  }
  if (sub != "init" && sub != "issue" && sub != "pin" && sub != "revoke") {
    return usage("unknown ca subcommand '" + sub + "' (subcommands: init, issue, pin, revoke)");
  }

  OptionSpec spec;
  spec.command = "ca " + sub;
  if (sub == "init") spec.with_value = {"--dir", "--name", "--days"};
  if (sub == "revoke") spec.with_value = {"--dir"};
  if (sub == "issue") {
    spec.with_value = {"--dir", "--name", "--days", "--out", "--tls-dir", "--dns", "--ip"};
    spec.flags = {"--server", "--client"};
    spec.repeatable = {"--dns", "--ip"};
  }
  // Every word is taken, so that the checks below say what is wrong with them.
  spec.max_positionals = kUnlimitedPositionals;
  auto options = parseCommandOptions(args, 2, spec);
  if (!options.ok()) return usage(options.error().message);
  if (options->help) {
    out << caUsage();
    return kExitOk;
  }
  const std::vector<std::string>& positional = options->positionals;
  auto value = [&](const char* option) { return options->value(option).value_or(""); };

  if (sub == "pin") {
    if (positional.size() != 1) return usage("'ca pin' needs exactly one CERT");
    auto pin = spkiPinOfCertificate(positional[0]);
    if (!pin.ok()) return failure(pin.error());
    out << *pin << "\n";
    return kExitOk;
  }
  if (sub == "revoke") {
    if (!options->has("--dir")) return usage("'ca revoke' needs --dir DIR");
    if (positional.empty()) return usage("'ca revoke' needs at least one CERT");
    auto revoked = revokeCertificates(value("--dir"), positional);
    if (!revoked.ok()) return failure(revoked.error());
    for (const std::string& serial : revoked->added) err << "revoked serial " << serial << "\n";
    err << revoked->added.size() << " added, " << revoked->listed
        << " in the list; install it as the controller's tls.crl and restart the controller\n";
    out << revoked->crl_path << "\n";
    return kExitOk;
  }
  if (!positional.empty())
    return usage("'ca " + sub + "' takes no argument '" + positional[0] + "'");
  if (!options->has("--dir")) return usage("'ca " + sub + "' needs --dir DIR");
  int days = sub == "init" ? kCaDefaultDays : kLeafDefaultDays;
  if (auto given = options->value("--days")) {
    const std::string& text = *given;
    if (text.empty() || text.size() > 5 || !onlyChars(text, "0123456789") ||
        !validateDays(std::stoi(text)).ok()) {
      return usage("--days must be a number from 1 to " + std::to_string(kCertificateMaxDays));
    }
    days = std::stoi(text);
  }

  if (sub == "init") {
    const std::string name = options->value("--name").value_or("Shadan CA");
    if (Status done = initCertificateAuthority(value("--dir"), name, days); !done.ok()) {
      return done.error().code == ErrorCode::kInvalidArgument &&
                     done.error().message.find("already exists") == std::string::npos
                 ? usage(done.error().message)
                 : failure(done.error());
    }
    const CaPaths paths = caPaths(value("--dir"));
    out << paths.cert << "\n";
    err << "wrote " << paths.key << " (private, 0600) and " << paths.cert << "\n";
    return kExitOk;
  }

  const bool server = options->has("--server");
  const bool client = options->has("--client");
  if (!server && !client) return usage("'ca issue' needs --server, --client or both");
  if (server && client && options->has("--tls-dir")) {
    return usage("'ca issue --server --client' (an etcd member) takes --out, not --tls-dir");
  }
  if (!options->has("--name")) return usage("'ca issue' needs --name CN");
  if (options->has("--out") == options->has("--tls-dir")) {
    return usage("'ca issue' needs exactly one of --out PREFIX and --tls-dir TLSDIR");
  }
  CertificateRequest request;
  request.common_name = value("--name");
  request.server = server;
  request.also_client = server && client;
  request.dns_names = options->all("--dns");
  request.ip_addresses = options->all("--ip");
  request.days = days;
  auto issued = options->has("--tls-dir")
                    ? issueIntoTlsDir(value("--dir"), request, value("--tls-dir"))
                    : issueCertificate(value("--dir"), request, value("--out"));
  if (!issued.ok()) {
    const std::string& message = issued.error().message;
    const bool bad_input = issued.error().code == ErrorCode::kInvalidArgument &&
                           message.find("already exists") == std::string::npos &&
                           message.rfind("CA in ", 0) != 0;
    return bad_input ? usage(message) : failure(issued.error());
  }
  err << "wrote " << issued->key_path << " (private, 0600) and " << issued->cert_path << "\n";
  if (server) {
    out << issued->spki_pin << "\n";
    err << "agents pin this controller with: " << issued->spki_pin << "\n";
  } else {
    out << issued->cert_path << "\n";
  }
  return kExitOk;
}

}  // namespace shadan
