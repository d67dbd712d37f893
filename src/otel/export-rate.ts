// The export rate policy of spans recorded at runner rates (the mini-batch attempt spans, see
// FinishedSpans). One exporter sends one batch at a time: at thousands of attempts a second its
// queue fills, and the batch span processor would drop whatever arrives next, at random. Instead:
// - each such span is decided when its trace context is handed out (the attempt is dispatched, so
//   the worker's own spans follow the sampled flag of its traceparent): kept with the policy's
//   probability, planned every 100 ms so that the spans decided reach what the slowest trace
//   backend's exporter can take: 80 % of what it delivered per second in its recent batches while
//   its queue is at most half full, less as it fills the rest (before the first answer, the room
//   left in the queue caps it);
// - a span that must be seen (an error, a retry, failed items, one slower than the running 99th
//   percentile) is exported whatever was decided, with its weight of 1;
// - an exported span kept with a probability below 1 states it, for backends that re-weight: the
//   attribute `step.sampling.probability` (Tempo's `span_multiplier_key`), the tracestate threshold
//   `ot=th:` of OpenTelemetry's probability sampling with the span's own randomness `rv:` (Tempo's
//   `enable_tracestate_span_multiplier`), and `microsoft.sample_rate` for Application Insights.
// The metrics and the run folder stay exact: spans.jsonl has every span, those not exported marked.
import { createTraceState, type Attributes, type TraceState } from '@opentelemetry/api';

export const SAMPLING_PROBABILITY = 'step.sampling.probability';
export const AZURE_SAMPLE_RATE = 'microsoft.sample_rate';

/** Probabilities are kept to 16 bits of the threshold (1/65,536), as their tracestate encoding. */
const STEPS = 65_536;
const MIN_STEPS_KEPT = 64; // 1/1,024
/** The share of the slowest exporter's throughput the policy plans for (the rest: other spans, bursts). */
const HEADROOM = 0.8;
const WINDOW_MS = 100;

/** A trace backend's export queue, as the policy sees it. */
export interface ExportQueue {
  /** Spans in the queue now. */
  queued(): number;
  readonly limit: number;
  readonly batch: number;
  /** What spans that may be sampled out can fill (`sheddableLimit`). */
  readonly sheddable: number;
}

/** The part of a queue spans that may be sampled out can fill: one batch and three quarters of the room beyond; the rest is kept for those that must be seen. */
export function sheddableLimit(limit: number, batch: number): number {
  return batch + 0.75 * (limit - batch);
}

export class ExportRate {
  /** The probability a span that may be sampled out is kept with now (a multiple of 1/65,536). */
  probability = 1;
  /** The lowest probability used so far. */
  lowest = 1;
  /** Spans sampled out by the policy (each kept in spans.jsonl, marked). */
  sampledOut = 0;
  /** Spans kept by `decide()` and not yet recorded: they will reach the queues. */
  private outstanding = 0;
  private readonly queues: ExportQueue[] = [];
  /** Spans per second each queue's exporter took in its recent full batches (unknown until one was answered). */
  private readonly throughput = new Map<ExportQueue, number>();
  private decisions = 0;
  private windowStart = performance.now();
  private windowDecisions = 0;

  add(queue: ExportQueue): void {
    this.queues.push(queue);
  }

  /**
   * The head decision for a span recorded later: the probability it is kept with, or 0 (sampled
   * out unless it must be seen). None is kept while a queue, with the spans kept and not yet
   * recorded, would not have room for it.
   */
  decide(): number {
    if ((++this.decisions & 63) === 0) this.plan();
    const p = this.probability;
    if (p < 1 && Math.random() >= p) return 0;
    for (const q of this.queues) if (q.queued() + this.outstanding >= q.sheddable) return 0;
    this.outstanding++;
    return p;
  }

  /** A span `decide()` kept was recorded. */
  recorded(): void {
    if (this.outstanding > 0) this.outstanding--;
  }

  /** `q`'s exporter delivered `items` spans in `ms`: a batch of at least half the size tells its throughput. */
  delivered(q: ExportQueue, items: number, ms: number): void {
    if (items < q.batch / 2 || ms <= 0) return;
    const now = (items * 1000) / ms;
    const before = this.throughput.get(q);
    this.throughput.set(q, before === undefined ? now : 0.7 * before + 0.3 * now);
  }

  /**
   * A span entered `q`. Before its first full batch was answered (its exporter's throughput
   * unknown: a new connection), a queue past half full (see `fill`) caps the probability by the
   * room left: from 1 at half full down to the least at full.
   */
  offered(q: ExportQueue): void {
    if (this.throughput.has(q)) return;
    const cap = 2 * (1 - this.fill(q));
    if (cap < this.probability) this.setProbability(cap);
  }

  /**
   * How full `q` is for the policy, counting the spans kept and not yet recorded: 0 with up to one
   * batch, 1 at what spans that may be sampled out can fill.
   */
  private fill(q: ExportQueue): number {
    const f = (q.queued() + this.outstanding - q.batch) / (q.sheddable - q.batch);
    return f > 0 ? Math.min(1, f) : 0;
  }

  /**
   * Every 100 ms of decisions: the probability that brings them to what the slowest exporter can
   * take: 80 % of its recent throughput while its queue is at most half full (see `fill`), down to
   * none as it fills the rest.
   */
  private plan(): void {
    const now = performance.now();
    const ms = now - this.windowStart;
    if (ms < WINDOW_MS) return;
    const perSecond = ((this.decisions - this.windowDecisions) * 1000) / ms;
    this.windowStart = now;
    this.windowDecisions = this.decisions;
    let room = Infinity;
    for (const [q, throughput] of this.throughput) room = Math.min(room, HEADROOM * throughput * Math.min(1, 2 * (1 - this.fill(q))));
    if (room !== Infinity) this.setProbability(room / perSecond);
  }

  private setProbability(p: number): void {
    const kept = Math.min(STEPS, Math.max(MIN_STEPS_KEPT, Math.round(p * STEPS)));
    this.probability = kept / STEPS;
    if (this.probability < this.lowest) this.lowest = this.probability;
  }
}

const TWO_56 = 2 ** 56;
const TWO_28 = 2 ** 28;

/**
 * How a span kept with probability `p` states it: the probability combined with a threshold the
 * inherited tracestate already carries (a pipeline sampled upstream), and the tracestate with the
 * `ot` entry's threshold `th` (the rejection threshold (1 − p) × 2^56 to 16 bits, trailing zeros
 * dropped) and randomness `rv` (14 hex digits, uniform at or above the threshold: what a draw that
 * kept the span looks like); other `ot` sub-keys are kept.
 */
export function sampledState(traceState: TraceState | undefined, p: number): { probability: number; traceState: TraceState } {
  const ot = traceState?.get('ot') ?? '';
  const others: string[] = [];
  let upstream = 1;
  for (const kv of ot.split(';')) {
    if (kv.startsWith('th:')) {
      const t = parseInt(kv.slice(3).padEnd(14, '0'), 16);
      if (Number.isFinite(t) && t < TWO_56) upstream = 1 - t / TWO_56;
    } else if (kv !== '' && !kv.startsWith('rv:')) others.push(kv);
  }
  const t16 = Math.min(STEPS - 1, Math.round((1 - upstream * p) * STEPS));
  const threshold = t16 * 2 ** 40;
  const rv = threshold + Math.floor(Math.random() * (TWO_56 - threshold));
  const th = t16 === 0 ? '0' : t16.toString(16).padStart(4, '0').replace(/0+$/, '');
  const rvHex = Math.floor(rv / TWO_28).toString(16).padStart(7, '0') + (rv % TWO_28).toString(16).padStart(7, '0');
  return { probability: 1 - t16 / STEPS, traceState: (traceState ?? createTraceState()).set('ot', [`rv:${rvHex}`, `th:${th}`, ...others].join(';')) };
}

/** The attributes that state the probability `p` on an exported span (`azure`: with Application Insights' sample rate too). */
export function samplingAttributes(attributes: Attributes, p: number, azure: boolean): Attributes {
  const out: Attributes = { ...attributes, [SAMPLING_PROBABILITY]: p };
  if (azure) out[AZURE_SAMPLE_RATE] = p * 100;
  return out;
}

/**
 * Whether a duration is among the slowest 1 %: a running estimate of the 99th percentile (a
 * stochastic step up by 5 % on each duration above it, down by 0.05 % on each below, which settles
 * where 1 in 100 is above), trusted after the first 1,000 (it starts at the first duration).
 */
export class SlowTail {
  private q = 0;
  private n = 0;

  /** True when `ms` is above the running 99th percentile. */
  observe(ms: number): boolean {
    const above = ms > this.q;
    if (this.n++ === 0) this.q = Math.max(ms, 0.001);
    else this.q *= above ? 1.05 : 0.9995;
    return above && this.n > 1000;
  }
}
