// Extra certificate authorities from the environment, for networks whose TLS is inspected by a
// corporate proxy. Python users set REQUESTS_CA_BUNDLE (requests, huggingface_hub) or
// SSL_CERT_FILE, curl users CURL_CA_BUNDLE; Node's own NODE_EXTRA_CA_CERTS keeps working too.
// The bundle is added to Node's built-in roots (requests replaces them; a bundle that holds only
// the corporate root would then break every other host).
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { UsageError } from '../errors.js';

const VARIABLES = ['REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE'] as const;

/** `ca` for tls.connect when one of the variables names a PEM file; undefined otherwise. */
export function caFromEnv(env: Record<string, string | undefined>): string[] | undefined {
  for (const name of VARIABLES) {
    const file = env[name]?.trim();
    if (!file) continue;
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`${name}=${file} cannot be read: ${(err as Error).message}`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${name}=${file} holds no PEM certificate`);
    return [...tls.rootCertificates, pem];
  }
  return undefined;
}
