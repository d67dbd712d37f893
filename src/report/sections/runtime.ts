// Where the step ran (Node.js, platform, dependencies), its exports to backends, telemetry
// diagnostics, identity, and the files of its folder.
import { esc, cellText, plural, table } from '../html.js';
import type { StepView } from '../step-view.js';

export function runtimeSection(view: StepView): string {
  const { step, index: i } = view;
  const rt = step.runtime;
  const parts: string[] = [];
  if (rt) {
    parts.push(
      table(
        ['Node.js', 'platform', 'arch', 'CPUs', 'memory', 'package.json'],
        [[esc(rt.node ?? '?'), esc(rt.platform ?? '?'), esc(rt.arch ?? '?'), esc(String(rt.cpus ?? '?')), rt.memoryBytes ? esc(`${(rt.memoryBytes / 2 ** 30).toFixed(1)} GiB`) : '?', esc(rt.packageJson ?? '–')]],
      ),
    );
    const deps = Object.entries(rt.dependencies);
    if (deps.length > 0) parts.push(`<details><summary>${plural(deps.length, 'direct dependency', 'direct dependencies')}</summary>${table(['package', 'installed'], deps.map(([k, v]) => [esc(k), v === null ? '<span class="bad">not installed</span>' : esc(v)]))}</details>`);
  }
  if (step.exports.length > 0) {
    parts.push(
      `<h4>Exports</h4>${table(
        ['backend', 'signal', 'target', 'batches', 'failed', 'not delivered', 'last error / hint'],
        step.exports.map((e) => [
          esc(e.backend),
          esc(e.signal),
          esc(e.target ?? ''),
          esc(String(e.batches)),
          e.failedBatches > 0 ? `<span class="bad">${e.failedBatches}</span>` : '0',
          esc(String(e.droppedItems)),
          esc([e.lastError, e.hint].filter(Boolean).join(' — ')),
        ]),
      )}`,
    );
  }
  if (step.diagnostics.length > 0) parts.push(`<h4>Telemetry diagnostics</h4><ul>${step.diagnostics.map((d) => `<li>${esc(d.message)}${d.count && d.count > 1 ? ` (× ${d.count})` : ''}</li>`).join('')}</ul>`);
  const identity = Object.entries(step.identity);
  if (identity.length > 0) parts.push(`<details><summary>identity</summary>${table(['field', 'value'], identity.map(([k, v]) => [esc(k), cellText(v)]))}</details>`);
  parts.push(`<details><summary>${plural(step.files.length, 'file')} in ${esc(step.folder)}</summary>${table(['file', 'bytes'], step.files.map((f) => [esc(f.name), esc(f.bytes.toLocaleString('en-US'))]))}</details>`);
  return `<section class="sub" id="runtime-${i}"><h3>Runtime, exports and files</h3>${parts.join('')}</section>`;
}
