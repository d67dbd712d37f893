// Install scenarios: fresh projects that install the packed step-telemetry tarball beside
// dependencies of their own. The suite runs without a network (a network namespace with only
// loopback), so `scripts/warm-offline-cache.mjs` (run by `pretest`, outside the namespace) performs
// each scenario's install once to fill the npm cache, and the tests repeat it with `--offline`
// (`test/helpers/install-scenario.ts`). Add a scenario here; nothing else needs to change.

/** @type {ReadonlyArray<{ name: string, why: string, dependencies: Record<string, string> }>} */
export const INSTALL_SCENARIOS = [
  {
    name: 'otel-2x-latest',
    why: 'a project that already runs the newest OpenTelemetry 2.x (SDK 2.12, experimental 0.223, api 1.9)',
    dependencies: {
      '@opentelemetry/api': '1.9.1',
      '@opentelemetry/sdk-node': '0.223.0',
      '@opentelemetry/sdk-metrics': '2.12.0',
      '@opentelemetry/sdk-trace-base': '2.12.0',
      '@opentelemetry/instrumentation': '0.223.0',
      '@opentelemetry/instrumentation-http': '0.223.0',
    },
  },
];
