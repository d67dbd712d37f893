/**
 * A real, local OTLP/HTTP receiver for tests (loopback only).
 *
 * - Listens on 127.0.0.1, port 0 (a free port); `receiver.url` is `http://127.0.0.1:PORT`.
 * - Accepts POST /v1/traces, /v1/metrics, /v1/logs in both encodings the OpenTelemetry JS exporters send:
 *   `application/json` (exporter-*-otlp-http) and `application/x-protobuf` (exporter-*-otlp-proto),
 *   optionally `content-encoding: gzip` (or deflate / br).
 * - Protobuf is decoded with a small schema-driven wire-format decoder (no protobufjs in the tree).
 * - Both encodings are normalised into ONE shape (see `OtlpSpan`, `OtlpMetricPoint`, `OtlpLogRecord`):
 *   ids are lowercase hex strings, timestamps are `bigint` nanoseconds, attribute values are plain JS
 *   values (int64 → number when safe, else bigint; bytes → Uint8Array; arrays; kvlists → objects).
 * - Every HTTP request is recorded (`rawRequests()`): path, headers, content type, sizes, status answered.
 * - `mode` decides the answer: 'ok' (200 + empty success body in the request's encoding), 'unauthorized' (401),
 *   'unavailable' (503), 'hang' (read the request, never answer until `close()`).
 * - `waitFor(predicate)` is event-driven: the predicate is re-checked after each recorded request.
 * - `close()` destroys every open socket (also hung ones), so tests never leak handles.
 *
 * The small shared building blocks (`freeClosedPort`, `readRequestBody`, `decodeContentEncoding`,
 * `WaiterSet`, `SocketTracker`) are exported for the Application Insights receiver.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// Shared small utilities
// ---------------------------------------------------------------------------------------------

/** Binds 127.0.0.1:0, reads the port the OS picked, closes. Nothing listens there afterwards. */
export async function freeClosedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

/** `http://127.0.0.1:PORT` where nothing listens (connection refused). */
export async function closedUrl(): Promise<string> {
  return `http://127.0.0.1:${await freeClosedPort()}`;
}

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads the whole request body (wire bytes, still content-encoded). */
export function readRequestBody(req: IncomingMessage, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.once('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
    req.once('aborted', () => {
      if (!failed) {
        failed = true;
        reject(new Error('request aborted by the client'));
      }
    });
  });
}

/** Undoes `content-encoding` (gzip, x-gzip, deflate, br, identity). Throws on an unknown coding. */
export function decodeContentEncoding(body: Buffer, contentEncoding: string | undefined): Buffer {
  const codings = (contentEncoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let out = body;
  // Codings are listed in the order they were applied: undo them in reverse.
  for (const coding of codings.reverse()) {
    if (coding === 'gzip' || coding === 'x-gzip') out = gunzipSync(out);
    else if (coding === 'deflate') out = inflateSync(out);
    else if (coding === 'br') out = brotliDecompressSync(out);
    else throw new Error(`unsupported content-encoding: ${coding}`);
  }
  return out;
}

type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

/** Event-driven waiting: `check()` re-evaluates every pending predicate (call it after each recorded request). */
export class WaiterSet<Self> {
  private readonly waiters = new Set<{ check: () => void; fail: (err: Error) => void }>();

  constructor(
    private readonly self: Self,
    private readonly describe: () => string,
  ) {}

  waitFor<T>(predicate: (self: Self) => T, timeoutMs = 5_000): Promise<Truthy<T>> {
    return new Promise<Truthy<T>>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        check: () => {
          let value: T;
          try {
            value = predicate(this.self);
          } catch (err) {
            waiter.fail(err instanceof Error ? err : new Error(String(err)));
            return;
          }
          if (value) {
            this.waiters.delete(waiter);
            if (timer) clearTimeout(timer);
            resolve(value as Truthy<T>);
          }
        },
        fail: (err: Error) => {
          this.waiters.delete(waiter);
          if (timer) clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
      waiter.check();
      if (!this.waiters.has(waiter)) return; // already settled synchronously
      timer = setTimeout(() => {
        waiter.fail(new Error(`waitFor: predicate not satisfied within ${timeoutMs} ms. Received so far: ${this.describe()}`));
      }, timeoutMs);
    });
  }

  check(): void {
    for (const waiter of [...this.waiters]) waiter.check();
  }

  failAll(err: Error): void {
    for (const waiter of [...this.waiters]) waiter.fail(err);
  }
}

/** Tracks the sockets of a server so `destroyAll()` can end even hung requests. */
export class SocketTracker {
  private readonly sockets = new Set<Socket>();

  /** Listens to 'connection' (the raw TCP socket, also for https servers). */
  constructor(server: NetServer) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

export interface SetModeOptions {
  /** Apply the mode to the next N requests only, then return to the mode that was in force before. */
  forRequests?: number;
}

/** The current answer mode, optionally for the next N requests only. */
export class ModeSwitch<M extends string> {
  private temporary: { mode: M; remaining: number } | undefined;

  constructor(private base: M) {}

  get current(): M {
    return this.temporary?.mode ?? this.base;
  }

  set(mode: M, opts: SetModeOptions = {}): void {
    if (opts.forRequests === undefined) {
      this.base = mode;
      this.temporary = undefined;
    } else if (opts.forRequests > 0) {
      this.temporary = { mode, remaining: opts.forRequests };
    }
  }

  /** The mode for one arriving request (consumes one use of a temporary mode). */
  take(): M {
    const t = this.temporary;
    if (!t) return this.base;
    t.remaining -= 1;
    if (t.remaining <= 0) this.temporary = undefined;
    return t.mode;
  }
}

/** Closes a server and destroys all its sockets; resolves when the server is fully closed. */
export async function closeServer(
  server: NetServer & { closeAllConnections?: () => void },
  sockets: SocketTracker,
): Promise<void> {
  if (!server.listening) {
    sockets.destroyAll();
    return;
  }
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  sockets.destroyAll();
  server.closeAllConnections?.();
  await closed;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire-format decoding, schema driven
// ---------------------------------------------------------------------------------------------

export class ProtobufDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufDecodeError';
  }
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

type ScalarType =
  | 'string'
  | 'bytes'
  | 'bool'
  | 'enum'
  | 'int32'
  | 'uint32'
  | 'sint32'
  | 'int64'
  | 'uint64'
  | 'sint64'
  | 'fixed32'
  | 'sfixed32'
  | 'fixed64'
  | 'sfixed64'
  | 'float'
  | 'double';

const SCALAR_WIRE_TYPES: Readonly<Record<ScalarType, number>> = {
  string: LEN,
  bytes: LEN,
  bool: VARINT,
  enum: VARINT,
  int32: VARINT,
  uint32: VARINT,
  sint32: VARINT,
  int64: VARINT,
  uint64: VARINT,
  sint64: VARINT,
  fixed32: I32,
  sfixed32: I32,
  float: I32,
  fixed64: I64,
  sfixed64: I64,
  double: I64,
};

function isScalar(type: string): type is ScalarType {
  return Object.prototype.hasOwnProperty.call(SCALAR_WIRE_TYPES, type);
}

/** [fieldName (JSON camelCase), type (scalar or message name), 'repeated'?] */
type FieldDef = readonly [name: string, type: string, label?: 'repeated'];
type MessageDef = Readonly<Record<number, FieldDef>>;

/**
 * The OTLP v1 messages (opentelemetry-proto), field numbers from the .proto files. Field names are the
 * OTLP/JSON (lowerCamelCase) names, so decoded protobuf and parsed JSON share one normaliser.
 */
const OTLP_SCHEMA: Readonly<Record<string, MessageDef>> = {
  // opentelemetry/proto/common/v1/common.proto
  AnyValue: {
    1: ['stringValue', 'string'],
    2: ['boolValue', 'bool'],
    3: ['intValue', 'int64'],
    4: ['doubleValue', 'double'],
    5: ['arrayValue', 'ArrayValue'],
    6: ['kvlistValue', 'KeyValueList'],
    7: ['bytesValue', 'bytes'],
  },
  ArrayValue: { 1: ['values', 'AnyValue', 'repeated'] },
  KeyValueList: { 1: ['values', 'KeyValue', 'repeated'] },
  KeyValue: { 1: ['key', 'string'], 2: ['value', 'AnyValue'] },
  InstrumentationScope: {
    1: ['name', 'string'],
    2: ['version', 'string'],
    3: ['attributes', 'KeyValue', 'repeated'],
    4: ['droppedAttributesCount', 'uint32'],
  },
  // opentelemetry/proto/resource/v1/resource.proto
  Resource: { 1: ['attributes', 'KeyValue', 'repeated'], 2: ['droppedAttributesCount', 'uint32'] },

  // opentelemetry/proto/collector/trace/v1 + trace/v1/trace.proto
  ExportTraceServiceRequest: { 1: ['resourceSpans', 'ResourceSpans', 'repeated'] },
  ResourceSpans: { 1: ['resource', 'Resource'], 2: ['scopeSpans', 'ScopeSpans', 'repeated'], 3: ['schemaUrl', 'string'] },
  ScopeSpans: { 1: ['scope', 'InstrumentationScope'], 2: ['spans', 'Span', 'repeated'], 3: ['schemaUrl', 'string'] },
  Span: {
    1: ['traceId', 'bytes'],
    2: ['spanId', 'bytes'],
    3: ['traceState', 'string'],
    4: ['parentSpanId', 'bytes'],
    5: ['name', 'string'],
    6: ['kind', 'enum'],
    7: ['startTimeUnixNano', 'fixed64'],
    8: ['endTimeUnixNano', 'fixed64'],
    9: ['attributes', 'KeyValue', 'repeated'],
    10: ['droppedAttributesCount', 'uint32'],
    11: ['events', 'SpanEvent', 'repeated'],
    12: ['droppedEventsCount', 'uint32'],
    13: ['links', 'SpanLink', 'repeated'],
    14: ['droppedLinksCount', 'uint32'],
    15: ['status', 'Status'],
    16: ['flags', 'fixed32'],
  },
  SpanEvent: {
    1: ['timeUnixNano', 'fixed64'],
    2: ['name', 'string'],
    3: ['attributes', 'KeyValue', 'repeated'],
    4: ['droppedAttributesCount', 'uint32'],
  },
  SpanLink: {
    1: ['traceId', 'bytes'],
    2: ['spanId', 'bytes'],
    3: ['traceState', 'string'],
    4: ['attributes', 'KeyValue', 'repeated'],
    5: ['droppedAttributesCount', 'uint32'],
    6: ['flags', 'fixed32'],
  },
  Status: { 2: ['message', 'string'], 3: ['code', 'enum'] },

  // opentelemetry/proto/collector/metrics/v1 + metrics/v1/metrics.proto
  ExportMetricsServiceRequest: { 1: ['resourceMetrics', 'ResourceMetrics', 'repeated'] },
  ResourceMetrics: {
    1: ['resource', 'Resource'],
    2: ['scopeMetrics', 'ScopeMetrics', 'repeated'],
    3: ['schemaUrl', 'string'],
  },
  ScopeMetrics: { 1: ['scope', 'InstrumentationScope'], 2: ['metrics', 'Metric', 'repeated'], 3: ['schemaUrl', 'string'] },
  Metric: {
    1: ['name', 'string'],
    2: ['description', 'string'],
    3: ['unit', 'string'],
    5: ['gauge', 'Gauge'],
    7: ['sum', 'Sum'],
    9: ['histogram', 'Histogram'],
    10: ['exponentialHistogram', 'ExponentialHistogram'],
    11: ['summary', 'Summary'],
    12: ['metadata', 'KeyValue', 'repeated'],
  },
  Gauge: { 1: ['dataPoints', 'NumberDataPoint', 'repeated'] },
  Sum: {
    1: ['dataPoints', 'NumberDataPoint', 'repeated'],
    2: ['aggregationTemporality', 'enum'],
    3: ['isMonotonic', 'bool'],
  },
  Histogram: { 1: ['dataPoints', 'HistogramDataPoint', 'repeated'], 2: ['aggregationTemporality', 'enum'] },
  ExponentialHistogram: {
    1: ['dataPoints', 'ExponentialHistogramDataPoint', 'repeated'],
    2: ['aggregationTemporality', 'enum'],
  },
  Summary: { 1: ['dataPoints', 'SummaryDataPoint', 'repeated'] },
  NumberDataPoint: {
    7: ['attributes', 'KeyValue', 'repeated'],
    2: ['startTimeUnixNano', 'fixed64'],
    3: ['timeUnixNano', 'fixed64'],
    4: ['asDouble', 'double'],
    6: ['asInt', 'sfixed64'],
    5: ['exemplars', 'Exemplar', 'repeated'],
    8: ['flags', 'uint32'],
  },
  HistogramDataPoint: {
    9: ['attributes', 'KeyValue', 'repeated'],
    2: ['startTimeUnixNano', 'fixed64'],
    3: ['timeUnixNano', 'fixed64'],
    4: ['count', 'fixed64'],
    5: ['sum', 'double'],
    6: ['bucketCounts', 'fixed64', 'repeated'],
    7: ['explicitBounds', 'double', 'repeated'],
    8: ['exemplars', 'Exemplar', 'repeated'],
    10: ['flags', 'uint32'],
    11: ['min', 'double'],
    12: ['max', 'double'],
  },
  ExponentialHistogramDataPoint: {
    1: ['attributes', 'KeyValue', 'repeated'],
    2: ['startTimeUnixNano', 'fixed64'],
    3: ['timeUnixNano', 'fixed64'],
    4: ['count', 'fixed64'],
    5: ['sum', 'double'],
    6: ['scale', 'sint32'],
    7: ['zeroCount', 'fixed64'],
    8: ['positive', 'ExponentialBuckets'],
    9: ['negative', 'ExponentialBuckets'],
    10: ['flags', 'uint32'],
    11: ['exemplars', 'Exemplar', 'repeated'],
    12: ['min', 'double'],
    13: ['max', 'double'],
    14: ['zeroThreshold', 'double'],
  },
  ExponentialBuckets: { 1: ['offset', 'sint32'], 2: ['bucketCounts', 'uint64', 'repeated'] },
  SummaryDataPoint: {
    7: ['attributes', 'KeyValue', 'repeated'],
    2: ['startTimeUnixNano', 'fixed64'],
    3: ['timeUnixNano', 'fixed64'],
    4: ['count', 'fixed64'],
    5: ['sum', 'double'],
    6: ['quantileValues', 'ValueAtQuantile', 'repeated'],
    8: ['flags', 'uint32'],
  },
  ValueAtQuantile: { 1: ['quantile', 'double'], 2: ['value', 'double'] },
  Exemplar: {
    7: ['filteredAttributes', 'KeyValue', 'repeated'],
    2: ['timeUnixNano', 'fixed64'],
    3: ['asDouble', 'double'],
    6: ['asInt', 'sfixed64'],
    4: ['spanId', 'bytes'],
    5: ['traceId', 'bytes'],
  },

  // opentelemetry/proto/collector/logs/v1 + logs/v1/logs.proto
  ExportLogsServiceRequest: { 1: ['resourceLogs', 'ResourceLogs', 'repeated'] },
  ResourceLogs: { 1: ['resource', 'Resource'], 2: ['scopeLogs', 'ScopeLogs', 'repeated'], 3: ['schemaUrl', 'string'] },
  ScopeLogs: { 1: ['scope', 'InstrumentationScope'], 2: ['logRecords', 'LogRecord', 'repeated'], 3: ['schemaUrl', 'string'] },
  LogRecord: {
    1: ['timeUnixNano', 'fixed64'],
    11: ['observedTimeUnixNano', 'fixed64'],
    2: ['severityNumber', 'enum'],
    3: ['severityText', 'string'],
    5: ['body', 'AnyValue'],
    6: ['attributes', 'KeyValue', 'repeated'],
    7: ['droppedAttributesCount', 'uint32'],
    8: ['flags', 'fixed32'],
    9: ['traceId', 'bytes'],
    10: ['spanId', 'bytes'],
    12: ['eventName', 'string'],
  },
};

// Fail fast on a typo in the schema above.
for (const [messageName, def] of Object.entries(OTLP_SCHEMA)) {
  for (const [, type] of Object.values(def)) {
    if (!isScalar(type) && !(type in OTLP_SCHEMA)) {
      throw new Error(`otlp-receiver schema: ${messageName} refers to unknown type ${type}`);
    }
  }
}

export type ProtoMessageName = keyof typeof OTLP_SCHEMA;

/** A decoded protobuf message: 64-bit integers are bigint, bytes are Uint8Array, repeated fields are arrays. */
export interface DecodedMessage {
  [field: string]: DecodedValue;
}
export type DecodedValue = string | number | bigint | boolean | Uint8Array | DecodedMessage | DecodedValue[];

const utf8 = new TextDecoder('utf-8', { fatal: true });

class WireReader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new ProtobufDecodeError(`truncated message: need ${n} byte(s) at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }

  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      this.need(1);
      const byte = this.buf[this.pos++] as number;
      result |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new ProtobufDecodeError(`varint longer than 10 bytes at offset ${this.pos}`);
  }

  fixed64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  sfixed64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  sfixed32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (len > BigInt(this.buf.length - this.pos)) {
      throw new ProtobufDecodeError(`length-delimited field of ${len} bytes at offset ${this.pos} exceeds the buffer`);
    }
    const n = Number(len);
    const slice = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return slice;
  }

  skip(wireType: number, fieldNumber: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case I64:
        this.need(8);
        this.pos += 8;
        return;
      case LEN:
        this.bytes();
        return;
      case I32:
        this.need(4);
        this.pos += 4;
        return;
      case 3: {
        // Deprecated groups: skip until the matching end-group tag.
        for (;;) {
          if (this.done) throw new ProtobufDecodeError(`unterminated group for field ${fieldNumber}`);
          const tag = this.varint();
          const wt = Number(tag & 7n);
          const fn = Number(tag >> 3n);
          if (wt === 4) {
            if (fn !== fieldNumber) throw new ProtobufDecodeError(`mismatched end-group ${fn} for field ${fieldNumber}`);
            return;
          }
          this.skip(wt, fn);
        }
      }
      default:
        throw new ProtobufDecodeError(`invalid wire type ${wireType} for field ${fieldNumber} at offset ${this.pos}`);
    }
  }
}

function zigzag(v: bigint): bigint {
  return (v >> 1n) ^ -(v & 1n);
}

function readScalar(reader: WireReader, type: ScalarType): DecodedValue {
  switch (type) {
    case 'string':
      try {
        return utf8.decode(reader.bytes());
      } catch {
        throw new ProtobufDecodeError(`invalid UTF-8 in string field at offset ${reader.pos}`);
      }
    case 'bytes':
      return new Uint8Array(reader.bytes()); // copy: do not keep the request buffer alive
    case 'bool':
      return reader.varint() !== 0n;
    case 'enum':
    case 'int32':
      return Number(BigInt.asIntN(32, reader.varint()));
    case 'uint32':
      return Number(BigInt.asUintN(32, reader.varint()));
    case 'sint32':
      return Number(BigInt.asIntN(32, zigzag(reader.varint())));
    case 'int64':
      return BigInt.asIntN(64, reader.varint());
    case 'uint64':
      return reader.varint();
    case 'sint64':
      return BigInt.asIntN(64, zigzag(reader.varint()));
    case 'fixed32':
      return reader.fixed32();
    case 'sfixed32':
      return reader.sfixed32();
    case 'float':
      return reader.float();
    case 'fixed64':
      return reader.fixed64();
    case 'sfixed64':
      return reader.sfixed64();
    case 'double':
      return reader.double();
  }
}

/**
 * Decodes `buf` as the OTLP message `messageName`. Unknown fields are skipped (forward compatible);
 * a known field with the wrong wire type, a truncated buffer or invalid UTF-8 throws ProtobufDecodeError.
 * Repeated scalar fields accept both packed and unpacked encodings.
 */
export function decodeProtobuf(buf: Uint8Array, messageName: ProtoMessageName, depth = 0): DecodedMessage {
  const def = OTLP_SCHEMA[messageName];
  if (!def) throw new ProtobufDecodeError(`unknown message type ${String(messageName)}`);
  if (depth > 64) throw new ProtobufDecodeError('message nesting deeper than 64 levels');
  const out: DecodedMessage = {};
  const reader = new WireReader(buf);
  while (!reader.done) {
    const tag = reader.varint();
    const fieldNumber = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (fieldNumber === 0) throw new ProtobufDecodeError(`field number 0 in ${messageName} at offset ${reader.pos}`);
    const field = def[fieldNumber];
    if (!field) {
      reader.skip(wireType, fieldNumber);
      continue;
    }
    const [name, type, label] = field;
    const repeated = label === 'repeated';
    const scalar = isScalar(type);
    if (repeated && scalar && wireType === LEN && type !== 'string' && type !== 'bytes') {
      // packed repeated scalars
      const packed = new WireReader(reader.bytes());
      const list = ensureList(out, name);
      while (!packed.done) list.push(readScalar(packed, type));
      continue;
    }
    const expectedWireType = scalar ? SCALAR_WIRE_TYPES[type] : LEN;
    if (wireType !== expectedWireType) {
      throw new ProtobufDecodeError(
        `${messageName}.${name} (field ${fieldNumber}) has wire type ${wireType}, expected ${expectedWireType}`,
      );
    }
    const value = scalar ? readScalar(reader, type) : decodeProtobuf(reader.bytes(), type, depth + 1);
    if (repeated) ensureList(out, name).push(value);
    else out[name] = value; // proto3: last one wins
  }
  return out;
}

function ensureList(out: DecodedMessage, name: string): DecodedValue[] {
  const existing = out[name];
  if (Array.isArray(existing)) return existing;
  const list: DecodedValue[] = [];
  out[name] = list;
  return list;
}

/** Minimal protobuf encoding of google.rpc.Status { code = 1; message = 2 } for error answers. */
function encodeRpcStatus(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from([0x08]), encodeVarint(code), Buffer.from([0x12]), encodeVarint(msg.length), msg]);
}

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------------------------
// Normalised model
// ---------------------------------------------------------------------------------------------

export type Signal = 'traces' | 'metrics' | 'logs';
export type OtlpEncoding = 'json' | 'protobuf';

/** Attribute map: plain JS values (string, boolean, number, bigint for unsafe int64, Uint8Array, arrays, objects). */
export type Attributes = Record<string, unknown>;

export interface OtlpScope {
  name: string;
  version: string;
  attributes: Attributes;
}

interface OtlpItemBase {
  /** Resource attributes as a plain object. */
  resource: Attributes;
  resourceSchemaUrl: string;
  scope: OtlpScope;
  /** Which encoding carried this item. */
  encoding: OtlpEncoding;
}

export interface OtlpSpanEvent {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
}

export interface OtlpSpanLink {
  traceId: string | undefined;
  spanId: string | undefined;
  traceState: string;
  attributes: Attributes;
}

export interface OtlpSpan extends OtlpItemBase {
  /** 32 lowercase hex chars. */
  traceId: string | undefined;
  /** 16 lowercase hex chars. */
  spanId: string | undefined;
  /** undefined for a root span. */
  parentSpanId: string | undefined;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer (= api SpanKind + 1). */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: OtlpSpanEvent[];
  links: OtlpSpanLink[];
  /** code: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  flags: number;
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
}

export type OtlpMetricType = 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'summary' | 'unknown';

export interface OtlpExponentialBuckets {
  offset: number;
  bucketCounts: number[];
}

/** One data point, flattened with its metric's name / unit / type. Optional fields depend on `type`. */
export interface OtlpMetricPoint extends OtlpItemBase {
  name: string;
  description: string;
  unit: string;
  type: OtlpMetricType;
  attributes: Attributes;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  flags: number;
  /** sum / histogram / exponentialHistogram: 1 delta, 2 cumulative. */
  aggregationTemporality?: number;
  /** sum only. */
  isMonotonic?: boolean;
  /** gauge / sum: the value (int64 → number when safe, else bigint). */
  value?: number | bigint;
  /** gauge / sum: which field carried the value. */
  valueType?: 'int' | 'double';
  /** histogram / exponentialHistogram / summary */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  /** histogram: counts per bucket (length = explicitBounds.length + 1). */
  bucketCounts?: number[];
  explicitBounds?: number[];
  /** exponentialHistogram */
  scale?: number;
  zeroCount?: number;
  zeroThreshold?: number;
  positive?: OtlpExponentialBuckets;
  negative?: OtlpExponentialBuckets;
  /** summary */
  quantileValues?: Array<{ quantile: number; value: number }>;
}

export interface OtlpLogRecord extends OtlpItemBase {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  /** Decoded AnyValue; undefined when the record had no body. */
  body: unknown;
  attributes: Attributes;
  traceId: string | undefined;
  spanId: string | undefined;
  flags: number;
  eventName: string;
  droppedAttributesCount: number;
}

// ----- value helpers (accept both the JSON forms and the decoded-protobuf forms) -----

type Obj = Record<string, unknown>;

function asObj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as Obj) : undefined;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Field by OTLP/JSON lowerCamelCase name, falling back to the proto snake_case name. */
function get(o: Obj | undefined, name: string): unknown {
  if (!o) return undefined;
  if (Object.prototype.hasOwnProperty.call(o, name)) return o[name];
  const alt = snake(name);
  return alt !== name && Object.prototype.hasOwnProperty.call(o, alt) ? o[alt] : undefined;
}

function has(o: Obj, name: string): boolean {
  return get(o, name) !== undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** int64/uint64 in any form (number, decimal string, bigint, {low, high}) → bigint. */
function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : undefined;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
  const o = asObj(v);
  if (o && typeof o['low'] === 'number' && typeof o['high'] === 'number') {
    const bits = (BigInt(o['high'] >>> 0) << 32n) | BigInt(o['low'] >>> 0);
    return o['unsigned'] === true ? bits : BigInt.asIntN(64, bits);
  }
  return undefined;
}

function nanos(v: unknown): bigint {
  return toBigInt(v) ?? 0n;
}

/** int64 → number when it is a safe integer, bigint otherwise. */
function int64(v: unknown): number | bigint {
  const b = toBigInt(v);
  if (b === undefined) return typeof v === 'number' ? v : Number.NaN;
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return Number(v); // also 'NaN', 'Infinity', '-Infinity'
  const b = toBigInt(v);
  return b === undefined ? Number.NaN : Number(b);
}

function optNum(v: unknown): number | undefined {
  return v === undefined || v === null ? undefined : toNum(v);
}

function enumNumber(v: unknown, names: readonly string[]): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const i = names.indexOf(v);
    if (i >= 0) return i;
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS_CODES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const TEMPORALITIES = ['AGGREGATION_TEMPORALITY_UNSPECIFIED', 'AGGREGATION_TEMPORALITY_DELTA', 'AGGREGATION_TEMPORALITY_CUMULATIVE'];
const SEVERITIES = [
  'SEVERITY_NUMBER_UNSPECIFIED',
  ...['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].flatMap((level) =>
    ['', '2', '3', '4'].map((suffix) => `SEVERITY_NUMBER_${level}${suffix}`),
  ),
];

function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  return undefined;
}

/** Trace/span id: protobuf bytes → hex; JSON hex string (JS exporter) → lowercase hex; base64 string → hex. Empty → undefined. */
function hexId(v: unknown, byteLength: number): string | undefined {
  if (v instanceof Uint8Array) return v.length === 0 ? undefined : Buffer.from(v).toString('hex');
  if (typeof v !== 'string' || v === '') return undefined;
  if (v.length === byteLength * 2 && /^[0-9a-fA-F]+$/.test(v)) return v.toLowerCase();
  const decoded = Buffer.from(v, 'base64');
  return decoded.length === 0 ? undefined : decoded.toString('hex');
}

function setKey(target: Attributes, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** AnyValue (JSON or decoded protobuf) → plain JS value; an empty AnyValue → undefined. */
export function normalizeAnyValue(v: unknown): unknown {
  const o = asObj(v);
  if (!o) return undefined;
  if (has(o, 'stringValue')) return str(get(o, 'stringValue'));
  if (has(o, 'boolValue')) return get(o, 'boolValue') === true;
  if (has(o, 'intValue')) return int64(get(o, 'intValue'));
  if (has(o, 'doubleValue')) return toNum(get(o, 'doubleValue'));
  if (has(o, 'arrayValue')) return list(get(asObj(get(o, 'arrayValue')), 'values')).map(normalizeAnyValue);
  if (has(o, 'kvlistValue')) return normalizeAttributes(get(asObj(get(o, 'kvlistValue')), 'values'));
  if (has(o, 'bytesValue')) return bytesOf(get(o, 'bytesValue'));
  return undefined;
}

/** repeated KeyValue → plain object. */
export function normalizeAttributes(v: unknown): Attributes {
  const out: Attributes = {};
  for (const kv of list(v)) {
    const o = asObj(kv);
    if (!o) continue;
    setKey(out, str(get(o, 'key')), normalizeAnyValue(get(o, 'value')));
  }
  return out;
}

function normalizeScope(v: unknown): OtlpScope {
  const o = asObj(v);
  return { name: str(get(o, 'name')), version: str(get(o, 'version')), attributes: normalizeAttributes(get(o, 'attributes')) };
}

interface ScopeContext {
  resource: Attributes;
  resourceSchemaUrl: string;
  scope: OtlpScope;
  encoding: OtlpEncoding;
}

function* scopes(root: unknown, resourceKey: string, scopeKey: string, encoding: OtlpEncoding): Generator<[ScopeContext, Obj]> {
  for (const r of list(get(asObj(root), resourceKey))) {
    const ro = asObj(r);
    if (!ro) continue;
    const resource = normalizeAttributes(get(asObj(get(ro, 'resource')), 'attributes'));
    const resourceSchemaUrl = str(get(ro, 'schemaUrl'));
    for (const s of list(get(ro, scopeKey))) {
      const so = asObj(s);
      if (!so) continue;
      yield [{ resource, resourceSchemaUrl, scope: normalizeScope(get(so, 'scope')), encoding }, so];
    }
  }
}

export function normalizeTraces(root: unknown, encoding: OtlpEncoding): OtlpSpan[] {
  const out: OtlpSpan[] = [];
  for (const [ctx, so] of scopes(root, 'resourceSpans', 'scopeSpans', encoding)) {
    for (const sp of list(get(so, 'spans'))) {
      const s = asObj(sp);
      if (!s) continue;
      const status = asObj(get(s, 'status'));
      out.push({
        ...ctx,
        traceId: hexId(get(s, 'traceId'), 16),
        spanId: hexId(get(s, 'spanId'), 8),
        parentSpanId: hexId(get(s, 'parentSpanId'), 8),
        traceState: str(get(s, 'traceState')),
        name: str(get(s, 'name')),
        kind: enumNumber(get(s, 'kind'), SPAN_KINDS),
        startTimeUnixNano: nanos(get(s, 'startTimeUnixNano')),
        endTimeUnixNano: nanos(get(s, 'endTimeUnixNano')),
        attributes: normalizeAttributes(get(s, 'attributes')),
        events: list(get(s, 'events')).map((e) => {
          const eo = asObj(e);
          return {
            name: str(get(eo, 'name')),
            timeUnixNano: nanos(get(eo, 'timeUnixNano')),
            attributes: normalizeAttributes(get(eo, 'attributes')),
          };
        }),
        links: list(get(s, 'links')).map((l) => {
          const lo = asObj(l);
          return {
            traceId: hexId(get(lo, 'traceId'), 16),
            spanId: hexId(get(lo, 'spanId'), 8),
            traceState: str(get(lo, 'traceState')),
            attributes: normalizeAttributes(get(lo, 'attributes')),
          };
        }),
        status: { code: enumNumber(get(status, 'code'), STATUS_CODES), message: str(get(status, 'message')) },
        flags: toNum(get(s, 'flags') ?? 0),
        droppedAttributesCount: toNum(get(s, 'droppedAttributesCount') ?? 0),
        droppedEventsCount: toNum(get(s, 'droppedEventsCount') ?? 0),
        droppedLinksCount: toNum(get(s, 'droppedLinksCount') ?? 0),
      });
    }
  }
  return out;
}

const METRIC_TYPES: readonly OtlpMetricType[] = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'];

function normalizeBuckets(v: unknown): OtlpExponentialBuckets {
  const o = asObj(v);
  return { offset: toNum(get(o, 'offset') ?? 0), bucketCounts: list(get(o, 'bucketCounts')).map(toNum) };
}

export function normalizeMetrics(root: unknown, encoding: OtlpEncoding): OtlpMetricPoint[] {
  const out: OtlpMetricPoint[] = [];
  for (const [ctx, so] of scopes(root, 'resourceMetrics', 'scopeMetrics', encoding)) {
    for (const m of list(get(so, 'metrics'))) {
      const mo = asObj(m);
      if (!mo) continue;
      const type = METRIC_TYPES.find((t) => has(mo, t)) ?? 'unknown';
      const data = type === 'unknown' ? undefined : asObj(get(mo, type));
      const temporality = get(data, 'aggregationTemporality');
      for (const p of list(get(data, 'dataPoints'))) {
        const po = asObj(p);
        if (!po) continue;
        const point: OtlpMetricPoint = {
          ...ctx,
          name: str(get(mo, 'name')),
          description: str(get(mo, 'description')),
          unit: str(get(mo, 'unit')),
          type,
          attributes: normalizeAttributes(get(po, 'attributes')),
          startTimeUnixNano: nanos(get(po, 'startTimeUnixNano')),
          timeUnixNano: nanos(get(po, 'timeUnixNano')),
          flags: toNum(get(po, 'flags') ?? 0),
        };
        if (type === 'sum' || type === 'histogram' || type === 'exponentialHistogram') {
          point.aggregationTemporality = enumNumber(temporality, TEMPORALITIES);
        }
        if (type === 'sum') point.isMonotonic = get(data, 'isMonotonic') === true;
        if (type === 'gauge' || type === 'sum') {
          if (has(po, 'asInt')) {
            point.value = int64(get(po, 'asInt'));
            point.valueType = 'int';
          } else if (has(po, 'asDouble')) {
            point.value = toNum(get(po, 'asDouble'));
            point.valueType = 'double';
          }
        }
        if (type === 'histogram' || type === 'exponentialHistogram' || type === 'summary') {
          point.count = toNum(get(po, 'count') ?? 0);
          point.sum = optNum(get(po, 'sum'));
        }
        if (type === 'histogram' || type === 'exponentialHistogram') {
          point.min = optNum(get(po, 'min'));
          point.max = optNum(get(po, 'max'));
        }
        if (type === 'histogram') {
          point.bucketCounts = list(get(po, 'bucketCounts')).map(toNum);
          point.explicitBounds = list(get(po, 'explicitBounds')).map(toNum);
        }
        if (type === 'exponentialHistogram') {
          point.scale = toNum(get(po, 'scale') ?? 0);
          point.zeroCount = toNum(get(po, 'zeroCount') ?? 0);
          point.zeroThreshold = toNum(get(po, 'zeroThreshold') ?? 0);
          point.positive = normalizeBuckets(get(po, 'positive'));
          point.negative = normalizeBuckets(get(po, 'negative'));
        }
        if (type === 'summary') {
          point.quantileValues = list(get(po, 'quantileValues')).map((q) => {
            const qo = asObj(q);
            return { quantile: toNum(get(qo, 'quantile') ?? 0), value: toNum(get(qo, 'value') ?? 0) };
          });
        }
        out.push(point);
      }
    }
  }
  return out;
}

export function normalizeLogs(root: unknown, encoding: OtlpEncoding): OtlpLogRecord[] {
  const out: OtlpLogRecord[] = [];
  for (const [ctx, so] of scopes(root, 'resourceLogs', 'scopeLogs', encoding)) {
    for (const r of list(get(so, 'logRecords'))) {
      const lo = asObj(r);
      if (!lo) continue;
      out.push({
        ...ctx,
        timeUnixNano: nanos(get(lo, 'timeUnixNano')),
        observedTimeUnixNano: nanos(get(lo, 'observedTimeUnixNano')),
        severityNumber: enumNumber(get(lo, 'severityNumber'), SEVERITIES),
        severityText: str(get(lo, 'severityText')),
        body: normalizeAnyValue(get(lo, 'body')),
        attributes: normalizeAttributes(get(lo, 'attributes')),
        traceId: hexId(get(lo, 'traceId'), 16),
        spanId: hexId(get(lo, 'spanId'), 8),
        flags: toNum(get(lo, 'flags') ?? 0),
        eventName: str(get(lo, 'eventName')),
        droppedAttributesCount: toNum(get(lo, 'droppedAttributesCount') ?? 0),
      });
    }
  }
  return out;
}

const REQUEST_MESSAGES: Readonly<Record<Signal, ProtoMessageName>> = {
  traces: 'ExportTraceServiceRequest',
  metrics: 'ExportMetricsServiceRequest',
  logs: 'ExportLogsServiceRequest',
};

export interface DecodedExport {
  spans: OtlpSpan[];
  metrics: OtlpMetricPoint[];
  logs: OtlpLogRecord[];
}

/** Decodes one (already content-decoded) export request body of the given signal and encoding. */
export function decodeOtlpExport(signal: Signal, encoding: OtlpEncoding, body: Uint8Array): DecodedExport {
  const root: unknown =
    encoding === 'json'
      ? JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
      : decodeProtobuf(body, REQUEST_MESSAGES[signal]);
  return {
    spans: signal === 'traces' ? normalizeTraces(root, encoding) : [],
    metrics: signal === 'metrics' ? normalizeMetrics(root, encoding) : [],
    logs: signal === 'logs' ? normalizeLogs(root, encoding) : [],
  };
}

// ---------------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------------

export type ReceiverMode = 'ok' | 'unauthorized' | 'unavailable' | 'hang';

export interface OtlpReceiverOptions {
  mode?: ReceiverMode;
  /**
   * Sent as `Retry-After` on 503 answers. The OTel JS exporters honour it: 0 means "retry at once"
   * (no ~1 s back-off), handy for retry tests; unset, they back off 1 s, 1.5 s, ... (±20 % jitter).
   */
  retryAfterSeconds?: number;
  /** Answer each request this long after it was read: a slow backend (its items are recorded when answered). */
  answerDelayMs?: number;
  /** Requests with a larger (wire) body are answered 413. Default 64 MiB. */
  maxBodyBytes?: number;
  /** Serve HTTPS with this key and certificate; with `ca` and `requestCert`, only clients with a certificate that CA signed (mTLS). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
  /** Listen on this port (e.g. 4318, the port the docs name) instead of a free one. */
  port?: number;
}

export interface ReceivedOtlpRequest {
  /** 1-based arrival order. */
  seq: number;
  method: string;
  /** Path without the query string, e.g. `/v1/traces`. */
  path: string;
  /** The signal the path selects (undefined for an unknown path). */
  signal: Signal | undefined;
  /** Node lower-cases header names: `headers.authorization`, `headers['content-type']`, ... */
  headers: IncomingHttpHeaders;
  contentType: string;
  contentEncoding: string | undefined;
  encoding: OtlpEncoding | undefined;
  /** Size on the wire (still compressed). */
  byteSize: number;
  /** Size after undoing content-encoding. */
  decodedSize: number;
  /** The mode in force when the request arrived. */
  mode: ReceiverMode;
  /** Status answered; undefined while hanging (mode 'hang'). */
  statusCode: number | undefined;
  /** True when answered 2xx: only those items count in spans() / metrics() / logs(). */
  accepted: boolean;
  /** Why the body could not be decoded, if it could not. */
  decodeError: string | undefined;
  spans: OtlpSpan[];
  metrics: OtlpMetricPoint[];
  logs: OtlpLogRecord[];
  receivedAt: Date;
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT` (no trailing slash). Exporter URLs are `${url}/v1/traces` etc. */
  readonly url: string;
  readonly port: number;
  readonly tracesUrl: string;
  readonly metricsUrl: string;
  readonly logsUrl: string;
  /** The mode the next request will get. */
  readonly mode: ReceiverMode;
  /** Switch the answer mode; with `{ forRequests: n }` only for the next n requests (e.g. one 503, then ok again). */
  setMode(mode: ReceiverMode, opts?: SetModeOptions): void;
  /** Every HTTP request, in arrival order, whatever the answer. */
  rawRequests(): ReceivedOtlpRequest[];
  /** Spans of accepted (2xx) requests, flattened. */
  spans(): OtlpSpan[];
  /** Metric data points of accepted requests, flattened (one entry per data point). */
  metrics(): OtlpMetricPoint[];
  /** Log records of accepted requests, flattened. */
  logs(): OtlpLogRecord[];
  /** Requests whose body could not be decoded. */
  decodeErrors(): string[];
  /**
   * Resolves with the predicate's first truthy result. Re-checked now and after every recorded request
   * (no polling). Rejects after `timeoutMs` (default 5000) with a summary of what arrived, or on close().
   */
  waitFor<T>(predicate: (receiver: OtlpReceiver) => T, timeoutMs?: number): Promise<Truthy<T>>;
  /** Forgets everything recorded so far. */
  clear(): void;
  /** Stops listening and destroys every open (also hung) connection. Idempotent. */
  close(): Promise<void>;
}

const SIGNAL_PATHS: Readonly<Record<string, Signal>> = {
  '/v1/traces': 'traces',
  '/v1/metrics': 'metrics',
  '/v1/logs': 'logs',
};

function encodingOf(contentType: string): OtlpEncoding | undefined {
  const mime = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (mime === 'application/json') return 'json';
  if (mime === 'application/x-protobuf' || mime === 'application/protobuf') return 'protobuf';
  return undefined;
}

/** google.rpc.Code values used in error answers. */
const RPC_INVALID_ARGUMENT = 3;
const RPC_UNAVAILABLE = 14;
const RPC_UNAUTHENTICATED = 16;

class OtlpReceiverImpl implements OtlpReceiver {
  readonly url: string;
  readonly port: number;
  readonly tracesUrl: string;
  readonly metricsUrl: string;
  readonly logsUrl: string;
  private readonly modes: ModeSwitch<ReceiverMode>;
  private records: ReceivedOtlpRequest[] = [];
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly waiters: WaiterSet<OtlpReceiver>;

  constructor(
    private readonly server: Server,
    private readonly sockets: SocketTracker,
    port: number,
    mode: ReceiverMode,
    private readonly retryAfterSeconds: number | undefined,
    scheme = 'http',
    private readonly answerDelayMs = 0,
  ) {
    this.port = port;
    this.url = `${scheme}://127.0.0.1:${port}`;
    this.tracesUrl = `${this.url}/v1/traces`;
    this.metricsUrl = `${this.url}/v1/metrics`;
    this.logsUrl = `${this.url}/v1/logs`;
    this.modes = new ModeSwitch<ReceiverMode>(mode);
    this.waiters = new WaiterSet<OtlpReceiver>(this, () => this.summary());
  }

  get mode(): ReceiverMode {
    return this.modes.current;
  }

  setMode(mode: ReceiverMode, opts?: SetModeOptions): void {
    this.modes.set(mode, opts);
  }

  rawRequests(): ReceivedOtlpRequest[] {
    return [...this.records];
  }

  spans(): OtlpSpan[] {
    return this.records.filter((r) => r.accepted).flatMap((r) => r.spans);
  }

  metrics(): OtlpMetricPoint[] {
    return this.records.filter((r) => r.accepted).flatMap((r) => r.metrics);
  }

  logs(): OtlpLogRecord[] {
    return this.records.filter((r) => r.accepted).flatMap((r) => r.logs);
  }

  decodeErrors(): string[] {
    return this.records.flatMap((r) => (r.decodeError ? [`${r.method} ${r.path}: ${r.decodeError}`] : []));
  }

  waitFor<T>(predicate: (receiver: OtlpReceiver) => T, timeoutMs?: number): Promise<Truthy<T>> {
    if (this.closed) return Promise.reject(new Error('waitFor: the OTLP receiver is closed'));
    return this.waiters.waitFor(predicate, timeoutMs);
  }

  clear(): void {
    this.records = [];
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.waiters.failAll(new Error('waitFor: the OTLP receiver was closed'));
      this.closing = closeServer(this.server, this.sockets);
    }
    return this.closing;
  }

  summary(): string {
    if (this.records.length === 0) return 'no requests';
    return `${this.records.length} request(s): ${this.records
      .map(
        (r) =>
          `#${r.seq} ${r.method} ${r.path} ${r.encoding ?? r.contentType} → ${r.statusCode ?? 'hanging'}` +
          ` (${r.spans.length} spans, ${r.metrics.length} points, ${r.logs.length} logs` +
          `${r.decodeError ? `, decode error: ${r.decodeError}` : ''})`,
      )
      .join('; ')}`;
  }

  async handle(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): Promise<void> {
    const mode = this.modes.take();
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const signal = SIGNAL_PATHS[path];
    const contentType = req.headers['content-type'] ?? '';
    const contentEncoding = req.headers['content-encoding'];
    const encoding = encodingOf(contentType);
    const record: ReceivedOtlpRequest = {
      seq: ++this.seq,
      method: req.method ?? '',
      path,
      signal,
      headers: { ...req.headers },
      contentType,
      contentEncoding,
      encoding,
      byteSize: 0,
      decodedSize: 0,
      mode,
      statusCode: undefined,
      accepted: false,
      decodeError: undefined,
      spans: [],
      metrics: [],
      logs: [],
      receivedAt: new Date(),
    };

    let status: number;
    let rpcCode = 0;
    let message = '';
    try {
      const wire = await readRequestBody(req, maxBodyBytes);
      record.byteSize = wire.length;
      if (record.method !== 'POST') {
        [status, rpcCode, message] = [405, RPC_INVALID_ARGUMENT, `method ${record.method} not allowed`];
      } else if (!signal) {
        [status, rpcCode, message] = [404, RPC_INVALID_ARGUMENT, `unknown path ${path}`];
      } else if (!encoding) {
        record.decodeError = `unsupported content-type ${JSON.stringify(contentType)}`;
        [status, rpcCode, message] = [415, RPC_INVALID_ARGUMENT, record.decodeError];
      } else {
        try {
          const body = decodeContentEncoding(wire, contentEncoding);
          record.decodedSize = body.length;
          const decoded = decodeOtlpExport(signal, encoding, body);
          record.spans = decoded.spans;
          record.metrics = decoded.metrics;
          record.logs = decoded.logs;
          status = 200;
        } catch (err) {
          record.decodeError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
          [status, rpcCode, message] = [400, RPC_INVALID_ARGUMENT, record.decodeError];
        }
      }
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        record.decodeError = err.message;
        [status, rpcCode, message] = [413, RPC_INVALID_ARGUMENT, err.message];
      } else {
        // The client went away while sending: record what we know, nothing to answer.
        record.decodeError = err instanceof Error ? err.message : String(err);
        this.record(record);
        return;
      }
    }

    // Like a collector's auth / admission checks, the mode wins over body problems (not over 404 / 405).
    if (status !== 404 && status !== 405) {
      if (mode === 'unauthorized') [status, rpcCode, message] = [401, RPC_UNAUTHENTICATED, 'unauthenticated (test receiver mode)'];
      else if (mode === 'unavailable') [status, rpcCode, message] = [503, RPC_UNAVAILABLE, 'unavailable (test receiver mode)'];
    }

    if (mode === 'hang' && !this.closed) {
      // Never answer: the socket stays open until the client gives up or close() destroys it.
      this.record(record);
      return;
    }
    if (this.answerDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.answerDelayMs).unref());

    record.statusCode = status;
    record.accepted = status >= 200 && status < 300;
    const asProtobuf = encoding === 'protobuf';
    const responseBody = record.accepted
      ? asProtobuf
        ? Buffer.alloc(0) // an empty Export*ServiceResponse: no partial_success
        : Buffer.from('{}')
      : asProtobuf
        ? encodeRpcStatus(rpcCode, message)
        : Buffer.from(JSON.stringify({ code: rpcCode, message }));
    const headers: Record<string, string | number> = {
      'content-type': asProtobuf ? 'application/x-protobuf' : 'application/json',
      'content-length': responseBody.length,
    };
    if (status === 503 && this.retryAfterSeconds !== undefined) headers['retry-after'] = this.retryAfterSeconds;
    res.writeHead(status, headers);
    res.end(responseBody);
    this.record(record);
  }

  private record(record: ReceivedOtlpRequest): void {
    this.records.push(record);
    this.waiters.check();
  }
}

/** Starts an OTLP/HTTP receiver on 127.0.0.1 (a free port). Always `close()` it (afterEach / onTestFinished). */
export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const tls = opts.tls;
  const server: Server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: tls.requestCert ?? false, rejectUnauthorized: tls.requestCert ?? false }) : createServer();
  const sockets = new SocketTracker(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const receiver = new OtlpReceiverImpl(server, sockets, port, opts.mode ?? 'ok', opts.retryAfterSeconds, tls ? 'https' : 'http', opts.answerDelayMs);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    receiver.handle(req, res, maxBodyBytes).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      }
    });
  });
  return receiver;
}
