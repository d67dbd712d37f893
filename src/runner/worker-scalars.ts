// A runner worker's step.log() values, forwarded to the runner (whose Prometheus endpoint is the
// job's): the latest value per name, at most once a second.
import type { Step } from '../step.js';
import { send } from './worker-channel.js';

/** run.log scalars logged and not yet sent to the runner: the latest value per name. */
const scalars = new Map<string, number>();
let scalarsTimer: NodeJS.Timeout | undefined;
const SCALARS_EVERY_MS = 1000;

/** The worker's step.log() values also go to the runner, whose Prometheus endpoint is the job's. */
export function forwardScalars(s: Step): void {
  const log = s.log.bind(s);
  s.log = (name, value, options) => {
    log(name, value, options);
    if (typeof name !== 'string' || typeof value !== 'number' || !Number.isFinite(value)) return;
    scalars.set(name, value);
    if (scalarsTimer === undefined) {
      scalarsTimer = setTimeout(sendScalars, SCALARS_EVERY_MS);
      scalarsTimer.unref();
    }
  };
}

export function sendScalars(): void {
  if (scalarsTimer !== undefined) clearTimeout(scalarsTimer);
  scalarsTimer = undefined;
  if (scalars.size === 0) return;
  send({ type: 'metrics', scalars: [...scalars] });
  scalars.clear();
}
