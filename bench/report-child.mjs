// One command of bench/report.ts in a fresh process, and what it cost (wall, CPU, peak RSS):
//   node bench/report-child.mjs report|doctor|floor <run folder> <report file>
// `floor`: every line of every JSON Lines and CSV file of the folder that report and doctor read,
// parsed, nothing kept (not the runner's output-journal.jsonl and failed-items.jsonl: theirs is
// the runner's bookkeeping, which report and doctor do not read).
import fs from 'node:fs';
import path from 'node:path';

const [what, folder, out] = process.argv.slice(2);
const t0 = performance.now();
let detail = '';
if (what === 'report') {
  const { writeReport } = await import('../dist/report/index.js');
  const r = writeReport(folder, out);
  detail = `${(r.bytes / 1024 / 1024).toFixed(1)} MB page`;
} else if (what === 'doctor') {
  const { runDoctor } = await import('../dist/doctor/index.js');
  const r = runDoctor(folder);
  detail = r.findings.map((f) => f.id).join(' ') || 'no findings';
} else {
  let lines = 0;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) walk(file);
      else if (e.name === 'output-journal.jsonl' || e.name === 'failed-items.jsonl') continue;
      else if (e.name.endsWith('.jsonl')) lines += eachLine(file, (l) => JSON.parse(l));
      else if (e.name.endsWith('.csv')) lines += eachLine(file, (l) => l.split(','));
    }
  };
  walk(folder);
  detail = `${lines.toLocaleString('en-US')} lines`;
}
const usage = process.resourceUsage();
process.stdout.write(`${JSON.stringify({ wallMs: performance.now() - t0, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, peakMb: usage.maxRSS / 1024, detail })}\n`);

function eachLine(file, onLine) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 16);
  let carry = '';
  let n = 0;
  for (let got; (got = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
    const text = carry + buf.toString('utf8', 0, got);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      if (nl > from) {
        onLine(text.slice(from, nl));
        n++;
      }
      from = nl + 1;
    }
    carry = text.slice(from);
  }
  fs.closeSync(fd);
  return n;
}
