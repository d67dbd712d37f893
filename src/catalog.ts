// The metric catalog: the one truth for instrument names, units, buckets and attributes.
// The OpenTelemetry instruments, the prom-client metrics, the Grafana dashboards and the alert
// rules are all generated from or checked against this list.

export type InstrumentKind = 'counter' | 'histogram' | 'gauge';

/**
 * Bounded metric attributes: the only attribute names a catalog metric may carry (in Prometheus
 * with dots made underscores: `cpu.mode` is `cpu_mode`). `worker` is `main` or `worker-<slot>` (a
 * runner worker's slot, bounded by process_count_per_node), never a pid or a process index.
 */
export const BOUNDED_ATTRIBUTES = [
  'pipeline',
  'step',
  'node',
  'outcome',
  'backend',
  'signal',
  'worker',
  'cpu.mode',
  'disk.io.direction',
  'v8js.heap.space.name',
  'v8js.gc.type',
  'hw.id',
] as const;
export type BoundedAttribute = (typeof BOUNDED_ATTRIBUTES)[number];

/** The step dimensions every metric carries. */
export const STEP_METRIC_ATTRIBUTES = ['pipeline', 'step', 'node'] as const;

export interface CatalogEntry {
  /** OpenTelemetry instrument name. */
  readonly name: string;
  readonly kind: InstrumentKind;
  /** UCUM unit as OpenTelemetry writes it (`s`, `1`, `{item}`). */
  readonly unit: string;
  readonly description: string;
  /** Attributes beyond the step dimensions. */
  readonly attributes: readonly BoundedAttribute[];
  /** Allowed values of `outcome`, where the entry has it. */
  readonly outcomes?: readonly string[];
  /** Explicit histogram bucket boundaries (seconds). */
  readonly buckets?: readonly number[];
  /** A resource sample (src/resources/): recorded every sampling interval, not by the step's own calls. */
  readonly resource?: boolean;
}

/** Buckets of `v8js.gc.duration`: most pauses are under a millisecond, a major GC of a big heap takes seconds. */
export const GC_DURATION_BUCKETS = [0.001, 0.01, 0.1, 1, 10] as const;

export const MINIBATCH_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
] as const;

export const CATALOG = {
  minibatchDuration: {
    name: 'step.minibatch.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of one mini-batch attempt, from dispatch to result.',
    attributes: ['outcome'],
    outcomes: ['success', 'error', 'timeout', 'crash'],
    buckets: MINIBATCH_DURATION_BUCKETS,
  },
  minibatches: {
    name: 'step.minibatches',
    kind: 'counter',
    unit: '{minibatch}',
    description: 'Mini-batches finished, by final outcome.',
    attributes: ['outcome'],
    outcomes: ['success', 'failure'],
  },
  items: {
    name: 'step.items',
    kind: 'counter',
    unit: '{item}',
    description: 'Input items processed, by outcome.',
    attributes: ['outcome'],
    outcomes: ['success', 'failure'],
  },
  itemsExpected: {
    name: 'step.items.expected',
    kind: 'gauge',
    unit: '{item}',
    description: 'Input items this step (node) has to process.',
    attributes: [],
  },
  retries: {
    name: 'step.minibatch.retries',
    kind: 'counter',
    unit: '{retry}',
    description: 'Mini-batch attempts beyond the first.',
    attributes: [],
  },
  timeouts: {
    name: 'step.minibatch.timeouts',
    kind: 'counter',
    unit: '{timeout}',
    description: 'Mini-batch attempts killed at run_invocation_timeout.',
    attributes: [],
  },
  workerRestarts: {
    name: 'step.worker.restarts',
    kind: 'counter',
    unit: '{restart}',
    description: 'Worker processes replaced after a crash or a timeout.',
    attributes: [],
  },
  errorBudgetUsed: {
    name: 'step.error_budget.used',
    kind: 'gauge',
    unit: '1',
    description: 'Failed items as a fraction of error_threshold (1 means the threshold is reached).',
    attributes: [],
  },
  progressTimestamp: {
    name: 'step.progress.timestamp',
    kind: 'gauge',
    unit: 's',
    description: 'Unix time at which the last mini-batch finished.',
    attributes: [],
  },
  running: {
    name: 'step.running',
    kind: 'gauge',
    unit: '{step}',
    description: '1 while the step runs, 0 once it has ended.',
    attributes: [],
  },
  exportFailures: {
    name: 'step.export.failures',
    kind: 'counter',
    unit: '{batch}',
    description: 'Export batches a backend did not accept.',
    attributes: ['backend', 'signal'],
  },

  // Resources (src/resources/), named as OpenTelemetry's semantic conventions name them. Per
  // process (with `worker`): sampled every STEP_TELEMETRY_RESOURCES_INTERVAL_MS in every step
  // process and runner worker. Per node (without `worker`): sampled by process index 0 only.
  processCpuTime: {
    name: 'process.cpu.time',
    kind: 'counter',
    resource: true,
    unit: 's',
    description: 'CPU time of the process, by mode (user, system).',
    attributes: ['worker', 'cpu.mode'],
  },
  processCpuUtilization: {
    name: 'process.cpu.utilization',
    kind: 'gauge',
    resource: true,
    unit: '1',
    description: 'CPU time of the process over the last sampling interval, divided by the interval and the number of CPUs.',
    attributes: ['worker'],
  },
  processMemoryUsage: {
    name: 'process.memory.usage',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'Resident memory (RSS) of the process.',
    attributes: ['worker'],
  },
  processMemoryLimit: {
    name: 'step.process.memory.limit',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'The memory limit of the process: its cgroup memory limit, else the machine memory.',
    attributes: ['worker'],
  },
  processMemoryExternal: {
    name: 'step.process.memory.external',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'Memory of C++ objects bound to JavaScript objects (Buffers, ArrayBuffers), outside the V8 heap.',
    attributes: ['worker'],
  },
  processDiskIo: {
    name: 'process.disk.io',
    kind: 'counter',
    resource: true,
    unit: 'By',
    description: 'Bytes the process read from and wrote to storage (Linux /proc/self/io), by direction.',
    attributes: ['worker', 'disk.io.direction'],
  },
  heapUsed: {
    name: 'v8js.memory.heap.used',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'V8 heap memory used, by heap space.',
    attributes: ['worker', 'v8js.heap.space.name'],
  },
  heapSpaceSize: {
    name: 'v8js.memory.heap.limit',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'V8 heap memory reserved (space_size), by heap space: the heap total.',
    attributes: ['worker', 'v8js.heap.space.name'],
  },
  heapSizeLimit: {
    name: 'step.process.heap.size_limit',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: "V8's heap size limit (heap_size_limit: --max-old-space-size and the young generation).",
    attributes: ['worker'],
  },
  gcDuration: {
    name: 'v8js.gc.duration',
    kind: 'histogram',
    resource: true,
    unit: 's',
    description: 'Garbage collection pauses, by kind (major, minor, incremental, weakcb).',
    attributes: ['worker', 'v8js.gc.type'],
    buckets: GC_DURATION_BUCKETS,
  },
  eventLoopDelayP50: {
    name: 'nodejs.eventloop.delay.p50',
    kind: 'gauge',
    resource: true,
    unit: 's',
    description: 'Median event loop delay over the last sampling interval.',
    attributes: ['worker'],
  },
  eventLoopDelayP99: {
    name: 'nodejs.eventloop.delay.p99',
    kind: 'gauge',
    resource: true,
    unit: 's',
    description: '99th percentile of the event loop delay over the last sampling interval.',
    attributes: ['worker'],
  },
  eventLoopDelayMax: {
    name: 'nodejs.eventloop.delay.max',
    kind: 'gauge',
    resource: true,
    unit: 's',
    description: 'Longest event loop delay over the last sampling interval (a synchronous block shows here).',
    attributes: ['worker'],
  },
  eventLoopUtilization: {
    name: 'nodejs.eventloop.utilization',
    kind: 'gauge',
    resource: true,
    unit: '1',
    description: 'Share of the last sampling interval the event loop was busy.',
    attributes: ['worker'],
  },
  systemCpuUtilization: {
    name: 'system.cpu.utilization',
    kind: 'gauge',
    resource: true,
    unit: '1',
    description: "The node's CPU time over the last sampling interval by mode (user, nice, system, idle, iowait, interrupt, steal), as a share of all CPUs.",
    attributes: ['cpu.mode'],
  },
  systemCpuCount: {
    // not the conventions' system.cpu.logical.count: a gauge named *_count in Prometheus is what promtool lints against
    name: 'step.node.cpus',
    kind: 'gauge',
    resource: true,
    unit: '{cpu}',
    description: 'Logical CPUs of the node (the conventions name it system.cpu.logical.count).',
    attributes: [],
  },
  systemLoad1m: {
    name: 'system.cpu.load_average.1m',
    kind: 'gauge',
    resource: true,
    unit: '{thread}',
    description: "The node's 1-minute load average (runnable and waiting threads; the collector hostmetrics receiver's name).",
    attributes: [],
  },
  systemMemoryLimit: {
    name: 'system.memory.limit',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'Total memory of the node.',
    attributes: [],
  },
  systemMemoryAvailable: {
    name: 'system.memory.linux.available',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'Memory available for new work without swapping (MemAvailable).',
    attributes: [],
  },
  gpuUtilization: {
    name: 'hw.gpu.utilization',
    kind: 'gauge',
    resource: true,
    unit: '1',
    description: 'Share of time a GPU was busy (nvidia-smi utilization.gpu), by device index.',
    attributes: ['hw.id'],
  },
  gpuMemoryUsage: {
    name: 'hw.gpu.memory.usage',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'GPU memory used, by device index.',
    attributes: ['hw.id'],
  },
  gpuMemoryLimit: {
    name: 'hw.gpu.memory.limit',
    kind: 'gauge',
    resource: true,
    unit: 'By',
    description: 'GPU memory size, by device index.',
    attributes: ['hw.id'],
  },
} as const satisfies Record<string, CatalogEntry>;

export type CatalogKey = keyof typeof CATALOG;

const UNIT_WORDS: Record<string, string> = {
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  min: 'minutes',
  h: 'hours',
  d: 'days',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  '%': 'percent',
};

/** A name or label with every character Prometheus does not allow replaced, as the collector does. */
export function sanitizePrometheusName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_+/g, '_');
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return out;
}

/**
 * The Prometheus name that the OpenTelemetry Collector's OTLP-to-Prometheus translation gives an
 * instrument (with metric suffixes on): unit words appended, `{annotations}` dropped, `_ratio`
 * for gauges of unit `1`, `_total` for counters. prom-client registers exactly this name.
 */
export function prometheusName(entry: Pick<CatalogEntry, 'name' | 'kind' | 'unit'>): string {
  let name = sanitizePrometheusName(entry.name);
  const unit = entry.unit.replace(/\{[^}]*\}/g, '').trim();
  let suffix = '';
  if (unit === '1') {
    if (entry.kind === 'gauge') suffix = 'ratio';
  } else if (unit.includes('/')) {
    const [num, den] = unit.split('/', 2);
    const a = UNIT_WORDS[num] ?? num;
    const b = UNIT_WORDS[den] ?? den;
    suffix = [a, b && `per_${b === 'seconds' ? 'second' : b}`].filter(Boolean).join('_');
  } else if (unit) {
    suffix = UNIT_WORDS[unit] ?? unit;
  }
  if (suffix) {
    const clean = sanitizePrometheusName(suffix);
    if (!name.endsWith(`_${clean}`)) name = `${name}_${clean}`;
  }
  if (entry.kind === 'counter' && !name.endsWith('_total')) name = `${name}_total`;
  return name.replace(/_+/g, '_');
}

/** Label names a catalog metric carries in Prometheus: the step dimensions, then its own. */
export function prometheusLabels(entry: CatalogEntry): string[] {
  return [...STEP_METRIC_ATTRIBUTES, ...entry.attributes.map(sanitizePrometheusName)];
}
