// The doctor's findings, each with an anchor (#finding-<n>) that the headline links to.
import type { Finding } from '../../doctor/findings.js';
import type { StepRun } from '../../run-folder/model.js';
import { esc } from '../html.js';

export function findingAnchor(index: number): string {
  return `finding-${index}`;
}

export function findingsSection(findings: readonly Finding[], steps: readonly StepRun[]): string {
  const head = `<section id="findings"><h2>Findings</h2>`;
  if (findings.length === 0) {
    const checked = steps.some((s) => s.attempts.count > 0) ? 'latency trend, failures, retries, timeouts, ' : '';
    return `${head}<p class="ok">No findings: the doctor's checks (${checked}exports, dependencies, outputs, re-runs) found nothing to report.</p></section>`;
  }
  const items = findings
    .map(
      (f, i) =>
        `<div class="finding sev-${f.severity}" id="${findingAnchor(i)}"><div class="f-head"><span class="sev">${f.severity}</span> <code>${esc(f.id)}</code> ${esc(f.title)}</div>` +
        `<ul>${f.evidence.map((e) => `<li>${esc(e)}</li>`).join('')}</ul><div class="fix"><b>Fix:</b> ${esc(f.fix)}</div></div>`,
    )
    .join('');
  return `${head}<p class="hint">The same checks as <code>step-telemetry doctor</code> (without a reference to compare versions with).</p>${items}</section>`;
}
