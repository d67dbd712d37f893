// A runner worker's start-up: when its step starts, and what waits for it. The step's modules
// (winston, OpenTelemetry) are most of a worker's start-up, and nothing loads them before the step
// starts (worker-telemetry.ts). It starts before init() in a replacement worker, and when the entry
// script may use it (entry-needs.ts); else, in a slot's first worker (`quickStart`), an entry
// script that uses nothing, or only its context's logger (then the process logger holds the
// records: worker-logging.ts), runs init() and its first mini-batch first, and the step starts once
// their results are sent, an attempt or init() has awaited for HOLD_MS, or at the worker's end
// (the init span is recorded with its own times). The second mini-batch waits for the step: its
// resource sampling (the event loop, GC, memory) covers every mini-batch but the first.
//
// The attempts' trace contexts (`contexts`) are the step's, or the process logger's before it for
// an entry script that only logs. An entry script that uses nothing of its telemetry runs its
// attempts outside them, also once the step is up: nothing it does records into them, and
// entering a context per attempt would turn on async context tracking (a hook on every promise
// and timer of the worker) for nothing. Should the script itself have loaded OpenTelemetry or
// winston by the time the step starts (a lazy import in init() or its first mini-batch), its
// attempts get their contexts from then on.
import { performance } from 'node:perf_hooks';
import type { Step } from '../step.js';
import { entryNeeds, telemetryLoaded, type EntryNeeds } from './entry-needs.js';
import { HOLD_MS } from './lane.js';
import type { StartMessage } from './protocol.js';
import type { EntryScript, InitContext } from './types.js';

type WorkerTelemetry = typeof import('./worker-telemetry.js');
/** An attempt's trace context, and running a function in it. */
export type AttemptContexts = Pick<WorkerTelemetry, 'attemptContext' | 'runIn'>;

/** The signals whose handling stays the worker's own once its step is up (worker.ts). */
export const WORKER_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export class WorkerStart {
  /** The step, once up. */
  step: Step | undefined;
  /** The contexts run() is called in: undefined before the step (unless the entry script only logs), and for an entry script that uses nothing. */
  contexts: AttemptContexts | undefined;
  private telemetry: WorkerTelemetry | undefined;
  private starting: Promise<Step> | undefined;
  private needs: EntryNeeds = 'step';
  /** Attempts begun: the second waits for the step. */
  private attemptsBegun = 0;
  /** init() ran before the step was up: its span is recorded when the step starts. */
  private earlyInit: { start: number; end: number; error?: unknown } | undefined;

  /**
   * `context`: what init() and run() get (`logger` and `step` are set on it once the step is up);
   * `onStep`: called with the step as soon as it is up, before anything waiting for it goes on.
   */
  constructor(
    private readonly message: StartMessage,
    private readonly context: InitContext,
    private readonly onStep: (step: Step) => void,
  ) {}

  /** The step has begun to start (or is up). */
  get begun(): boolean {
    return this.starting !== undefined;
  }

  /**
   * The entry script is imported: start the step before init() when it may use it (or this is a
   * replacement worker), give it the process logger when it uses only that, or nothing yet.
   */
  async prepare(entry: Pick<EntryScript, 'init' | 'run'>): Promise<void> {
    this.needs = this.message.quickStart ? entryNeeds(entry) : 'step';
    if (this.needs === 'step') await this.start();
    else if (this.needs === 'logger') {
      // winston and OpenTelemetry's API, not the SDK: the records wait for the step
      const logging = await import('./worker-logging.js');
      this.contexts = logging;
      Object.assign(this.context, { logger: logging.workerLogger() });
    }
  }

  /** init(): in its span when the step is up; before it otherwise (one that awaits for HOLD_MS has the step start meanwhile). */
  async init(init: NonNullable<EntryScript['init']>): Promise<void> {
    if (this.step) {
      await this.step.span('init', () => init(this.context), { attributes: { 'worker.id': this.message.worker } });
      return;
    }
    const began = Date.now();
    const meanwhile = setTimeout(() => this.soon(), HOLD_MS);
    try {
      await init(this.context);
      this.earlyInit = { start: began, end: Date.now() };
    } catch (error) {
      this.earlyInit = { start: began, end: Date.now(), error };
      throw error;
    } finally {
      clearTimeout(meanwhile);
      this.recordEarlyInit();
    }
  }

  /** An attempt begins: undefined when it may run now, else the step it waits for (the second attempt of a worker that started without it). */
  beforeAttempt(): Promise<Step> | undefined {
    const wait = this.step === undefined && this.attemptsBegun > 0 ? this.start() : undefined;
    this.attemptsBegun++;
    return wait;
  }

  /** Start the step now unless it has begun to (the first results are out, an attempt or init() awaits, ...). */
  soon(): void {
    if (this.starting === undefined) void this.start();
  }

  /** The contexts for the worker's own records about an attempt (the step is up): the attempts' own, or the step's. */
  recordContexts(): AttemptContexts {
    return this.contexts ?? this.telemetry!;
  }

  /**
   * This worker's step, started once. The worker's SIGTERM/SIGINT handling stays its own. A step
   * that cannot start ends the worker.
   */
  start(): Promise<Step> {
    if (this.starting) return this.starting;
    this.starting = (async () => {
      const m = this.message;
      // the entry script loaded OpenTelemetry or winston itself since it was imported: it may record in its attempts' contexts
      if (this.needs === 'none' && telemetryLoaded()) this.needs = 'step';
      const before = new Map(WORKER_SIGNALS.map((sig) => [sig, process.listeners(sig)] as const));
      const t = await import('./worker-telemetry.js');
      const s = await t.startStep({ processIndex: m.processIndex, mainScript: m.entryScript, rootSpanKind: 'internal', begun: { time: performance.timeOrigin } });
      takeSignals(before);
      this.telemetry = t;
      if (this.needs !== 'none') this.contexts = t;
      this.step = s;
      this.onStep(s);
      Object.assign(this.context, { logger: s.logger, step: s });
      this.recordEarlyInit();
      return s;
    })();
    this.starting.catch((error: unknown) => {
      process.stderr.write(`the worker's step could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    });
    return this.starting;
  }

  /** The span of an init() that ran before the step was up, once both are over. */
  private recordEarlyInit(): void {
    if (this.step === undefined || this.earlyInit === undefined) return;
    const { start: began, end, error } = this.earlyInit;
    this.earlyInit = undefined;
    this.telemetry!.recordEarlySpan(this.step, 'init', began, end, { 'worker.id': this.message.worker }, error);
  }
}

/** The step's own SIGTERM/SIGINT handlers (those added since `before`) would end it at once; the worker's call shutdown() first. */
function takeSignals(before: ReadonlyMap<NodeJS.Signals, readonly unknown[]>): void {
  for (const sig of WORKER_SIGNALS) {
    const had = before.get(sig) ?? [];
    for (const l of process.listeners(sig)) if (!had.includes(l)) process.off(sig, l as (signal: NodeJS.Signals) => void);
  }
}
