// The resource of a step: OpenTelemetry's default resource (telemetry.sdk.*), the standard
// detectors (host, process without its command line, os and service instance when asked for), the
// step's own attributes, then what the user set (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, the
// resourceAttributes option): a value the user set is never overwritten.
// OTEL_NODE_RESOURCE_DETECTORS chooses detectors as sdk-node does (default: env, process, host).
import type { Attributes } from '@opentelemetry/api';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
  type Resource,
  type ResourceDetector,
} from '@opentelemetry/resources';
import type { EnvReader } from '../config.js';

/** The process detector without `process.command_args` and `process.command_line`: arguments may hold secrets. */
const processWithoutArgs: ResourceDetector = {
  detect(config) {
    const detected = processDetector.detect(config);
    const attributes = { ...detected.attributes };
    delete attributes['process.command_args'];
    delete attributes['process.command_line'];
    return { ...detected, attributes };
  },
};

const DETECTORS: Readonly<Record<string, ResourceDetector>> = {
  host: hostDetector,
  os: osDetector,
  process: processWithoutArgs,
  serviceinstance: serviceInstanceIdDetector,
};

export async function stepResource(own: Attributes, extra: Attributes | undefined, r: EnvReader): Promise<Resource> {
  const listed = r.string('OTEL_NODE_RESOURCE_DETECTORS');
  const names = listed === undefined ? ['env', 'process', 'host'] : listed.split(',').map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => n !== 'env' && n !== 'all' && n !== 'none' && DETECTORS[n] === undefined);
  if (unknown.length > 0) r.issue('OTEL_NODE_RESOURCE_DETECTORS', `a list of env, host, os, process, serviceinstance, all or none (got ${unknown.join(', ')})`);
  const all = names.includes('all');
  const none = names.includes('none') && !all;
  const detectors = none ? [] : Object.entries(DETECTORS).filter(([n]) => all || names.includes(n)).map(([, d]) => d);
  let resource = defaultResource().merge(detectResources({ detectors })).merge(resourceFromAttributes(own));
  if (!none && (all || names.includes('env'))) resource = resource.merge(detectResources({ detectors: [envDetector] }));
  if (extra) resource = resource.merge(resourceFromAttributes(extra));
  await resource.waitForAsyncAttributes?.();
  return resource;
}
