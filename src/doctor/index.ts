// `step-telemetry doctor`: the troubleshooting guide's checks over a run folder, as findings with
// evidence and a fix; text for people, `--json` for machines; a non-zero exit code on errors.
import { readRunFolder } from '../run-folder/read.js';
import type { RunData } from '../run-folder/model.js';
import { diagnose, type CheckOptions, type Finding, type Severity, type Skipped } from './findings.js';
import { loadReference } from './reference.js';

export type FailOn = 'error' | 'warning' | 'never';

export interface DoctorOptions {
  readonly reference?: string;
  readonly outputs?: readonly string[];
  readonly runInvocationTimeout?: number;
  readonly failOn?: FailOn;
}

export interface DoctorResult {
  readonly folder: string;
  readonly kind: RunData['kind'];
  readonly pipelineRunId: string;
  readonly steps: readonly { readonly label: string; readonly outcome: string; readonly attempts: number; readonly miniBatches: number }[];
  /** The merged jobs of multi-node steps: the job's status, as its result.json says. */
  readonly jobs: readonly { readonly label: string; readonly status: string; readonly nodes: number; readonly itemsSucceeded?: number; readonly itemsTotal?: number }[];
  readonly findings: readonly Finding[];
  readonly skipped: readonly Skipped[];
  readonly notes: readonly string[];
  readonly summary: Readonly<Record<Severity, number>>;
  readonly exitCode: number;
}

export function runDoctor(target: string, options: DoctorOptions = {}): DoctorResult {
  const run = readRunFolder(target, { light: true });
  const checkOptions: CheckOptions = {
    runInvocationTimeout: options.runInvocationTimeout,
    outputs: options.outputs,
    reference: options.reference !== undefined ? loadReference(options.reference) : undefined,
  };
  const { findings, skipped } = diagnose(run, checkOptions);
  const summary: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of findings) summary[f.severity]++;
  const failOn = options.failOn ?? 'error';
  const fail = failOn === 'error' ? summary.error > 0 : failOn === 'warning' ? summary.error + summary.warning > 0 : false;
  return {
    folder: run.folder,
    kind: run.kind,
    pipelineRunId: run.pipelineRunId,
    steps: run.steps.map((s) => ({ label: s.label, outcome: s.outcome, attempts: s.attempts.count, miniBatches: s.attempts.fates.total || s.miniBatches.count })),
    jobs: run.jobs.map((j) => {
      const items = j.result.items as { succeeded?: number; total?: number } | undefined;
      return { label: j.label, status: String(j.result.status ?? 'unknown'), nodes: j.nodes.length, itemsSucceeded: items?.succeeded, itemsTotal: items?.total };
    }),
    findings,
    skipped,
    notes: run.notes.map((n) => n.message),
    summary,
    exitCode: fail ? 1 : 0,
  };
}

const LABEL: Record<Severity, string> = { error: 'ERROR', warning: 'WARN ', info: 'INFO ' };

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** The text a person reads. */
export function formatDoctor(result: DoctorResult): string {
  const out: string[] = [];
  const what = result.kind === 'pipeline' ? `pipeline run ${result.pipelineRunId}, ${plural(result.steps.length, 'step')}` : `step ${result.steps.map((s) => s.label).join(', ')}`;
  out.push(`step-telemetry doctor: ${result.folder} (${what})`);
  for (const j of result.jobs) {
    out.push(`  ${j.label} (job of ${plural(j.nodes, 'node')}, merged): ${j.status}${j.itemsTotal !== undefined ? `, ${j.itemsSucceeded ?? 0} of ${j.itemsTotal} items succeeded` : ''}`);
  }
  for (const s of result.steps) {
    out.push(`  ${s.label}: ${s.outcome}${s.miniBatches > 0 ? `, ${plural(s.miniBatches, 'mini-batch', 'mini-batches')}${s.attempts !== s.miniBatches ? ` (${plural(s.attempts, 'attempt')})` : ''}` : ''}`);
  }
  out.push('');
  if (result.findings.length === 0) {
    out.push('No findings.');
  } else {
    for (const f of result.findings) {
      out.push(`${LABEL[f.severity]} ${f.id}: ${f.title}`);
      for (const e of f.evidence) out.push(`    - ${e}`);
      out.push(`    fix: ${f.fix}`);
      out.push('');
    }
    out.push(`${plural(result.summary.error, 'error')}, ${plural(result.summary.warning, 'warning')}, ${result.summary.info} info`);
  }
  if (result.skipped.length > 0) {
    out.push('');
    out.push('Not checked:');
    for (const s of result.skipped) out.push(`  ${s.id}${s.step ? ` (${s.step})` : ''}: ${s.reason}`);
  }
  return `${out.join('\n')}\n`;
}

export type { Finding, Severity, Skipped } from './findings.js';
