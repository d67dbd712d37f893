// The alert rules: valid for the real promtool (Debian's 2.42), their unit tests pass, and they
// use only catalog metrics and the labels every delivery path carries.
import { describe, expect, it } from 'vitest';
import { promtool } from './helpers/prometheus-servers.js';
import {
  ALLOWED_LABELS,
  EXTERNAL_METRICS,
  ROOT,
  RULES_FILE,
  RULES_TEST_FILE,
  alertRules,
  catalogSeriesNames,
  labelNames,
  metricNames,
  withBoolComparisons,
} from './fixtures/ops/promql.js';

describe('alert rules', () => {
  it('pass promtool check rules', async () => {
    const r = await promtool(['check', 'rules', RULES_FILE]);
    expect(r.stderr + r.stdout).toContain('SUCCESS: 8 rules found');
    expect(r.code).toBe(0);
  });

  it('pass their promtool unit tests (promtool test rules)', async () => {
    const r = await promtool(['test', 'rules', RULES_TEST_FILE], { cwd: `${ROOT}alerts` });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('cover the issue list, each with a severity, a summary and a runbook description', () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert).sort()).toEqual(
      ['MiniBatchLatencyRegressing', 'PushgatewayDataStale', 'StepDisappeared', 'StepErrorBudgetExceeded', 'StepErrorBudgetNearlyUsed', 'StepFailureRateHigh', 'StepStalled', 'WorkerMemoryNearLimit'].sort(),
    );
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toMatch(/\{\{ \$labels\.step \}\}/);
      expect(r.annotations?.description, r.alert).toMatch(/Runbook: .{40,}/);
    }
    const byName = Object.fromEntries(rules.map((r) => [r.alert, r]));
    expect(byName.StepErrorBudgetNearlyUsed.labels?.severity).toBe('warning');
    expect(byName.StepErrorBudgetExceeded.labels?.severity).toBe('critical');
    expect(byName.StepDisappeared.labels?.severity).toBe('critical');
    expect(byName.WorkerMemoryNearLimit.labels?.severity).toBe('warning');
    expect(byName.WorkerMemoryNearLimit.annotations?.summary).toMatch(/\{\{ \$labels\.worker \}\}/);
  });

  it('select only catalog metrics (and the Pushgateway push time), by labels all paths carry', () => {
    const known = catalogSeriesNames();
    for (const r of alertRules()) {
      for (const name of metricNames(r.expr)) expect(known.has(name) || EXTERNAL_METRICS.has(name), `${r.alert}: ${name}`).toBe(true);
      for (const label of labelNames(r.expr)) expect(ALLOWED_LABELS.has(label), `${r.alert}: label ${label}`).toBe(true);
      // every comparison is written with spaces, so the live test can turn it into `bool`
      expect(withBoolComparisons(r.expr), r.alert).toContain(' bool ');
    }
  });
});
