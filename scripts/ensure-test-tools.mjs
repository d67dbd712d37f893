#!/usr/bin/env node
// Runs before `npm test`: every system tool the tests need must be on this machine. A missing
// one is installed from Debian's packages when we are root; otherwise we stop with the exact
// command to run. No test skips silently because a tool is absent.
import { execFileSync, spawnSync } from 'node:child_process';

// command on PATH -> Debian package that provides it
const TOOLS = [
  { command: 'jq', pkg: 'jq', why: 'the docs show how to read the run folder with jq, and test/docs-commands.test.ts runs every command of the docs' },
  { command: 'ip', pkg: 'iproute2', why: 'npm test runs the suite in a network namespace of its own and brings its loopback up' },
  { command: 'unshare', pkg: 'util-linux', why: 'npm test runs the suite in a network namespace of its own (nothing a test runs can leave loopback)' },
  { command: 'openssl', pkg: 'openssl', why: 'the local Application Insights endpoint serves HTTPS with a throwaway certificate' },
  { command: 'chromium', pkg: 'chromium', why: 'the HTML run report is opened in headless Chromium (playwright-core drives /usr/bin/chromium)' },
  { command: 'prometheus', pkg: 'prometheus', why: 'the ops tests run every dashboard and alert query against a real Prometheus that scrapes real steps' },
  { command: 'promtool', pkg: 'prometheus', why: 'the ops tests run promtool check rules, test rules, check config and check metrics' },
  { command: 'prometheus-pushgateway', pkg: 'prometheus-pushgateway', why: 'the ops tests push from real steps to a real Pushgateway' },
  { command: 'prometheus-alertmanager', pkg: 'prometheus-alertmanager', why: 'the ops tests deliver the error-budget alert through a real Alertmanager' },
  { command: 'amtool', pkg: 'prometheus-alertmanager', why: 'the ops tests check the compose stack\'s Alertmanager configuration' },
  { command: 'redis-server', pkg: 'redis-server', why: 'the shared-queue runner tests start a real Redis (BullMQ) on loopback' },
];

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

const missing = TOOLS.filter((t) => !has(t.command));
if (missing.length === 0) process.exit(0);

const pkgs = [...new Set(missing.map((t) => t.pkg))];
const command = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
for (const t of missing) console.error(`pretest: ${t.command} is missing (${t.why})`);
const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (!root) {
  console.error(`pretest: run as root: ${command}`);
  process.exit(1);
}
console.error(`pretest: installing ${pkgs.join(' ')} ...`);
try {
  execFileSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${command}`], { stdio: ['ignore', 'inherit', 'inherit'] });
} catch {
  console.error(`pretest: the install failed; run: ${command}`);
  process.exit(1);
}
const still = missing.filter((t) => !has(t.command));
if (still.length > 0) {
  console.error(`pretest: still missing after the install: ${still.map((t) => t.command).join(', ')}`);
  process.exit(1);
}
