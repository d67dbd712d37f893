// The log records of one backend: the SDK's batch (or simple) log record processor over the
// backend's guarded exporter, behind this wrapper. It counts what reached the queue, runs flushes
// and the shutdown one after another, and starts each only once no export of the backend is running.
//
// Why: sdk-logs up to 0.218 loses every queued record of a flush that starts while an export runs
// when that export ends during the flush's first wait (its `_flushAll` then reads
// `_currentExport.exportCompleted` of null and rejects; fixed upstream in
// open-telemetry/opentelemetry-js#6763). A burst of more than 512 records before `end()` was such a
// case: the first batch was on its way when the shutdown started, and only those 512 arrived. And a
// flush that starts while another runs returns at once, so a shutdown right after `step.flush()`
// closed the exporter under the batches still to send.
import type { Context } from '@opentelemetry/api';
import type { LogRecordProcessor, SdkLogRecord } from '@opentelemetry/sdk-logs';
import type { ExportHealth } from '../sinks/export-health.js';

export class BackendLogProcessor implements LogRecordProcessor {
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly inner: LogRecordProcessor,
    private readonly health: ExportHealth,
  ) {}

  onEmit(record: SdkLogRecord, ctx?: Context): void {
    this.health.offeredItems++;
    this.inner.onEmit(record, ctx);
  }

  forceFlush(): Promise<void> {
    return this.serially(() => this.inner.forceFlush());
  }

  shutdown(): Promise<void> {
    return this.serially(async () => {
      await this.inner.shutdown();
      // every record the processor kept went to the exporter: the others met a full queue
      this.health.drained = true;
    });
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const next = this.last.then(() => this.health.whenIdle(work));
    this.last = next.catch(() => undefined);
    return next;
  }
}
