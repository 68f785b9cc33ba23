// `shadanctl ca revoke`: the CA's certificate revocation list (cli/ca_cmd.h).

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "cli/ca_cmd.h"
#include "common/atomic_file.h"
#include "common/tls.h"

namespace shadan {
namespace {

using CrlPtr = X509CrlPtr;
using RevokedPtr = std::unique_ptr<X509_REVOKED, decltype(&X509_REVOKED_free)>;
using AsnIntegerPtr = std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)>;
using BignumPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

Error opensslError(const std::string& what) {
  return makeError(ErrorCode::kInternal, what + ": " + drainOpensslErrors());
}

std::string serialHex(const ASN1_INTEGER* serial) {
  BignumPtr number(ASN1_INTEGER_to_BN(serial, nullptr), &BN_free);
  if (!number) return "?";
  char* hex = BN_bn2hex(number.get());
  std::string out(hex != nullptr ? hex : "?");
  OPENSSL_free(hex);
  return out;
}

// The certificate in `path`, which the CA must have signed.
Result<X509Ptr> issuedCertificate(const std::string& path, X509* ca) {
  SHADAN_ASSIGN_OR_RETURN(auto certificate, readPemCertificate(path));
  if (X509_check_issued(ca, certificate.get()) != X509_V_OK ||
      X509_verify(certificate.get(), X509_get0_pubkey(ca)) != 1) {
    drainOpensslErrors();
    return makeError(ErrorCode::kInvalidArgument, path + " was not issued by this CA");
  }
  return certificate;
}

// The CA's current list, or none when it has never revoked anything.
Result<CrlPtr> currentList(const std::string& path, X509* ca) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return CrlPtr(nullptr, &X509_CRL_free);
  SHADAN_ASSIGN_OR_RETURN(auto crl, readPemCrl(path));
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca)) != 1) {
    drainOpensslErrors();
    return makeError(ErrorCode::kInvalidArgument, path + " is not signed by this CA");
  }
  return crl;
}

}  // namespace

Result<Revocation> revokeCertificates(const std::string& ca_dir,
                                      const std::vector<std::string>& cert_files) {
  if (cert_files.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "no certificate to revoke");
  }
  SHADAN_ASSIGN_OR_RETURN(const CertificateIssuer issuer, CertificateIssuer::load(ca_dir));
  X509* ca = issuer.caCertificate();
  const CaPaths paths = caPaths(ca_dir);
  // Everything is read and checked before anything is written.
  std::vector<X509Ptr> certificates;
  for (const std::string& path : cert_files) {
    SHADAN_ASSIGN_OR_RETURN(auto certificate, issuedCertificate(path, ca));
    certificates.push_back(std::move(certificate));
  }
  SHADAN_ASSIGN_OR_RETURN(auto previous, currentList(paths.crl, ca));

  CrlPtr crl(X509_CRL_new(), &X509_CRL_free);
  AsnTimePtr now(ASN1_TIME_new(), &ASN1_TIME_free);
  if (!crl || !now || X509_gmtime_adj(now.get(), 0) == nullptr) return opensslError("CRL");
  if (X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca)) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), now.get()) != 1 ||
      // As long as the CA: a list that expires would lock every agent out when it does.
      X509_CRL_set1_nextUpdate(crl.get(), X509_get0_notAfter(ca)) != 1) {
    return opensslError("CRL fields");
  }
  std::set<std::string> listed;
  long number = 0;
  if (previous) {
    STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(previous.get());
    for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
      X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
      RevokedPtr copy(X509_REVOKED_dup(entry), &X509_REVOKED_free);
      if (!copy || X509_CRL_add0_revoked(crl.get(), copy.get()) != 1) {
        return opensslError("CRL entry");
      }
      copy.release();  // the CRL owns it now
      listed.insert(serialHex(X509_REVOKED_get0_serialNumber(entry)));
    }
    AsnIntegerPtr previous_number(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(
                                      previous.get(), NID_crl_number, nullptr, nullptr)),
                                  &ASN1_INTEGER_free);
    if (previous_number) number = ASN1_INTEGER_get(previous_number.get());
  }
  Revocation revocation{paths.crl, {}, 0};
  for (const X509Ptr& certificate : certificates) {
    const ASN1_INTEGER* serial = X509_get0_serialNumber(certificate.get());
    const std::string hex = serialHex(serial);
    if (!listed.insert(hex).second) continue;
    RevokedPtr entry(X509_REVOKED_new(), &X509_REVOKED_free);
    if (!entry ||
        X509_REVOKED_set_serialNumber(entry.get(), const_cast<ASN1_INTEGER*>(serial)) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), now.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return opensslError("CRL entry");
    }
    entry.release();
    revocation.added.push_back(hex);
  }
  revocation.listed = listed.size();
  AsnIntegerPtr crl_number(ASN1_INTEGER_new(), &ASN1_INTEGER_free);
  if (!crl_number || ASN1_INTEGER_set(crl_number.get(), number + 1) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1 ||
      X509_CRL_sort(crl.get()) != 1 ||
      X509_CRL_sign(crl.get(), issuer.caKey(), EVP_sha256()) == 0) {
    return opensslError("signing the CRL");
  }
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return opensslError("CRL PEM");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  SHADAN_RETURN_IF_ERROR(
      writeFileAtomically(paths.crl, std::string_view(data, size), 0644, ExistingFile::kReplace));
  return revocation;
}

}  // namespace shadan
