#!/usr/bin/env node
// Fails when `npm ls` shows more than one version of any @opentelemetry/* package.
import { execFileSync } from 'node:child_process';

const out = execFileSync('npm', ['ls', '--all', '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
const versions = new Map();
(function walk(deps) {
  for (const [name, info] of Object.entries(deps ?? {})) {
    if (info.version && name.startsWith('@opentelemetry/')) {
      if (!versions.has(name)) versions.set(name, new Set());
      versions.get(name).add(info.version);
    }
    walk(info.dependencies);
  }
})(JSON.parse(out).dependencies);
const dups = [...versions].filter(([, v]) => v.size > 1);
if (dups.length > 0) {
  for (const [name, v] of dups) console.error(`duplicate OpenTelemetry package: ${name}@${[...v].join(', ')}`);
  process.exit(1);
}
console.log(`OpenTelemetry packages: ${versions.size}, one version each`);
