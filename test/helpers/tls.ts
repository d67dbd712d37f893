/**
 * A throwaway certificate authority for TLS tests (openssl CLI, EC P-256, 2 days): a server
 * certificate for 127.0.0.1 and a client certificate, both signed by it. Files live in a temp
 * folder removed when the test finishes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { useTempDir } from './run-step.js';

const run = promisify(execFile);

export interface TestPki {
  readonly caFile: string;
  readonly serverKeyFile: string;
  readonly serverCertFile: string;
  readonly clientKeyFile: string;
  readonly clientCertFile: string;
  read(file: string): Buffer;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run(process.env.OPENSSL_BIN ?? 'openssl', args, { cwd, timeout: 20_000 });
}

async function signed(dir: string, name: string, subject: string, ext: string): Promise<void> {
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = await useTempDir('st-pki-');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=step-telemetry test CA'], dir);
  await signed(dir, 'server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await signed(dir, 'client', '/CN=step-telemetry test client', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: path.join(dir, 'ca.pem'),
    serverKeyFile: path.join(dir, 'server.key'),
    serverCertFile: path.join(dir, 'server.pem'),
    clientKeyFile: path.join(dir, 'client.key'),
    clientCertFile: path.join(dir, 'client.pem'),
    read: (file) => fs.readFileSync(file),
  };
}
