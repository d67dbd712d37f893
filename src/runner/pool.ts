// Worker processes: fork, IPC, captured stdout/stderr, and stopping within a bound. A worker is
// never reused after a timeout or a crash: the runner replaces it with a fresh process.
// A worker is forked first (forkWorkers(): the first ones while the runner's own step starts, so
// that both start-ups overlap) and given its job later (begin(): the handlers, its console file and
// the start message with the step's environment); what it does before that waits for begin().
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StepIdentity } from '../types.js';
import { closeQuietly } from '../util/fd.js';
import type { ResolvedRunConfig } from './config.js';
import { isNativeFrame, v8FatalLine } from './crash.js';
import type { InitErrorMessage, ParentMessage, SerializedError, ShutdownMessage, StartMessage, WorkerMessage } from './protocol.js';

const STDERR_TAIL_LINES = 40;
const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** With a callback, a failed send does not become an 'error' event; the worker's exit tells the story. */
function onSendError(): void {}

export type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'exited';

/** Why a worker process ended, for the worker summary. */
export type WorkerEndReason = 'stopped' | 'crashed' | 'killed-timeout' | 'init-failed' | 'aborted' | 'terminated';

export interface WorkerHandlers {
  onMessage(worker: WorkerProcess, message: WorkerMessage): void;
  onExit(worker: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void;
  /** A line of the worker's stdout or stderr (without its line break). */
  onOutputLine(worker: WorkerProcess, line: string, stream: 'stdout' | 'stderr'): void;
}

export interface WorkerForkOptions {
  readonly slot: number;
  readonly processIndex: number;
  readonly entryScript: string;
  readonly args: readonly string[];
  /** The process's environment (see forkEnvironment); the step's part comes with the start message. */
  readonly env: NodeJS.ProcessEnv;
}

/** What a forked worker is given to run (begin()). */
export interface WorkerJob {
  readonly start: StartMessage;
  /** Where the worker's raw stdout/stderr go (created on the first byte); undefined: nowhere. */
  readonly consoleFile: string | undefined;
  readonly handlers: WorkerHandlers;
}

/** How long a worker asked to stop may take: its step's flush bound (STEP_TELEMETRY_FLUSH_TIMEOUT_MS) and a second. */
export function workerGraceMs(env: NodeJS.ProcessEnv): number {
  const n = Number(env.STEP_TELEMETRY_FLUSH_TIMEOUT_MS);
  return (Number.isInteger(n) && n >= 0 ? n : 5000) + 1000;
}

/** The run folder's root (`STEP_TELEMETRY_DIR`), from the run folder and the identity. */
function telemetryDir(runFolder: string, nodeCount: number): string {
  let dir = path.dirname(path.dirname(runFolder));
  if (nodeCount > 1) dir = path.dirname(dir);
  return dir;
}

/**
 * The environment a worker process is forked with: the runner's and the job's extra variables,
 * without those that only the runner's step may use. The step's identity comes later, with the
 * start message (stepEnvironment), and is set before the worker's step starts.
 */
export function forkEnvironment(config: ResolvedRunConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...config.environmentVariables };
  delete env.STEP_TELEMETRY_PROCESS_INDEX;
  // one Prometheus endpoint (and push) per job: the runner's, which the workers' scalars reach
  delete env.STEP_TELEMETRY_PROMETHEUS_PORT;
  delete env.STEP_TELEMETRY_PUSHGATEWAY_URL;
  return env;
}

/**
 * What a worker's step takes from the runner's (on top of forkEnvironment): its identity, trace (the
 * traceparent of the runner's step span), run folder and switches.
 */
export function stepEnvironment(config: ResolvedRunConfig, id: StepIdentity, traceparent: string, runFolder: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    STEP_TELEMETRY_STEP_NAME: id.stepName,
    STEP_TELEMETRY_STEP_ID: id.stepId,
    STEP_TELEMETRY_RUN_ID: id.runId,
    STEP_TELEMETRY_PIPELINE_RUN_ID: id.pipelineRunId,
    STEP_TELEMETRY_PIPELINE_NAME: id.pipelineName,
    STEP_TELEMETRY_NODE_RANK: String(config.nodeRank),
    STEP_TELEMETRY_NODE_COUNT: String(config.nodeCount),
    STEP_TELEMETRY_LOG_LEVEL: config.loggingLevel,
    STEP_TELEMETRY_CONSOLE: 'false',
    STEP_TELEMETRY_HANDLE_PROCESS_EVENTS: 'true',
    TRACEPARENT: traceparent,
  };
  if (runFolder) env.STEP_TELEMETRY_DIR = telemetryDir(runFolder, id.nodeCount);
  else env.STEP_TELEMETRY_LOCAL = 'false';
  return env;
}

/** The first `count` workers (slots 0.., process indexes 1..), forked now; the scheduler gives them their jobs. */
export function forkWorkers(config: ResolvedRunConfig, count: number): WorkerProcess[] {
  const env = forkEnvironment(config);
  return Array.from({ length: count }, (_, slot) => new WorkerProcess({ slot, processIndex: slot + 1, entryScript: config.entryScript, args: config.arguments, env }));
}

/** The worker module next to this file (worker.js in dist, worker.ts when run from source). */
function workerModule(): { file: string; fromSource: boolean } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  return { file: path.join(path.dirname(here), fromSource ? 'worker.ts' : 'worker.js'), fromSource };
}

let tsxLoader: string | undefined;
/** `--import <tsx>` so that TypeScript entry scripts run without a build step. */
function tsxImport(): string[] {
  tsxLoader ??= import.meta.resolve('tsx');
  return ['--import', tsxLoader];
}

export function needsTypeScript(entryScript: string): boolean {
  return TS_EXTENSIONS.has(path.extname(entryScript).toLowerCase());
}

export class WorkerProcess {
  readonly slot: number;
  readonly name: string;
  readonly processIndex: number;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  readonly startedAt = Date.now();
  state: WorkerState = 'starting';
  readyAt: number | undefined;
  initMs: number | undefined;
  exitedAt: number | undefined;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  endReason: WorkerEndReason | undefined;
  /** Set when the runner ends this worker on purpose: its exit is not a crash. */
  expectingExit = false;
  /** terminate() was called: the SIGTERM is sent and the SIGKILL scheduled. */
  private terminating = false;
  readonly stderrTail: string[] = [];
  /** V8's fatal-error line (e.g. "... JavaScript heap out of memory"), when the worker printed one. */
  fatalError: string | undefined;
  /** Why loading the entry script or init() failed, as the worker said before it exited. */
  initError: { readonly phase: InitErrorMessage['phase']; readonly error: SerializedError } | undefined;
  /** The entry script exports shutdown() (said when ready): stopping this worker may take shutdown_timeout longer. */
  hasShutdown = false;
  /** How its shutdown() ended, as the worker said. */
  shutdown: Omit<ShutdownMessage, 'type'> | undefined;
  // statistics for the worker summary
  attempts = 0;
  failedAttempts = 0;
  itemsSucceeded = 0;
  itemsFailed = 0;
  busyMs = 0;
  /** Moving average of this worker's attempt durations as it measured them, ms (the runner's chunk size). */
  recentAttemptMs: number | undefined;
  private consoleFd: number | undefined;
  private readonly exited: Promise<void>;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Set by begin(); until then what the process says or does waits in `early`. */
  private job: WorkerJob | undefined;
  private early: (() => void)[] | undefined = [];
  /** The worker said it listens (its first message): the start message goes then. */
  private listening = false;

  constructor(options: WorkerForkOptions) {
    this.slot = options.slot;
    this.name = `worker-${options.slot}`;
    this.processIndex = options.processIndex;
    const { file, fromSource } = workerModule();
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
    const hasTsx = execArgv.some((a) => /(^|[/\\@])tsx([/\\]|$)/.test(a) || a === 'tsx');
    if ((fromSource || needsTypeScript(options.entryScript)) && !hasTsx) execArgv.push(...tsxImport());
    this.child = fork(file, [...options.args], {
      env: options.env,
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.pid = this.child.pid;
    this.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (done) return;
        done = true;
        for (const t of this.timers) clearTimeout(t);
        this.state = 'exited';
        this.exitedAt = Date.now();
        this.exitCode = code;
        this.exitSignal = signal;
        this.deliver(() => {
          this.closeConsole();
          this.job!.handlers.onExit(this, code, signal);
        });
        resolve();
      };
      // 'close' comes after the stdio pipes are drained, so the stderr tail is complete; a
      // grandchild holding the pipes open must not delay the news, hence the bound.
      this.child.once('exit', (code, signal) => {
        const timer = setTimeout(() => finish(code, signal), 500);
        this.child.once('close', () => {
          clearTimeout(timer);
          finish(code, signal);
        });
      });
      this.child.on('error', (error) => {
        if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) return; // e.g. a failed kill(): the process lives on
        this.pushLine(`failed to start the worker process: ${error.message}`, 'stderr');
        // 'exit' may or may not follow a spawn error
        setImmediate(() => finish(this.child.exitCode ?? 1, this.child.signalCode));
      });
    });
    // a worker says it listens, then speaks only after its start message: no other message comes before begin()
    this.child.on('message', (message: WorkerMessage) => {
      if (message.type !== 'listening') this.job?.handlers.onMessage(this, message);
      else if (!this.listening) {
        this.listening = true;
        if (this.job) this.send(this.job.start);
      }
    });
    this.capture(this.child.stdout, 'stdout');
    this.capture(this.child.stderr, 'stderr');
  }

  /** Give the forked process its job: what it printed or did so far reaches `job` now, then the start message. */
  begin(job: WorkerJob): void {
    if (this.job) return;
    this.job = job;
    if (this.listening) this.send(job.start);
    const early = this.early!;
    this.early = undefined;
    for (const f of early) f();
  }

  /** Run `f` now if the worker has its job, else when it gets it. */
  private deliver(f: () => void): void {
    if (this.early) this.early.push(f);
    else f();
  }

  /** Send a message; false when the channel is gone (the exit handler then sees the worker end). */
  send(message: ParentMessage): boolean {
    if (!this.child.connected) return false;
    try {
      this.child.send(message, onSendError);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves when the process has exited. */
  whenExited(): Promise<void> {
    return this.exited;
  }

  get alive(): boolean {
    return this.state !== 'exited';
  }

  /** Time its shutdown() may take, when the worker is ready and has one. */
  private get shutdownMs(): number {
    return this.hasShutdown && this.readyAt !== undefined ? (this.job?.start.shutdownTimeoutMs ?? 0) : 0;
  }

  /** Ask the worker to end its step and exit; SIGTERM after `graceMs` (and its shutdown() bound), SIGKILL after `graceMs` more. */
  stop(graceMs: number, reason: WorkerEndReason = 'stopped'): Promise<void> {
    if (!this.alive) return this.exited;
    this.expectingExit = true;
    this.endReason ??= reason;
    this.state = 'stopping';
    if (!this.send({ type: 'stop' })) this.signal('SIGTERM');
    const grace = graceMs + this.shutdownMs;
    this.timers.push(setTimeout(() => this.signal('SIGTERM'), grace));
    this.timers.push(setTimeout(() => this.signal('SIGKILL'), grace + graceMs));
    return this.exited;
  }

  /**
   * A stop message that says `terminated`, and SIGTERM with it for a worker that cannot read it yet
   * (it calls shutdown(), flushes and exits 143 either way), SIGKILL after `graceMs` and its
   * shutdown() bound (not for a worker killed at its run_invocation_timeout). Once only: a second
   * SIGTERM would cut the worker's flush short.
   */
  terminate(graceMs: number, reason: WorkerEndReason): Promise<void> {
    if (!this.alive || this.terminating) return this.exited;
    this.terminating = true;
    this.expectingExit = true;
    this.endReason ??= reason;
    this.state = 'stopping';
    this.send({ type: 'stop', terminated: true });
    this.signal('SIGTERM');
    this.timers.push(setTimeout(() => this.signal('SIGKILL'), graceMs + (reason === 'killed-timeout' ? 0 : this.shutdownMs)));
    return this.exited;
  }

  kill(): void {
    this.expectingExit = true;
    this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }

  private capture(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.writeConsole(name === 'stderr' ? chunk.replace(/^(?=.)/gm, '[stderr] ') : chunk);
      const text = partial + chunk;
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.pushLine(line, name);
    });
    stream.on('end', () => {
      if (partial) this.pushLine(partial, name);
      partial = '';
    });
  }

  private pushLine(line: string, stream: 'stdout' | 'stderr'): void {
    if (stream === 'stderr') {
      this.fatalError ??= v8FatalLine(line);
      if (isNativeFrame(line)) return; // V8's native frames say nothing to the user; console.process-N.log keeps them
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    }
    this.deliver(() => this.job!.handlers.onOutputLine(this, line, stream));
  }

  private writeConsole(text: string): void {
    if (this.early) {
      this.early.push(() => this.writeConsole(text));
      return;
    }
    const file = this.job!.consoleFile;
    if (!file) return;
    try {
      if (this.consoleFd === undefined) {
        // the run folder may not be there yet: a worker can speak before the runner's step is up
        fs.mkdirSync(path.dirname(file), { recursive: true });
        this.consoleFd = fs.openSync(file, 'a');
      }
      fs.writeSync(this.consoleFd, text);
    } catch {
      // the console copy is a convenience; the tail is kept in memory
    }
  }

  private closeConsole(): void {
    this.consoleFd = closeQuietly(this.consoleFd);
  }
}
