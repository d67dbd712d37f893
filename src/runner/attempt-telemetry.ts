// The telemetry of mini-batch attempts: one CONSUMER span per attempt under the step span (its id
// drawn when the attempt is sent, so the worker's spans are its children; the span itself recorded
// when the outcome is known), one sample of the duration histogram with the span as exemplar, and
// the job's counters, which reach the instruments once per tick rather than once per mini-batch.
import { SpanKind, TraceFlags, type Attributes, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import type { ResourceUsage } from '../resources/sampler.js';
import { otelInstrumentName } from '../signals/metrics.js';
import type { Step } from '../step.js';
import type { Accounting } from './accounting.js';
import type { SerializedError } from './protocol.js';
import type { Attempt } from './scheduler.js';

export type AttemptOutcome = 'success' | 'error' | 'timeout' | 'crash';

export class AttemptTelemetry {
  private readonly stepSpanContext: SpanContext;
  /** `00-<trace id>-` and `-<flags>` of the step's trace: an attempt's W3C traceparent is these around its span id (the worker's spans are its children). */
  readonly trace: readonly [string, string];
  /** What counts() last gave the instruments. */
  private recorded = { mbSucceeded: 0, mbFailed: 0, itemsSucceeded: 0, itemsFailed: 0, lastFinish: 0 };
  private budgetRecorded = 0;
  /** The workers' run.log scalars, served by this process's Prometheus registry. */
  private readonly scalars = new Map<string, { value: number }>();

  constructor(private readonly step: Step) {
    const sc = step.rootSpan.spanContext();
    this.stepSpanContext = sc;
    this.trace = [`00-${sc.traceId}-`, `-0${sc.traceFlags & 1}`];
  }

  /** The span id of a new attempt; its span is created when its outcome is known. */
  newSpanId(): string {
    return this.step.newSpanId();
  }

  /** The export rate policy's decision for an attempt being sent: its probability of export, 0 for left out. */
  sampleForExport(): number {
    return this.step.sampleForExport();
  }

  /**
   * The attempt's span, recorded when its outcome is known, from its start and end (epoch ms),
   * with what run() used when its worker said (`usage`); returns its context (an exemplar).
   */
  span(a: Attempt, start: number, end: number, attributes: Attributes, status: SpanStatus, exception?: SerializedError, usage?: ResourceUsage): SpanContext {
    const mb = a.st.mb;
    const w = a.worker;
    const attrs: Attributes = {
      'mini_batch.id': mb.id,
      'mini_batch.items': mb.items,
      'mini_batch.attempt': a.no,
      'mini_batch.prefetched': a.prefetched,
      'mini_batch.chunk': a.chunk,
      'worker.id': w.name,
      'worker.pid': w.pid ?? -1,
    };
    if (mb.kind === 'keyed') attrs['mini_batch.partition_keys'] = mb.keysText;
    for (const k in attributes) attrs[k] = attributes[k];
    if (usage !== undefined) {
      attrs['mini_batch.cpu_ms'] = usage[0] / 1000;
      attrs['mini_batch.rss_bytes'] = usage[1];
      attrs['mini_batch.heap_growth_bytes'] = usage[2];
    }
    // a retry and failed items are always exported (errors and the slowest are, by the policy)
    const keep = a.no > 1 || (attributes['mini_batch.items_failed'] as number) > 0;
    const sc = this.step.recordSpan({ name: 'mini-batch', kind: SpanKind.CONSUMER, spanId: a.spanId, parent: this.stepSpanContext, startTime: start, endTime: end, attributes: attrs, status, exception, exportProbability: a.exportProbability, keep });
    return sc ?? { traceId: this.stepSpanContext.traceId, spanId: a.spanId, traceFlags: TraceFlags.NONE };
  }

  /** The latest run.log scalars of a worker: gauges of the runner's Prometheus registry (one per name for the job). */
  workerScalars(scalars: readonly (readonly [string, number])[]): void {
    for (const [name, value] of scalars) {
      if (typeof name !== 'string' || typeof value !== 'number') continue;
      const entry = this.scalars.get(name);
      if (entry) {
        entry.value = value;
        continue;
      }
      const fresh = { value };
      this.scalars.set(name, fresh);
      this.step.prometheus.userGauge(otelInstrumentName(name), () => fresh.value);
    }
  }

  /** One sample of step.minibatch.duration, with the attempt span as exemplar. */
  duration(seconds: number, outcome: AttemptOutcome, exemplar: SpanContext): void {
    this.step.instruments.record('minibatchDuration', seconds, { outcome }, exemplar);
  }

  retry(): void {
    this.step.instruments.record('retries', 1);
  }

  timeout(): void {
    this.step.instruments.record('timeouts', 1);
  }

  workerRestart(): void {
    this.step.instruments.record('workerRestarts', 1);
  }

  /** At the start: an unused error budget, and the items expected when they are known (else expect() once they are). */
  start(items: number | undefined): void {
    if (items !== undefined) this.expect(items);
    this.step.instruments.record('errorBudgetUsed', 0);
  }

  expect(items: number): void {
    this.step.instruments.record('itemsExpected', items);
  }

  /** The error budget used, when it changed (error_threshold set). */
  budget(acc: Accounting, errorThreshold: number): void {
    if (errorThreshold < 0 || acc.itemsFailed === this.budgetRecorded) return;
    this.budgetRecorded = acc.itemsFailed;
    this.step.instruments.record('errorBudgetUsed', acc.itemsFailed / Math.max(1, errorThreshold));
  }

  /**
   * The mini-batch and item counters and the progress gauge go to the instruments once per tick
   * and at the end, not per mini-batch: a scrape or an export sees them at most one tick late.
   */
  counts(acc: Accounting): void {
    const ins = this.step.instruments;
    const r = this.recorded;
    if (acc.mbSucceeded > r.mbSucceeded) ins.record('minibatches', acc.mbSucceeded - r.mbSucceeded, { outcome: 'success' });
    if (acc.mbFailed > r.mbFailed) ins.record('minibatches', acc.mbFailed - r.mbFailed, { outcome: 'failure' });
    if (acc.itemsSucceeded > r.itemsSucceeded) ins.record('items', acc.itemsSucceeded - r.itemsSucceeded, { outcome: 'success' });
    if (acc.itemsFailed > r.itemsFailed) ins.record('items', acc.itemsFailed - r.itemsFailed, { outcome: 'failure' });
    if (acc.lastFinish !== r.lastFinish && acc.lastFinish > 0) ins.record('progressTimestamp', acc.lastFinish / 1000);
    this.recorded = { mbSucceeded: acc.mbSucceeded, mbFailed: acc.mbFailed, itemsSucceeded: acc.itemsSucceeded, itemsFailed: acc.itemsFailed, lastFinish: acc.lastFinish };
  }
}
