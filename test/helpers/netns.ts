/**
 * The suite runs in a network namespace of its own (scripts/run-tests.mjs): only loopback exists.
 * A test that configures Application Insights calls this first, so that it can never run where
 * the exporter could reach Azure (statsbeat, the instance metadata address) by accident.
 */
import os from 'node:os';

export function assertIsolatedNetwork(): void {
  const others = Object.keys(os.networkInterfaces()).filter((name) => name !== 'lo');
  if (others.length > 0) {
    throw new Error(
      `this test configures Application Insights and must run without a network (interfaces here: ${others.join(', ')}): run it through npm test, which makes a network namespace with only loopback`,
    );
  }
}
