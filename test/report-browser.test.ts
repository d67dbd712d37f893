// The HTML report opened in headless Chromium (Debian's `chromium`, driven by playwright-core):
// no console errors and no network request, the charts render (screenshots with ink in their
// chart areas), and the log filters work. The run folder is made by real runs: a plain step and a
// parallel run with failures, retries and warnings, in one pipeline run.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from './helpers/run-step.js';
import { cli, makeInputs, parallelRun, plainStep } from './fixtures/report/runs.js';

const CHROMIUM = '/usr/bin/chromium';

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

let tmp: TempDir;
let profile: TempDir;
let context: BrowserContext;
let reportUrl: string;

beforeAll(async () => {
  tmp = await makeTempDir('step-telemetry-report-browser-');
  profile = await makeTempDir('step-telemetry-chromium-profile-');
  const tel = path.join(tmp.path, 'tel');
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
  const out = path.join(tmp.path, 'report.html');
  const r = await cli(['report', path.join(tel, 'pr-browser'), '-o', out]);
  expect(r.code, r.stderr).toBe(0);
  reportUrl = pathToFileURL(out).href;
  context = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1300, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await profile?.cleanup();
  await tmp?.cleanup();
});

async function open(): Promise<{ page: Page; problems: string[]; requests: string[] }> {
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
  await page.goto(reportUrl);
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
      for (const kind of ['steps', 'timeline', 'latency', 'histogram', 'metric']) {
        const svg = page.locator(`figure.chart[data-chart="${kind}"] svg`).first();
        await svg.scrollIntoViewIfNeeded();
        const box = await svg.boundingBox();
        expect(box, kind).not.toBeNull();
        expect(box!.width, kind).toBeGreaterThan(300);
        expect(box!.height, kind).toBeGreaterThan(kind === 'steps' ? 40 : 80);
        const stats = await ink(await svg.screenshot());
        expect(stats.ink, `${kind}: ${JSON.stringify(stats)}`).toBeGreaterThan(0.02);
        expect(stats.colour, `${kind}: ${JSON.stringify(stats)}`).toBeGreaterThan(0.004);
        expect(stats.colours, kind).toBeGreaterThan(3);
      }
      // the timeline shows both outcomes of this run: green successes and red errors
      expect(await page.locator('#timeline-svg-1 rect.seg[fill="#2f9e5f"]').count()).toBeGreaterThan(10);
      expect(await page.locator('#timeline-svg-1 rect.seg[fill="#d64545"]').count()).toBeGreaterThanOrEqual(5);
      // the doctor's findings are on the page
      await expect(page.locator('#findings .finding code', { hasText: 'dominant-failure' }).count()).resolves.toBe(1);
      await page.screenshot({ path: path.join(tmp.path, 'report.png'), fullPage: true });
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
});
