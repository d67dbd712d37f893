// Writes the generated Grafana dashboards to dashboards/ (`npm run dashboards`); with `--check`,
// only compares and exits 1 when a committed file differs from the generator's output.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDashboards, renderDashboard } from './dashboards.js';

const dir = fileURLToPath(new URL('../../dashboards/', import.meta.url));
const check = process.argv.includes('--check');
let stale = 0;
for (const d of buildDashboards()) {
  const file = path.join(dir, d.file);
  const text = renderDashboard(d);
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (current === text) continue;
  if (check) {
    stale++;
    process.stderr.write(`dashboards/${d.file} differs from the generator's output: run npm run dashboards\n`);
  } else {
    fs.writeFileSync(file, text);
    process.stdout.write(`wrote dashboards/${d.file}\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
