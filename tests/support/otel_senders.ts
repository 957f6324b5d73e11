/**
 * Real OpenTelemetry JS SDKs and OTLP exporters, one per transport, for
 * end-to-end tests: what a user's service would send.
 */
import { type Context, context, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import {
  AggregationTemporality,
  MeterProvider,
  type MetricReader,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as GrpcMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { Metadata } from "@grpc/grpc-js";

export type Transport = "http/protobuf" | "http/json" | "grpc";
export const TRANSPORTS: Transport[] = ["http/protobuf", "http/json", "grpc"];

export interface Endpoint {
  httpUrl: string;
  grpcAddress: string;
  token?: string;
}

function headers(endpoint: Endpoint): Record<string, string> {
  return endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {};
}

function grpcMetadata(endpoint: Endpoint): Metadata {
  const metadata = new Metadata();
  if (endpoint.token) metadata.set("authorization", `Bearer ${endpoint.token}`);
  return metadata;
}

export function traceExporter(transport: Transport, endpoint: Endpoint) {
  switch (transport) {
    case "http/protobuf":
      return new ProtoTraceExporter({
        url: `${endpoint.httpUrl}/v1/traces`,
        headers: headers(endpoint),
      });
    case "http/json":
      return new JsonTraceExporter({
        url: `${endpoint.httpUrl}/v1/traces`,
        headers: headers(endpoint),
      });
    case "grpc":
      return new GrpcTraceExporter({
        url: `http://${endpoint.grpcAddress}`,
        metadata: grpcMetadata(endpoint),
      });
  }
}

function metricExporter(
  transport: Transport,
  endpoint: Endpoint,
  temporality: AggregationTemporality,
) {
  const options = {
    url: `${endpoint.httpUrl}/v1/metrics`,
    headers: headers(endpoint),
    temporalityPreference: temporality,
  };
  switch (transport) {
    case "http/protobuf":
      return new ProtoMetricExporter(options);
    case "http/json":
      return new JsonMetricExporter(options);
    case "grpc":
      return new GrpcMetricExporter({
        url: `http://${endpoint.grpcAddress}`,
        metadata: grpcMetadata(endpoint),
        temporalityPreference: temporality,
      });
  }
}

/** A tracer provider whose every ended span is exported at once. */
export function tracingSdk(
  transport: Transport,
  endpoint: Endpoint,
  serviceName: string,
) {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": serviceName,
      "process.pid": 4242,
    }),
    spanProcessors: [
      new SimpleSpanProcessor({ exporter: traceExporter(transport, endpoint) }),
    ],
  });
  return {
    tracer: provider.getTracer("coral-agent-tests"),
    /** Context whose active span is `span`: pass to startSpan for children. */
    within: (
      span: ReturnType<ReturnType<typeof provider.getTracer>["startSpan"]>,
    ): Context => trace.setSpan(context.active(), span),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** A meter provider that exports only when `flush()` is called. */
export function metricsSdk(
  transport: Transport,
  endpoint: Endpoint,
  serviceName: string,
  temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE,
) {
  const reader: MetricReader = new PeriodicExportingMetricReader({
    exporter: metricExporter(transport, endpoint, temporality),
    exportIntervalMillis: 3_600_000,
    exportTimeoutMillis: 30_000,
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    readers: [reader],
  });
  return {
    meter: provider.getMeter("coral-agent-tests"),
    flush: () => reader.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
