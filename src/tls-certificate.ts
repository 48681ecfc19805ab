/**
 * What was wrong with a peer's certificate, by the code Node's TLS socket gives its verification failure
 * (OpenSSL's verify result, or the host name check's): the relay's PostgreSQL connections (pg) and kafkajs's
 * brokers' both see these. Undefined for any other code.
 */
export type CertificateProblem = 'untrusted' | 'host name' | 'validity';

const PROBLEMS = new Map<string, CertificateProblem>([
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'untrusted'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'untrusted'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'untrusted'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'untrusted'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'untrusted'],
  ['CERT_SIGNATURE_FAILURE', 'untrusted'],
  ['CERT_UNTRUSTED', 'untrusted'],
  ['INVALID_CA', 'untrusted'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'host name'],
  ['CERT_HAS_EXPIRED', 'validity'],
  ['CERT_NOT_YET_VALID', 'validity'],
]);

export function certificateProblem(code: unknown): CertificateProblem | undefined {
  return typeof code === 'string' ? PROBLEMS.get(code) : undefined;
}
