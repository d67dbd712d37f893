#!/usr/bin/env node
// `npm test` runs vitest here, inside a network namespace of its own: only loopback exists, so
// nothing a test runs can reach an address outside it, whatever a library does (the Application
// Insights exporter's statsbeat probes 169.254.169.254 and Microsoft's hosts). As root the namespace
// is made with `unshare -n`, otherwise with `unshare -rn` (a user namespace, where the kernel allows
// it). Arguments go to `vitest run` (e.g. `npm test -- test/core-api.test.ts`).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);

/** True when this process sees no network interface but loopback. */
export function isolated() {
  return Object.keys(os.networkInterfaces()).every((name) => name === 'lo');
}

function run(command, argv) {
  const r = spawnSync(command, argv, { stdio: 'inherit', cwd: root });
  if (r.error) {
    console.error(`npm test: cannot run ${command}: ${r.error.message}`);
    process.exit(1);
  }
  process.exit(r.status ?? 1);
}

if (isolated()) {
  run(process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...args]);
} else {
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  const probe = spawnSync('unshare', [root_ ? '-n' : '-rn', 'true'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    console.error(
      'npm test: the tests run in a network namespace of their own (only loopback), and `unshare' +
        (root_ ? ' -n' : ' -rn') +
        '` failed here. Run as root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1).',
    );
    process.exit(1);
  }
  // inside: bring loopback up, then run this script again (it then finds itself isolated)
  run('unshare', [root_ ? '-n' : '-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, fileURLToPath(import.meta.url), ...args]);
}
