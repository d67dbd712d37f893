// Preloaded into the runner's parent by scale.mjs (`--import`): at exit, its peak resident set
// (KB, getrusage) and CPU time (ms) go to the file BENCH_PEAK_RSS_FILE names, as JSON. Workers
// (which have an IPC channel) inherit the flag and do nothing.
import fs from 'node:fs';

const file = process.env.BENCH_PEAK_RSS_FILE;
if (file && typeof process.send !== 'function') {
  process.on('exit', () => {
    const u = process.resourceUsage();
    fs.writeFileSync(file, JSON.stringify({ maxRssKb: u.maxRSS, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000 }));
  });
}
