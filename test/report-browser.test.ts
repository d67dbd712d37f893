// The HTML report opened in headless Chromium (Debian's `chromium`, driven by playwright-core), as a
// person would look at it: no console errors and no network request, every picture drawn (its
// screenshot has ink and colour), and what is drawn is right: the confusion matrices have N×N cells
// with the right counts, the latency chart leaves a gap where no attempt ran and marks timeouts and
// errors apart, the toggles switch views, no two labels of a chart overlap (their boxes are
// measured), the log filters work, and a failed run says what failed at the top.
//
// The screenshots are kept as test artefacts in test-artifacts/report/ (git-ignored; see
// docs/development.md). The run folders are made by real runs: a plain step and a parallel run with
// failures, retries and warnings in one pipeline run; a one-worker run with a timeout; a run that
// the runner aborted; a run whose workers leak, block their event loop and run out of memory
// (resources sampled every 100 ms): its memory and CPU are drawn on the timeline's time axis, the
// findings where they happened.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from './helpers/run-step.js';
import { ROOT, abortedRun, cli, makeInputs, parallelRun, plainStep } from './fixtures/report/runs.js';

const CHROMIUM = '/usr/bin/chromium';
const RESOURCES_ENTRY = fileURLToPath(new URL('./fixtures/resources/entry.mjs', import.meta.url));
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'report');

/** Counts the pixels of a PNG that are not (near) white, and those that are coloured (not grey). */
const INK = `async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let ink = 0, colour = 0;
  const colours = new Set();
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (r < 235 || g < 235 || b < 235) {
      ink++;
      colours.add(((r >> 5) << 6) | ((g >> 5) << 3) | (b >> 5));
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colour++;
    }
  }
  const n = c.width * c.height;
  return { width: c.width, height: c.height, ink: ink / n, colour: colour / n, colours: colours.size };
}`;

/** What the in-page callbacks use of the DOM (the tests compile without the DOM library). */
interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}
interface El {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): Box;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
}

let tmp: TempDir;
let profile: TempDir;
let context: BrowserContext;
const pages: Record<'main' | 'latency' | 'failed' | 'resources', string> = { main: '', latency: '', failed: '', resources: '' };
let latencyResult: { timeouts: number };

async function makeReport(tel: string, id: string, name: string): Promise<string> {
  const out = path.join(tmp.path, `${name}.html`);
  const r = await cli(['report', path.join(tel, id), '-o', out]);
  expect(r.code, r.stderr).toBe(0);
  return pathToFileURL(out).href;
}

beforeAll(async () => {
  tmp = await makeTempDir('step-telemetry-report-browser-');
  profile = await makeTempDir('step-telemetry-chromium-profile-');
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const tel = path.join(tmp.path, 'tel');
  const main = (async () => {
    const name = (i: number) => `img-${String(i).padStart(3, '0')}${i % 13 === 5 ? '-bad' : i % 11 === 7 ? '-flaky' : i % 9 === 4 ? '-odd' : ''}.txt`;
    const input = makeInputs(path.join(tmp.path, 'in'), 40, name);
    // prepare runs before score, as in a pipeline: the report orders steps by start time, so the
    // score step is step 1 (its sections are #timeline-svg-1, #failures-1, ...)
    const prepare = await plainStep(tel, 'pr-browser');
    const score = await parallelRun({
      dir: tel,
      pipelineRunId: 'pr-browser',
      stepName: 'score',
      input,
      flags: ['--mini-batch-size', '2', '--process-count-per-node', '2', '--run-max-try', '2'],
      entryArgs: ['--sleep', '15', '--jitter', '20', '--throw-on', '-bad', '--flaky-on', '-flaky', '--log'],
    });
    expect(prepare.result.code, prepare.result.stderr).toBe(0);
    expect(score.result.code, score.result.stderr).toBe(0);
    pages.main = await makeReport(tel, 'pr-browser', 'main');
  })();
  const latency = (async () => {
    // one worker: while the slow item's first attempt hangs until the timeout, nothing else starts
    const name = (i: number) => `img-${String(i).padStart(3, '0')}${i === 20 ? '-slow' : i % 17 === 5 ? '-bad' : ''}.txt`;
    const input = makeInputs(path.join(tmp.path, 'in-latency'), 60, name);
    const run = await parallelRun({
      dir: tel,
      pipelineRunId: 'pr-latency',
      stepName: 'score',
      input,
      flags: ['--mini-batch-size', '1', '--process-count-per-node', '1', '--run-max-try', '2', '--run-invocation-timeout', '1.5'],
      entryArgs: ['--sleep', '2', '--jitter', '4', '--slow-first', '8000', '--throw-on', '-bad'],
    });
    expect(run.result.code, run.result.stderr).toBe(0);
    latencyResult = JSON.parse(fs.readFileSync(path.join(run.folder, 'result.json'), 'utf8'));
    pages.latency = await makeReport(tel, 'pr-latency', 'latency');
  })();
  const failed = (async () => {
    const run = await abortedRun(tel, 'pr-failed', { workers: 2, errorThreshold: 1, sleepMs: 20 });
    expect(run.result.code).toBe(1);
    pages.failed = await makeReport(tel, 'pr-failed', 'failed');
  })();
  const resources = (async () => {
    // two workers keeping 2 MiB a mini-batch under a 64 MiB old space: memory-growth; mb-00012 spins
    // 1.5 s (event-loop-blocked); mb-00030 allocates until V8 stops its worker (out-of-memory)
    const input = makeInputs(path.join(tmp.path, 'in-resources'), 40, (i) => `f${String(i).padStart(3, '0')}.txt`);
    const r = await cli(
      ['parallel-run', '--entry-script', RESOURCES_ENTRY, '--input', input, '--step-name', 'score', '--mini-batch-size', '1', '--process-count-per-node', '2', '--run-max-try', '1', '--error-threshold', '-1', '--progress-interval', '60', '--', '--leak', '2', '--sleep', '60', '--block-on', 'f012', '--oom-on', 'f030'],
      { STEP_TELEMETRY_DIR: tel, STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-resources', STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '100', NODE_OPTIONS: '--max-old-space-size=64' },
      120_000,
    );
    expect(r.code, r.stderr).toBe(0);
    pages.resources = await makeReport(tel, 'pr-resources', 'resources');
  })();
  await Promise.all([main, latency, failed, resources]);
  context = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1300, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);

afterAll(async () => {
  await context?.close();
  await profile?.cleanup();
  await tmp?.cleanup();
});

async function open(which: keyof typeof pages = 'main'): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
  });
  await page.goto(pages[which]);
  await page.waitForSelector('#log-rows tr');
  return { page, problems, requests };
}

async function ink(png: Buffer): Promise<{ width: number; height: number; ink: number; colour: number; colours: number }> {
  const blank = await context.newPage();
  try {
    return await blank.evaluate(`(${INK})(${JSON.stringify(png.toString('base64'))})`);
  } finally {
    await blank.close();
  }
}

/** Screenshot `what` into the artefacts as `<name>.png` and check that it is a picture: ink, colour, several colours. */
async function picture(what: Locator, name: string, minInk = 0.02, minColour = 0.004): Promise<void> {
  await what.scrollIntoViewIfNeeded();
  const png = await what.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  const stats = await ink(png);
  expect(stats.ink, `${name}: ${JSON.stringify(stats)}`).toBeGreaterThan(minInk);
  expect(stats.colour, `${name}: ${JSON.stringify(stats)}`).toBeGreaterThanOrEqual(minColour);
  expect(stats.colours, name).toBeGreaterThan(3);
}

/** Pairs of texts of an SVG whose drawn boxes overlap (by more than half a pixel each way). */
function overlappingTexts(svg: Locator): Promise<string[]> {
  return svg.evaluate((svgElement) => {
    const el = svgElement as unknown as El;
    const boxes = Array.from(el.querySelectorAll('text'))
      .map((t) => ({ text: t.textContent ?? '', r: t.getBoundingClientRect() }))
      .filter((b) => b.r.width > 0 && b.r.height > 0);
    const out: string[] = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i]!.r;
        const b = boxes[j]!.r;
        if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5) out.push(`"${boxes[i]!.text}" × "${boxes[j]!.text}"`);
      }
    }
    return out;
  });
}

/** Every visible chart of the page: no two labels overlap. */
async function expectNoOverlaps(page: Page): Promise<number> {
  const svgs = page.locator('svg.chart-svg:visible');
  const n = await svgs.count();
  for (let k = 0; k < n; k++) {
    const svg = svgs.nth(k);
    expect(await overlappingTexts(svg), (await svg.getAttribute('id')) ?? `chart ${k}`).toEqual([]);
  }
  return n;
}

async function rowsOf(page: Page): Promise<{ level: string; mb: string; cells: string[] }[]> {
  return page.locator('#log-rows tr').evaluateAll((rows) =>
    rows.map((r) => ({ level: r.getAttribute('data-level') ?? '', mb: r.getAttribute('data-row-mb') ?? '', cells: Array.from(r.children as ArrayLike<{ textContent: string | null }>).map((c) => c.textContent ?? '') })),
  );
}

describe('the report in headless Chromium', () => {
  it('loads without console errors or network requests, and every kind of chart renders', async () => {
    const { page, problems, requests } = await open();
    try {
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      expect(await page.title()).toBe('pr-browser — run report');
      for (const kind of ['steps', 'timeline', 'latency', 'histogram', 'metric', 'overlay', 'list', 'confusion']) {
        const svg = page.locator(`figure.chart[data-chart="${kind}"] svg.chart-svg:visible`).first();
        await svg.scrollIntoViewIfNeeded();
        const box = await svg.boundingBox();
        expect(box, kind).not.toBeNull();
        expect(box!.width, kind).toBeGreaterThan(kind === 'confusion' ? 100 : 300);
        expect(box!.height, kind).toBeGreaterThan(kind === 'steps' ? 40 : 80);
        await picture(svg, `chart-${kind}`);
      }
      // the timeline shows both outcomes of this run: green successes and red errors
      expect(await page.locator('#timeline-svg-1 rect.seg[fill="#2f9e5f"]').count()).toBeGreaterThan(10);
      expect(await page.locator('#timeline-svg-1 rect.seg[fill="#d64545"]').count()).toBeGreaterThanOrEqual(5);
      // the doctor's findings are on the page; a run that succeeded has no failure headline
      await expect(page.locator('#findings .finding code', { hasText: 'dominant-failure' }).count()).resolves.toBe(1);
      expect(await page.locator('#what-failed').count()).toBe(0);
      // no two labels of any chart overlap
      expect(await expectNoOverlaps(page)).toBeGreaterThan(10);
      await page.screenshot({ path: path.join(ARTIFACTS, 'page.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('draws each confusion matrix as an N×N heatmap: the counts in the cells and their titles, shaded by the share of the row', async () => {
    const { page } = await open();
    try {
      const matrix = async (name: string) => {
        const figure = page.locator('figure[data-chart="confusion"]', { has: page.locator(`figcaption b`, { hasText: new RegExp(`^${name}$`) }) });
        const svg = figure.locator('svg.chart-svg');
        await picture(figure, `confusion-${name}`, 0.01);
        const n = Number(await svg.getAttribute('data-rows'));
        const cells = await svg.locator('rect.cm-cell').evaluateAll((rs) => rs.map((r) => ({ title: r.querySelector('title')?.textContent ?? '', fill: r.getAttribute('fill') ?? '', count: Number(r.getAttribute('data-count')) })));
        const drawn = await svg.locator('text.cm-count').allTextContents();
        return { n, cols: Number(await svg.getAttribute('data-cols')), cells, drawn, overlaps: await overlappingTexts(svg) };
      };
      const counts = await matrix('confusion_counts');
      expect([counts.n, counts.cols, counts.cells.length]).toEqual([3, 3, 9]);
      const titled = counts.cells.filter((c) => c.count > 0).map((c) => c.title.replace(/ \(.*$/, ''));
      expect(titled.sort()).toEqual(['actual bird, predicted bird: 17', 'actual cat, predicted cat: 40', 'actual cat, predicted dog: 3', 'actual dog, predicted cat: 5', 'actual dog, predicted dog: 35']);
      expect(counts.cells.find((c) => c.title.startsWith('actual cat, predicted dog'))!.title).toBe('actual cat, predicted dog: 3 (7.0% of the 43 with actual cat)');
      expect(counts.drawn.map(Number).sort((a, b) => a - b)).toEqual([3, 5, 17, 35, 40]);
      expect(counts.overlaps).toEqual([]);
      // shaded by the share of the row, not by the count: bird→bird (17 of 17) is darker than cat→cat (40 of 43)
      const lum = (fill: string) => fill.match(/\d+/g)!.map(Number).reduce((s, v) => s + v, 0);
      const fillOf = (prefix: string) => counts.cells.find((c) => c.title.startsWith(prefix))!.fill;
      expect(lum(fillOf('actual bird, predicted bird'))).toBeLessThan(lum(fillOf('actual cat, predicted cat')));

      // { actual, predicted }: one row per prediction, counted
      const pairs = await matrix('confusion');
      expect([pairs.n, pairs.cells.length]).toEqual([3, 9]);
      expect(pairs.cells.filter((c) => c.count > 0).map((c) => c.title.replace(/ \(.*$/, '')).sort()).toEqual(['actual 0, predicted 0: 1', 'actual 1, predicted 1: 1', 'actual 2, predicted 1: 1']);
      // a square table with a label column, and rows logged one by one
      const square = await matrix('confusion_square');
      expect([square.n, square.cells.length, square.drawn.map(Number).reduce((s, v) => s + v, 0)]).toEqual([3, 9, 103]);
      const rows = await matrix('confusion_rows');
      expect([rows.n, rows.cells.length, rows.drawn]).toEqual([2, 4, ['9', '1', '3', '7']]);
      // the numbers are behind the picture
      const details = page.locator('figure[data-chart="confusion"]').first().locator('details.values');
      expect(await details.locator('table').isVisible()).toBe(false);
      await details.locator('summary').click();
      expect(await details.locator('table tbody tr').count()).toBe(3);
    } finally {
      await page.close();
    }
  });

  it('draws a list as a line chart (its values behind a toggle), a step index with whole-number ticks, and series of one stem overlaid with a toggle', async () => {
    const { page } = await open();
    try {
      const list = page.locator('figure[data-chart="list"]').first();
      await picture(list, 'list-loss_curve');
      expect(await list.locator('path.line-series').count()).toBe(1);
      expect(await list.locator('circle.point').count()).toBe(4);
      expect(await list.locator('svg text.tick').allTextContents()).toEqual(expect.arrayContaining(['0', '1', '2', '3']));
      expect(await list.locator('details.values table').isVisible()).toBe(false);
      await list.locator('details.values summary').click();
      expect(await list.locator('details.values table tbody tr').count()).toBe(4);

      // acc/train and acc/val over epochs 1..5: one chart, two lines, ticks 1 2 3 4 5 (not 1.5, 2.5)
      const acc = page.locator('figure[data-chart="overlay"][data-stem="acc"]');
      const together = acc.locator('svg.chart-svg:visible');
      expect(await together.count()).toBe(1);
      await picture(together, 'overlay-acc');
      const strokes = await together.locator('path.line-series').evaluateAll((ps) => ps.map((p) => `${p.getAttribute('data-series')} ${p.getAttribute('stroke')}`));
      expect(strokes.length).toBe(2);
      expect(new Set(strokes.map((s) => s.split(' ')[1])).size).toBe(2);
      expect(strokes.map((s) => s.split(' ')[0])).toEqual(['acc/train', 'acc/val']);
      const ticks = await together.locator('text.tick[text-anchor="middle"]').allTextContents();
      expect(ticks).toEqual(['1', '2', '3', '4', '5']);
      // the toggle: one chart per series
      await acc.locator('label.toggle-label').click();
      const apart = acc.locator('svg.chart-svg:visible');
      expect(await apart.count()).toBe(2);
      await picture(acc, 'overlay-acc-separate');
      // train_loss / val_loss are overlaid too; loss (a series of its own beside train_loss) is not
      expect(await page.locator('figure[data-chart="overlay"][data-stem="loss"] path.line-series').evaluateAll((ps) => ps.slice(0, 2).map((p) => p.getAttribute('data-series')))).toEqual(['train_loss', 'val_loss']);
      expect(await page.locator('figure[data-chart="metric"] figcaption b', { hasText: /^loss$/ }).count()).toBe(1);
    } finally {
      await page.close();
    }
  });

  it('draws latency per bucket with a gap where no attempt ran, timeouts and errors marked apart, a log axis by default and a linear one on the toggle', async () => {
    const { page, problems } = await open('latency');
    try {
      const figure = page.locator('#latency-0 figure[data-chart="latency"]');
      // the timeout (1.5 s) is far above the median (a few ms): logarithmic by default
      const log = figure.locator('svg.chart-svg:visible');
      expect(await log.getAttribute('data-scale')).toBe('log');
      await picture(figure, 'latency-log');
      const timeouts = await log.locator('.mark-timeout').count();
      expect(timeouts).toBe(latencyResult.timeouts);
      expect(timeouts).toBe(1);
      const statsErrors = Number(await page.locator('#latency-0 table.num tr', { has: page.locator('td', { hasText: /^error$/ }) }).locator('td').nth(1).textContent());
      expect(await log.locator('.mark-error').count()).toBe(statsErrors);
      expect(statsErrors).toBe(8);
      // the gap: from the timed-out attempt to the next successful one no bucket has a value, and
      // no percentile line is drawn across it
      const geometry = await log.evaluate((svgElement) => {
        const svg = svgElement as unknown as El;
        const box = (e: El) => e.getBoundingClientRect();
        const t = box(svg.querySelector('.mark-timeout')!);
        const tx = t.x + t.width / 2;
        const next = Array.from(svg.querySelectorAll('circle.seg'))
          .map((c) => box(c).x + box(c).width / 2)
          .filter((x) => x > tx + 1)
          .sort((a, b) => a - b)[0]!;
        const bucket = Math.min(...Array.from(svg.querySelectorAll('rect.hover')).map((r) => box(r).width));
        const lines = Array.from(svg.querySelectorAll('path.step-series')).map((p) => ({ series: p.getAttribute('data-series'), x0: box(p).left, x1: box(p).right }));
        return { tx, next, bucket, lines };
      });
      expect(geometry.next - geometry.tx, JSON.stringify(geometry)).toBeGreaterThan(2 * geometry.bucket);
      const across = geometry.lines.filter((l) => l.x1 > geometry.tx + geometry.bucket + 1 && l.x0 < geometry.next - geometry.bucket - 1);
      expect(across, JSON.stringify(geometry)).toEqual([]);
      expect(geometry.lines.filter((l) => l.series === 'p50').length).toBeGreaterThanOrEqual(2);
      expect(await overlappingTexts(log)).toEqual([]);
      // the toggle: a linear axis
      await figure.locator('label.toggle-label').click();
      const linear = figure.locator('svg.chart-svg:visible');
      expect(await linear.getAttribute('data-scale')).toBe('linear');
      await picture(figure, 'latency-linear');
      expect(await overlappingTexts(linear)).toEqual([]);
      // the distribution: the timeout stacked apart from the successful attempts, the labels apart
      const histogram = page.locator('#latency-0 figure[data-chart="histogram"]');
      await picture(histogram, 'latency-histogram');
      const fills = new Set(await histogram.locator('rect.bar').evaluateAll((rs) => rs.map((r) => r.getAttribute('fill'))));
      expect(fills).toEqual(new Set(['#2f6fbf', '#d64545', '#e8912d']));
      expect(await overlappingTexts(histogram.locator('svg'))).toEqual([]);
      expect(await histogram.locator('text.marker').allTextContents()).toEqual([expect.stringMatching(/^p50 /), expect.stringMatching(/^p95 /), expect.stringMatching(/^p99 /)]);
      await expectNoOverlaps(page);
      // a mark is a mini-batch: clicking it shows its log records
      await figure.locator('svg.chart-svg:visible .mark-timeout').dispatchEvent('click');
      const mb = await page.locator('#log-mb').inputValue();
      expect(mb).toMatch(/^mb-\d{5}$/);
      expect((await rowsOf(page)).every((r) => r.mb === mb)).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('a failed run says at the top what failed, where and at which line, with links to the finding and the log records; its stopped workers are not failures', async () => {
    const { page, problems } = await open('failed');
    try {
      const headline = page.locator('#what-failed');
      expect(await headline.isVisible()).toBe(true);
      const box = (await headline.boundingBox())!;
      expect(box.y).toBeLessThan(300);
      await picture(headline, 'failed-headline', 0.01);
      expect(await headline.locator('.sentence').textContent()).toMatch(
        /^score failed \(error_threshold exceeded: \d failed items > error_threshold 1\): most often TypeError: Cannot read properties of undefined \(reading 'pixels'\) in mini-batch (mb-\d{5}) \(inputs img-\d{3}(?:-bad)?\.txt, img-\d{3}(?:-bad)?\.txt\)(?: on worker-\d)?, at run \(file:\/\/\/.*entry\.mjs:\d+:\d+\)\.$/,
      );
      const mb = (await headline.locator('.sentence button.mb-link').getAttribute('data-mb'))!;
      // the finding it rests on
      const href = (await headline.locator('a', { hasText: 'the finding' }).getAttribute('href'))!;
      expect(await page.locator(`${href} .f-head`).textContent()).toMatch(/score/);
      // its log records
      await headline.locator('button.log-link').click();
      expect(await page.locator('#log-mb').inputValue()).toBe(mb);
      const records = await rowsOf(page);
      expect(records.length).toBeGreaterThan(0);
      expect(records.every((r) => r.mb === mb)).toBe(true);
      // the workers the runner stopped on the abort
      const workers = page.locator('#progress-0 table.workers');
      await picture(workers, 'failed-workers', 0.01, 0);
      expect(await workers.locator('.badge.stopped').allTextContents()).toEqual(['stopped by the runner', 'stopped by the runner']);
      await expectNoOverlaps(page);
      await page.screenshot({ path: path.join(ARTIFACTS, 'failed-page.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('filters the log records by level, step, mini-batch and text; mini-batch links set the filter', async () => {
    const { page, problems } = await open();
    try {
      const all = await rowsOf(page);
      const total = all.length;
      expect(new Set(all.map((r) => r.level))).toEqual(new Set(['info', 'warn', 'error']));
      await expect(page.locator('#log-count').textContent()).resolves.toBe(`Showing ${total} of ${total} matching records.`);

      // level: errors only
      for (const level of ['info', 'warn']) await page.locator(`input[data-level="${level}"]`).uncheck();
      const errors = await rowsOf(page);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((r) => r.level === 'error')).toBe(true);
      await page.locator('#log-clear').click();
      expect((await rowsOf(page)).length).toBe(total);

      // step
      await page.locator('#log-step').selectOption({ label: 'prepare' });
      const prepare = await rowsOf(page);
      expect(prepare.length).toBeGreaterThan(0);
      expect(prepare.every((r) => r.cells[2] === 'prepare')).toBe(true);
      await page.locator('#log-clear').click();

      // mini-batch, typed
      await page.locator('#log-mb').fill('mb-00003');
      await expect.poll(async () => (await rowsOf(page)).length).toBeLessThan(total);
      const mb3 = await rowsOf(page);
      expect(mb3.length).toBeGreaterThan(0);
      expect(mb3.every((r) => r.mb === 'mb-00003')).toBe(true);
      expect(mb3.some((r) => /mb-00003 attempt 1\/2 failed .*ECONNRESET/.test(r.cells[5]!))).toBe(true);

      // text
      await page.locator('#log-clear').click();
      await page.locator('#log-text').fill('odd input');
      await expect.poll(async () => (await rowsOf(page)).length).toBeLessThan(total);
      const odd = await rowsOf(page);
      expect(odd.length).toBeGreaterThan(0);
      expect(odd.every((r) => r.cells[5]!.includes('odd input') && r.level === 'warn')).toBe(true);
      await page.locator('#log-clear').click();

      // a mini-batch button in the failures table filters the logs to it
      const button = page.locator('#failures-1 table.causes button.mb-link').first();
      const id = (await button.getAttribute('data-mb'))!;
      await button.click();
      expect(await page.locator('#log-mb').inputValue()).toBe(id);
      const clicked = await rowsOf(page);
      expect(clicked.length).toBeGreaterThan(0);
      expect(clicked.every((r) => r.mb === id)).toBe(true);

      // and so does a bar of the timeline
      await page.locator('#log-clear').click();
      await page.locator('#timeline-svg-1 rect.seg[data-mb="mb-00010"]').first().dispatchEvent('click');
      expect(await page.locator('#log-mb').inputValue()).toBe('mb-00010');
      expect((await rowsOf(page)).every((r) => r.mb === 'mb-00010')).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('draws memory and CPU per worker on the timeline\'s time axis, with the node\'s CPU, and the resource findings where they happened', async () => {
    const { page, problems } = await open('resources');
    try {
      const figure = page.locator('#resources-0 figure[data-chart="resources"]');
      await picture(figure, 'chart-resources');
      const svg = figure.locator('svg.chart-svg');
      // a memory and a CPU strip per process lane (the runner, then each worker slot), then the node
      const strips = await svg.locator('g.strip').evaluateAll((gs) => gs.map((g) => `${g.getAttribute('data-strip')}:${g.getAttribute('data-worker') ?? ''}`));
      expect(strips).toEqual(['memory:main', 'cpu:main', 'memory:worker-0', 'cpu:worker-0', 'memory:worker-1', 'cpu:worker-1', 'node:']);
      // the same time axis as the timeline: every tick at the same x (within a pixel: text is placed
      // on the pixel grid, so a tick near x.5 could round either way in one picture and not the other)
      const ticks = async (id: string) => page.locator(`#${id} text.tick[text-anchor="middle"]`).evaluateAll((ts) => ts.map((t) => ({ label: t.textContent, x: (t as unknown as El).getBoundingClientRect().x })));
      const timelineTicks = await ticks('timeline-svg-0');
      expect(timelineTicks.length).toBeGreaterThan(2);
      const resourceTicks = await ticks('resources-svg-0');
      expect(resourceTicks.map((t) => t.label)).toEqual(timelineTicks.map((t) => t.label));
      for (const [k, t] of resourceTicks.entries()) expect(Math.abs(t.x - timelineTicks[k]!.x), t.label ?? '').toBeLessThanOrEqual(1);

      const findings = await page.locator('#findings .finding code').allTextContents();
      expect(findings).toEqual(expect.arrayContaining(['memory-growth', 'out-of-memory', 'event-loop-blocked']));
      // each resource finding is listed under the picture, linked to itself
      const links = await page.locator('#resources-0 ul.res-findings a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent]));
      expect(links.map((l) => l[1]).sort()).toEqual(findings.filter((f) => ['memory-growth', 'out-of-memory', 'event-loop-blocked', 'io-bound', 'cpu-saturated'].includes(f)).sort());
      for (const [href, id] of links) expect(await page.locator(`${href} .f-head code`).textContent()).toBe(id);
      // memory-growth: the growing workers' memory strips are tinted
      const growing = await page.locator('#findings .finding', { has: page.locator('code', { hasText: 'memory-growth' }) }).locator('.f-head').textContent();
      const tinted = await svg.locator('g.strip[data-strip="memory"][data-finding~="memory-growth"]').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-worker')!));
      expect(tinted.length).toBeGreaterThan(0);
      for (const w of tinted) expect(growing).toContain(w);
      // out-of-memory: ◆ where mb-00030's worker died, at the end of its crashed attempt's bar, and the V8 heap limit it hit
      const oom = svg.locator('.mark-oom');
      expect(await oom.count()).toBe(1);
      expect(await oom.getAttribute('data-mb')).toBe('mb-00030');
      const crashBar = page.locator('#timeline-svg-0 rect.seg[data-mb="mb-00030"][fill="#8e44ad"]');
      const bar = (await crashBar.boundingBox())!;
      const mark = (await oom.boundingBox())!;
      expect(Math.abs(mark.x + mark.width / 2 - (bar.x + bar.width))).toBeLessThan(2);
      const oomWorker = await oom.evaluate((m) => (m as unknown as { parentNode: El }).parentNode.getAttribute('data-worker'));
      expect(await svg.locator(`g.strip[data-strip="memory"][data-worker="${oomWorker}"] line.strip-limit title`).textContent()).toMatch(/^V8 heap limit \d+ MiB$/);
      // event-loop-blocked: ▲ over the block, beside the bar of the mini-batch that blocked it
      const blocked = svg.locator('.mark-blocked');
      expect(await blocked.count()).toBe(1);
      expect(await blocked.getAttribute('data-mb')).toBe('mb-00012');
      const spin = (await page.locator('#timeline-svg-0 rect.seg[data-mb="mb-00012"]').boundingBox())!;
      const tri = (await blocked.boundingBox())!;
      expect(tri.x + tri.width / 2).toBeGreaterThan(spin.x);
      expect(tri.x + tri.width / 2).toBeLessThan(spin.x + spin.width);
      // the lines are drawn: RSS and heap of each process, CPU, the node
      expect(await svg.locator('path.strip-line[data-series$=" RSS"]').count()).toBeGreaterThanOrEqual(4); // the runner, worker-0, worker-1 and its restart
      expect(await svg.locator('path.strip-line[data-series="node busy"]').count()).toBe(1);
      // what the mini-batches used, per worker
      const usage = page.locator('#resources-0 table.usage tbody tr');
      expect(await usage.locator('td:first-child').allTextContents()).toEqual(['worker-0', 'worker-1']);
      // a tooltip column names the mini-batch that ran; clicking it shows its log records
      const column = svg.locator('rect.hover.seg').first();
      expect(await column.locator('title').textContent()).toMatch(/^worker-\d, [^:]+: RSS [\d.]+ MiB, heap [\d.]+ MiB.*; running mb-\d{5}$/);
      const mb = (await column.getAttribute('data-mb'))!;
      await column.dispatchEvent('click');
      expect(await page.locator('#log-mb').inputValue()).toBe(mb);
      expect(await overlappingTexts(svg)).toEqual([]);
      await expectNoOverlaps(page);
      await page.screenshot({ path: path.join(ARTIFACTS, 'resources-page.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
