// The Grafana dashboards, generated from the metric catalog with the Grafana Foundation SDK (its
// 11.6 release line, the Grafana version the docker-compose stack runs). Run
// `npm run dashboards` after a catalog change; test/ops-dashboards.test.ts fails while the
// committed JSON differs from what this code builds.
//
// Every query selects and aggregates only by `pipeline`, `step`, `node` (and the catalog's own
// attributes: `outcome`, `le`, and for resources `worker`, `cpu_mode`, `v8js_gc_type`,
// `disk_io_direction`, `hw_id`): the labels that prom-client's scrape, the Pushgateway and the
// OpenTelemetry Collector's prometheus exporter all carry. `job`, `instance` and `otel_scope_*`
// differ between those paths.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { CATALOG, prometheusName, type CatalogKey } from '../catalog.js';

/** The Grafana version the dashboards are generated for (the SDK's release line). */
export const GRAFANA_VERSION = '11.6';

const PROMETHEUS_DS: dashboard.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** Selector of the dashboard's variables; every query uses it. */
const SEL = 'pipeline=~"$pipeline", step=~"$step", node=~"$node"';
const BY = 'pipeline, step, node';
/** The per-process resource metrics also select and group by `worker` (`main`, or a runner worker's slot). */
const WSEL = `${SEL}, worker=~"$worker"`;
const WBY = `${BY}, worker`;
const RATE = '$__rate_interval';

/** The Prometheus name of a catalog metric (the name prom-client serves and the collector gives). */
export function metricName(key: CatalogKey): string {
  return prometheusName(CATALOG[key]);
}

function sel(key: CatalogKey, extra = '', suffix = ''): string {
  return `${metricName(key)}${suffix}{${SEL}${extra ? `, ${extra}` : ''}}`;
}

/** A per-worker resource metric, selected by the dashboard's variables and `$worker`. */
function wsel(key: CatalogKey, extra = '', suffix = ''): string {
  return `${metricName(key)}${suffix}{${WSEL}${extra ? `, ${extra}` : ''}}`;
}

function query(expr: string, legend: string, refId = 'A', exemplar = false): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .expr(expr)
    .legendFormat(legend)
    .refId(refId)
    .range()
    .exemplar(exemplar)
    .datasource(PROMETHEUS_DS);
}

/** A link to Grafana Explore with a LogQL query (`${...}` placeholders stay for Grafana to fill). */
function exploreLogsUrl(pipeline: string, stepId: string): string {
  const panes = {
    logs: {
      datasource: '${logs_datasource}',
      queries: [
        {
          refId: 'A',
          datasource: { type: 'loki', uid: '${logs_datasource}' },
          expr: `{service_namespace="${pipeline}"} | step_id = \`${stepId}\``,
        },
      ],
      range: { from: '${__from}', to: '${__to}' },
    },
  };
  // Encode the JSON but keep Grafana's ${...} placeholders readable for its interpolation.
  const encoded = encodeURIComponent(JSON.stringify(panes)).replace(/%24%7B([A-Za-z0-9_.:]+)%7D/g, (_m, v: string) => `\${${v}}`);
  return `/explore?schemaVersion=1&orgId=1&panes=${encoded}`;
}

const LOGS_LINK_FROM_SERIES = new dashboard.DashboardLinkBuilder('Logs of this step (step_id)')
  .type(dashboard.DashboardLinkType.Link)
  .url(exploreLogsUrl('${__field.labels.pipeline}', '${__field.labels.step}'))
  .targetBlank(true);

function thresholds(steps: Array<[number | null, string]>): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([value, color]) => ({ value, color })));
}

function series(title: string, description: string, unit: string): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS_DS)
    .unit(unit)
    .height(8)
    .span(12)
    .fillOpacity(10)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
}

const LAST_VALUE = new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);

function variable(name: string, label: string, expr: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(PROMETHEUS_DS)
    .query(expr)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*');
}

/** The mini-batch dashboard of one or more steps. */
export function stepTelemetryDashboard(): dashboard.Dashboard {
  const running = metricName('running');
  const builder = new dashboard.DashboardBuilder('Step telemetry: mini-batch steps')
    .uid('step-telemetry')
    .description(
      'Per-mini-batch latency, failures, retries and timeouts, throughput, error budget and progress of pipeline steps instrumented with step-telemetry, and the memory, CPU, event loop and GC of each worker and the CPU, memory and GPUs of each node. Generated from src/catalog.ts by src/ops/dashboards.ts: do not edit by hand.',
    )
    .tags(['step-telemetry', 'batch', 'pipelines'])
    .editable()
    .refresh('30s')
    .time({ from: 'now-3h', to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Metrics').type('prometheus'))
    .withVariable(new dashboard.DatasourceVariableBuilder('logs_datasource').label('Logs').type('loki'))
    .withVariable(variable('pipeline', 'Pipeline', `label_values(${running}, pipeline)`))
    .withVariable(variable('step', 'Step', `label_values(${running}{pipeline=~"$pipeline"}, step)`))
    .withVariable(variable('node', 'Node', `label_values(${running}{pipeline=~"$pipeline", step=~"$step"}, node)`))
    .withVariable(variable('worker', 'Worker', `label_values(${metricName('processMemoryUsage')}{${SEL}}, worker)`))
    .link(
      new dashboard.DashboardLinkBuilder('Logs of the selected step (step_id)')
        .type(dashboard.DashboardLinkType.Link)
        .icon('doc')
        .tooltip('Grafana Explore: the step\'s log records (Loki), filtered by step_id (the step name unless STEP_TELEMETRY_STEP_ID says otherwise)')
        .url(exploreLogsUrl('${pipeline}', '${step}'))
        .targetBlank(true),
    );

  // --- Overview ---------------------------------------------------------------------------
  builder.withRow(new dashboard.RowBuilder('Overview'));
  builder.withPanel(
    new stat.PanelBuilder()
      .title('Steps running')
      .description(`Nodes whose step reports ${running} = 1.`)
      .datasource(PROMETHEUS_DS)
      .withTarget(query(`sum(max by (${BY}) (${sel('running')}))`, 'running').instant())
      .height(5)
      .span(4)
      .reduceOptions(LAST_VALUE)
      .colorMode(common.BigValueColorMode.None)
      .graphMode(common.BigValueGraphMode.None),
  );
  builder.withPanel(
    new bargauge.PanelBuilder()
      .title('Error budget used (failed items / error_threshold)')
      .description('Per node: 80 % raises the StepErrorBudgetNearlyUsed warning, 100 % the StepErrorBudgetExceeded alert; past 100 % the runner fails the step.')
      .datasource(PROMETHEUS_DS)
      .withTarget(query(`max by (${BY}) (${sel('errorBudgetUsed')})`, '{{step}} / node {{node}}').instant())
      .unit('percentunit')
      .min(0)
      .max(1)
      .thresholds(thresholds([[null, 'green'], [0.8, 'orange'], [1, 'red']]))
      .reduceOptions(LAST_VALUE)
      .displayMode(common.BarGaugeDisplayMode.Gradient)
      .orientation(common.VizOrientation.Horizontal)
      .height(5)
      .span(10),
  );
  builder.withPanel(
    new stat.PanelBuilder()
      .title('Since last finished mini-batch')
      .description('Age of the newest progress timestamp; StepStalled fires past 15 minutes while the step runs.')
      .datasource(PROMETHEUS_DS)
      .withTarget(query(`time() - max by (${BY}) (${sel('progressTimestamp')})`, '{{step}} / node {{node}}').instant())
      .unit('s')
      .reduceOptions(LAST_VALUE)
      .thresholds(thresholds([[null, 'green'], [300, 'orange'], [900, 'red']]))
      .height(5)
      .span(10),
  );
  builder.withPanel(
    new bargauge.PanelBuilder()
      .title('Progress per step and node (items done / expected)')
      .description('Successful and failed items over the items the node has to process.')
      .datasource(PROMETHEUS_DS)
      .withTarget(
        query(
          `sum by (${BY}) (${sel('items', '', '')}) / on (${BY}) max by (${BY}) (${sel('itemsExpected')})`,
          '{{step}} / node {{node}}',
        ).instant(),
      )
      .unit('percentunit')
      .min(0)
      .max(1)
      .thresholds(thresholds([[null, 'blue']]))
      .reduceOptions(LAST_VALUE)
      .displayMode(common.BarGaugeDisplayMode.Basic)
      .orientation(common.VizOrientation.Horizontal)
      .height(6)
      .span(24),
  );

  // --- Latency ----------------------------------------------------------------------------
  const bucket = sel('minibatchDuration', '', '_bucket');
  builder.withRow(new dashboard.RowBuilder('Mini-batch latency'));
  builder.withPanel(
    series(
      'Mini-batch duration p50 / p95 / p99',
      'Quantiles of one mini-batch attempt (dispatch to result), all outcomes. Exemplars (dots) carry the trace id of a sample mini-batch: click one to open its trace.',
      's',
    )
      .withTarget(query(`histogram_quantile(0.5, sum by (le, ${BY}) (rate(${bucket}[${RATE}])))`, 'p50 {{step}} / node {{node}}', 'A'))
      .withTarget(query(`histogram_quantile(0.95, sum by (le, ${BY}) (rate(${bucket}[${RATE}])))`, 'p95 {{step}} / node {{node}}', 'B', true))
      .withTarget(query(`histogram_quantile(0.99, sum by (le, ${BY}) (rate(${bucket}[${RATE}])))`, 'p99 {{step}} / node {{node}}', 'C'))
      .dataLinks([LOGS_LINK_FROM_SERIES]),
  );
  builder.withPanel(
    new heatmap.PanelBuilder()
      .title('Mini-batch duration heatmap')
      .description('Mini-batch attempts per duration bucket over time, with exemplars linking to traces.')
      .datasource(PROMETHEUS_DS)
      .withTarget(query(`sum by (le) (increase(${bucket}[${RATE}]))`, '{{le}}', 'A', true).format(prometheus.PromQueryFormat.Heatmap))
      .calculate(false)
      .yAxis(new heatmap.YAxisConfigBuilder().unit('s'))
      .color(new heatmap.HeatmapColorOptionsBuilder().mode(heatmap.HeatmapColorMode.Scheme).scheme('Oranges').steps(64).fill('dark-orange').exponent(0.5).scale(heatmap.HeatmapColorScale.Exponential))
      .cellValues(new heatmap.CellValuesBuilder().unit('short'))
      .rowsFrame(new heatmap.RowsHeatmapOptionsBuilder().layout(common.HeatmapCellLayout.Le))
      .showYHistogram()
      .exemplarsColor('rgba(255,0,255,0.7)')
      .height(8)
      .span(12),
  );
  builder.withPanel(
    series('Mean mini-batch duration by outcome', 'success, error (run() raised), timeout (killed at run_invocation_timeout), crash (worker died).', 's').withTarget(
      query(
        `sum by (outcome) (rate(${sel('minibatchDuration', '', '_sum')}[${RATE}])) / sum by (outcome) (rate(${sel('minibatchDuration', '', '_count')}[${RATE}]))`,
        '{{outcome}}',
      ),
    ),
  );

  // --- Failures ---------------------------------------------------------------------------
  builder.withRow(new dashboard.RowBuilder('Failures, retries and timeouts'));
  builder.withPanel(
    series('Failure rate', 'Share of mini-batches and of items that finished as failures. StepFailureRateHigh fires above 10 % of mini-batches for 5 minutes.', 'percentunit')
      .withTarget(
        query(
          `sum by (${BY}) (rate(${sel('minibatches', 'outcome="failure"')}[${RATE}])) / sum by (${BY}) (rate(${sel('minibatches')}[${RATE}]))`,
          'mini-batches {{step}} / node {{node}}',
          'A',
        ),
      )
      .withTarget(
        query(
          `sum by (${BY}) (rate(${sel('items', 'outcome="failure"')}[${RATE}])) / sum by (${BY}) (rate(${sel('items')}[${RATE}]))`,
          'items {{step}} / node {{node}}',
          'B',
        ),
      )
      .min(0)
      .dataLinks([LOGS_LINK_FROM_SERIES]),
  );
  builder.withPanel(
    series('Retries, timeouts and worker restarts', 'Per interval: attempts beyond the first, attempts killed at run_invocation_timeout, worker processes replaced.', 'short')
      .withTarget(query(`sum by (${BY}) (increase(${sel('retries')}[${RATE}]))`, 'retries {{step}} / node {{node}}', 'A'))
      .withTarget(query(`sum by (${BY}) (increase(${sel('timeouts')}[${RATE}]))`, 'timeouts {{step}} / node {{node}}', 'B'))
      .withTarget(query(`sum by (${BY}) (increase(${sel('workerRestarts')}[${RATE}]))`, 'worker restarts {{step}} / node {{node}}', 'C'))
      .drawStyle(common.GraphDrawStyle.Bars)
      .dataLinks([LOGS_LINK_FROM_SERIES]),
  );
  builder.withPanel(
    series('Error budget used over time', 'Failed items / error_threshold per node; the lines mark the warning (80 %) and the threshold (100 %).', 'percentunit')
      .withTarget(query(`max by (${BY}) (${sel('errorBudgetUsed')})`, '{{step}} / node {{node}}'))
      .min(0)
      .axisSoftMax(1.1)
      .thresholds(thresholds([[null, 'transparent'], [0.8, 'orange'], [1, 'red']]))
      .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed)),
  );
  builder.withPanel(
    series('Export failures', 'Telemetry batches a backend did not accept (the step goes on; its end-of-step summary names the error).', 'short')
      .withTarget(query(`sum by (${BY}, backend, signal) (increase(${sel('exportFailures')}[${RATE}]))`, '{{backend}} {{signal}} {{step}} / node {{node}}'))
      .drawStyle(common.GraphDrawStyle.Bars),
  );

  // --- Throughput -------------------------------------------------------------------------
  builder.withRow(new dashboard.RowBuilder('Throughput'));
  builder.withPanel(
    series('Items per second', 'Input items processed per second, by outcome.', 'short').withTarget(
      query(`sum by (${BY}, outcome) (rate(${sel('items')}[${RATE}]))`, '{{outcome}} {{step}} / node {{node}}'),
    ),
  );
  builder.withPanel(
    series('Mini-batches per second', 'Mini-batches finished per second, by final outcome.', 'short').withTarget(
      query(`sum by (${BY}, outcome) (rate(${sel('minibatches')}[${RATE}]))`, '{{outcome}} {{step}} / node {{node}}'),
    ),
  );
  addResourcePanels(builder);
  const built = builder.build();
  // Stable panel ids (links to a panel keep working across regenerations).
  built.panels?.forEach((panel, i) => {
    panel.id = i + 1;
  });
  built.annotations = { list: [] };
  return built;
}

/** Memory, CPU, event loop, GC and disk per worker; CPU, load, memory and GPUs per node (src/resources/). */
function addResourcePanels(builder: dashboard.DashboardBuilder): void {
  builder.withRow(new dashboard.RowBuilder('Resources per worker'));
  builder.withPanel(
    series('Resident memory (RSS) per worker', 'Resident memory of each process (`main` is the step or the runner itself), with the memory limit that applies to it (its cgroup limit, else the machine). WorkerMemoryNearLimit fires above 90 %.', 'bytes')
      .withTarget(query(`max by (${WBY}) (${wsel('processMemoryUsage')})`, '{{worker}} {{step}} / node {{node}}', 'A'))
      .withTarget(query(`max by (${WBY}) (${wsel('processMemoryLimit')})`, 'limit {{worker}} {{step}} / node {{node}}', 'B'))
      .min(0),
  );
  builder.withPanel(
    series('V8 heap per worker', "Heap used (a steady climb across mini-batches is a leak: doctor's memory-growth), the heap reserved (its total), V8's heap size limit (--max-old-space-size; WorkerMemoryNearLimit fires at 90 % of it), and memory outside the heap (Buffers).", 'bytes')
      .withTarget(query(`sum by (${WBY}) (${wsel('heapUsed')})`, 'used {{worker}} {{step}} / node {{node}}', 'A'))
      .withTarget(query(`sum by (${WBY}) (${wsel('heapSpaceSize')})`, 'total {{worker}} {{step}} / node {{node}}', 'B'))
      .withTarget(query(`max by (${WBY}) (${wsel('heapSizeLimit')})`, 'limit {{worker}} {{step}} / node {{node}}', 'C'))
      .withTarget(query(`max by (${WBY}) (${wsel('processMemoryExternal')})`, 'external {{worker}} {{step}} / node {{node}}', 'D'))
      .min(0),
  );
  builder.withPanel(
    series('CPU per worker (cores)', 'CPU seconds per second of each process, user and system: 1 is one core busy. A worker well under 1 during its mini-batches waits on I/O (doctor: io-bound).', 'short')
      .withTarget(query(`sum by (${WBY}, cpu_mode) (rate(${wsel('processCpuTime')}[${RATE}]))`, '{{worker}} {{cpu_mode}} {{step}} / node {{node}}', 'A'))
      .min(0),
  );
  builder.withPanel(
    series('CPU per worker (share of the node)', 'CPU of each process over the last sampling interval, as a share of all the node\'s CPUs.', 'percentunit')
      .withTarget(query(`max by (${WBY}) (${wsel('processCpuUtilization')})`, '{{worker}} {{step}} / node {{node}}', 'A'))
      .min(0),
  );
  builder.withPanel(
    series('Event loop delay per worker', 'p50, p99 and max of the event loop delay over each sampling interval. Seconds mean a synchronous run() holds the loop (doctor: event-loop-blocked).', 's')
      .withTarget(query(`max by (${WBY}) (${wsel('eventLoopDelayP50')})`, 'p50 {{worker}} {{step}} / node {{node}}', 'A'))
      .withTarget(query(`max by (${WBY}) (${wsel('eventLoopDelayP99')})`, 'p99 {{worker}} {{step}} / node {{node}}', 'B'))
      .withTarget(query(`max by (${WBY}) (${wsel('eventLoopDelayMax')})`, 'max {{worker}} {{step}} / node {{node}}', 'C'))
      .min(0),
  );
  builder.withPanel(
    series('Event loop utilisation per worker', 'Share of each sampling interval the event loop was busy.', 'percentunit')
      .withTarget(query(`max by (${WBY}) (${wsel('eventLoopUtilization')})`, '{{worker}} {{step}} / node {{node}}', 'A'))
      .min(0)
      .max(1),
  );
  builder.withPanel(
    series('Time in garbage collection per worker', 'Share of time each process spent in GC pauses, by kind (major, minor, incremental, weakcb). Rising major GC time with a growing heap is memory pressure.', 'percentunit')
      .withTarget(query(`sum by (${WBY}, v8js_gc_type) (rate(${wsel('gcDuration', '', '_sum')}[${RATE}]))`, '{{worker}} {{v8js_gc_type}} {{step}} / node {{node}}', 'A'))
      .min(0),
  );
  builder.withPanel(
    series('Disk I/O per worker', 'Bytes per second each process read from and wrote to storage (Linux /proc/<pid>/io; network I/O is not counted per process).', 'Bps')
      .withTarget(query(`sum by (${WBY}, disk_io_direction) (rate(${wsel('processDiskIo')}[${RATE}]))`, '{{worker}} {{disk_io_direction}} {{step}} / node {{node}}', 'A'))
      .min(0),
  );

  builder.withRow(new dashboard.RowBuilder('Node'));
  builder.withPanel(
    series('Node CPU by mode', "Share of the node's CPUs by mode (idle left out): iowait is time waiting on disk; steal, time the hypervisor gave to others.", 'percentunit')
      .withTarget(query(`max by (${BY}, cpu_mode) (${sel('systemCpuUtilization', 'cpu_mode!="idle"')})`, '{{cpu_mode}} {{step}} / node {{node}}', 'A'))
      .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
      .min(0)
      .max(1),
  );
  builder.withPanel(
    series('Load and cores', 'The 1-minute load average against the logical CPUs: a load well above the cores means runnable threads queue for them (doctor: cpu-saturated).', 'short')
      .withTarget(query(`max by (${BY}) (${sel('systemLoad1m')})`, 'load {{step}} / node {{node}}', 'A'))
      .withTarget(query(`max by (${BY}) (${sel('systemCpuCount')})`, 'cores {{step}} / node {{node}}', 'B'))
      .min(0),
  );
  builder.withPanel(
    series('Node memory', 'Memory available for new work (MemAvailable) against the total.', 'bytes')
      .withTarget(query(`max by (${BY}) (${sel('systemMemoryAvailable')})`, 'available {{step}} / node {{node}}', 'A'))
      .withTarget(query(`max by (${BY}) (${sel('systemMemoryLimit')})`, 'total {{step}} / node {{node}}', 'B'))
      .min(0),
  );
  builder.withPanel(
    series('GPU utilisation', 'Share of time each GPU was busy (nvidia-smi), by device index. No data: no nvidia-smi on the node.', 'percentunit')
      .withTarget(query(`max by (${BY}, hw_id) (${sel('gpuUtilization')})`, 'GPU {{hw_id}} {{step}} / node {{node}}', 'A'))
      .min(0)
      .max(1),
  );
  builder.withPanel(
    series('GPU memory', 'GPU memory used and its size, by device index.', 'bytes')
      .withTarget(query(`max by (${BY}, hw_id) (${sel('gpuMemoryUsage')})`, 'used GPU {{hw_id}} {{step}} / node {{node}}', 'A'))
      .withTarget(query(`max by (${BY}, hw_id) (${sel('gpuMemoryLimit')})`, 'size GPU {{hw_id}} {{step}} / node {{node}}', 'B'))
      .min(0),
  );
}

export interface GeneratedDashboard {
  /** File name under dashboards/. */
  readonly file: string;
  readonly json: dashboard.Dashboard;
}

/** Every dashboard, with its file name under dashboards/. */
export function buildDashboards(): GeneratedDashboard[] {
  return [{ file: 'step-telemetry.json', json: stepTelemetryDashboard() }];
}

/** The exact text committed for a dashboard. */
export function renderDashboard(d: GeneratedDashboard): string {
  return `${JSON.stringify(d.json, null, 2)}\n`;
}
