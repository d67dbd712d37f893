#!/usr/bin/env node
// Runs before `npm test`, outside the tests' network namespace: performs each install scenario of
// test/install/scenarios.mjs once (the packed tarball into a fresh project beside the scenario's
// dependencies), so that the npm cache holds every package and the tests can repeat the install
// with `npm install --offline` where there is no network. A stamp in node_modules/.cache skips the
// work while the scenarios and our dependencies are unchanged; `--force` redoes it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSTALL_SCENARIOS } from '../test/install/scenarios.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const key = createHash('sha256')
  .update(JSON.stringify({ scenarios: INSTALL_SCENARIOS, dependencies: pkg.dependencies, peer: pkg.peerDependencies }))
  .digest('hex')
  .slice(0, 16);
const stampFile = path.join(root, 'node_modules', '.cache', 'step-telemetry-install-scenarios');
if (!process.argv.includes('--force') && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === key) process.exit(0);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'st-warm-'));
try {
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const tarball = path.join(tmp, info.filename);
  for (const s of INSTALL_SCENARIOS) {
    const dir = path.join(tmp, s.name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `scenario-${s.name}`, private: true, type: 'module', dependencies: { ...s.dependencies, 'step-telemetry': `file:${tarball}` } }, null, 2));
    console.error(`pretest: filling the npm cache for the install scenario "${s.name}" (${s.why}) ...`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  fs.mkdirSync(path.dirname(stampFile), { recursive: true });
  fs.writeFileSync(stampFile, key);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
