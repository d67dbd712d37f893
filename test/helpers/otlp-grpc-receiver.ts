/**
 * A real OTLP/gRPC receiver for tests: a @grpc/grpc-js server on 127.0.0.1 (a free port) serving
 * the three collector services of opentelemetry-proto (`opentelemetry.proto.collector.{trace,
 * metrics,logs}.v1.*Service/Export`), plain or over TLS (optionally mTLS). Requests are decoded with
 * the OTLP schema of otlp-receiver.ts (the field numbers of the official .proto files; no maintained
 * npm package ships those files) into the same shapes as the HTTP receiver's. `mode` 'unauthenticated'
 * answers status 16, 'hang' never answers (until close()).
 */
import * as grpc from '@grpc/grpc-js';
import { decodeOtlpExport, type OtlpLogRecord, type OtlpMetricPoint, type OtlpSpan, type Signal } from './otlp-receiver.js';

const SERVICES: Readonly<Record<Signal, string>> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

export type GrpcReceiverMode = 'ok' | 'unauthenticated' | 'hang';

export interface OtlpGrpcReceiver {
  /** `http://127.0.0.1:PORT` (or https:// with TLS): the value of OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly calls: ReadonlyArray<{ signal: Signal; metadata: Record<string, unknown> }>;
  spans(): OtlpSpan[];
  metrics(): OtlpMetricPoint[];
  logs(): OtlpLogRecord[];
  close(): Promise<void>;
}

export async function startOtlpGrpcReceiver(opts: { mode?: GrpcReceiverMode; tls?: { key: Buffer; cert: Buffer; ca?: Buffer; requestCert?: boolean } } = {}): Promise<OtlpGrpcReceiver> {
  const server = new grpc.Server();
  const spans: OtlpSpan[] = [];
  const metrics: OtlpMetricPoint[] = [];
  const logs: OtlpLogRecord[] = [];
  const calls: Array<{ signal: Signal; metadata: Record<string, unknown> }> = [];
  const hung: Array<() => void> = [];
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: SERVICES[signal],
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls.push({ signal, metadata: call.metadata.getMap() });
        if (opts.mode === 'hang') {
          hung.push(() => callback({ code: grpc.status.UNAVAILABLE, details: 'closing' }));
          return;
        }
        if (opts.mode === 'unauthenticated') {
          callback({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
          return;
        }
        const decoded = decodeOtlpExport(signal, 'protobuf', call.request);
        spans.push(...decoded.spans);
        metrics.push(...decoded.metrics);
        logs.push(...decoded.logs);
        callback(null, Buffer.alloc(0));
      },
    });
  }
  const tls = opts.tls;
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.requestCert ?? false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (error, p) => (error ? reject(error) : resolve(p))));
  return {
    // TLS by name: a server name that is an IP address is not allowed (RFC 6066); the certificate has DNS:localhost
    url: tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    calls,
    spans: () => [...spans],
    metrics: () => [...metrics],
    logs: () => [...logs],
    close: async () => {
      for (const answer of hung) answer();
      server.forceShutdown();
    },
  };
}
