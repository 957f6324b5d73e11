/**
 * All wiring in one place: configuration → store → OTLP pipeline →
 * receivers, and the query API over the store. Start order is the data's
 * direction read backwards; shutdown is the reverse, so nothing accepted
 * is left unflushed.
 */
import type { AgentConfig } from "./config/schema.ts";
import { describeConfig, retentionMs } from "./config/load.ts";
import { Counters } from "./model/counters.ts";
import type { Logger } from "./log.ts";
import { DuckDbStore } from "./store/store.ts";
import { TeeSink } from "./model/tee_sink.ts";
import { OtlpPipeline } from "./receive/otlp/pipeline.ts";
import { OtlpHttpReceiver } from "./receive/otlp/http_receiver.ts";
import { OtlpGrpcReceiver } from "./receive/otlp/grpc_receiver.ts";
import { QueryApiServer } from "./serve/query_api.ts";
import { PrometheusExposition } from "./serve/prometheus.ts";
import {
  AgentService,
  QUERY_EBPF_METRICS_PATH,
} from "./serve/agent_service.ts";
import { ColonyForwarder } from "./forward/colony_forwarder.ts";
import { parseDuration } from "./config/duration.ts";
import { HttpCapture } from "./capture/http_capture.ts";
import { type CapabilityReport, probeCapabilities } from "../ffi/libbpf/mod.ts";
import type { CaptureState } from "./serve/capabilities.ts";
import { StoreQueryBackend } from "./serve/store_backend.ts";

export interface AgentOptions {
  log: Logger;
  configPath?: string;
  /** Kept across a reload (SIGHUP), so `status` counts since the process began. */
  counters?: Counters;
  /**
   * An open store for `config.storage.path` to use instead of opening it:
   * what {@linkcode Agent.handOverStore} returned on a reload.
   */
  store?: DuckDbStore;
}

interface Component {
  shutdown(): Promise<void>;
}

export class Agent {
  readonly counters: Counters;
  readonly receivers: Record<string, { listen: string }> = {};
  #capabilities: CapabilityReport | undefined;
  #store: DuckDbStore | undefined;
  #components: Component[] = [];
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly config: AgentConfig,
    private readonly options: AgentOptions,
  ) {
    this.counters = options.counters ?? new Counters();
  }

  /** What the kernel allows, probed at start whether or not beyla is enabled. */
  get capabilities(): CapabilityReport | undefined {
    return this.#capabilities;
  }

  static async start(
    config: AgentConfig,
    options: AgentOptions,
  ): Promise<Agent> {
    const agent = new Agent(config, options);
    try {
      await agent.#start();
    } catch (error) {
      await agent.shutdown();
      throw error;
    }
    return agent;
  }

  async #start(): Promise<void> {
    const { config, counters } = this;
    const log = this.options.log;
    const store = this.options.store ?? await DuckDbStore.open(
      config.storage.path,
      { agentId: config.agent.id, counters },
    );
    this.#store = store;
    this.#components.push(store);
    // The forwarder's acks hold unforwarded rows past retention: load them
    // before retention first runs.
    let forwarder: ColonyForwarder | undefined;
    const forward = config.forward;
    if (forward.colony_url !== undefined) {
      forwarder = new ColonyForwarder({
        store,
        counters,
        agentId: config.agent.id,
        colonyUrl: forward.colony_url,
        token: forward.token,
        intervalMs: parseDuration(forward.interval),
        batchSize: forward.batch_size,
        timeoutMs: parseDuration(forward.timeout),
      });
      await forwarder.load();
      const held = forwarder;
      store.setRetentionHold({
        keepAbove: () => held.keepAbove(),
        maxHeldBytes: forward.max_unforwarded_bytes,
      });
    }
    store.startRetention(retentionMs(config));
    // What receivers and the capture write: the store, then its followers.
    const sink = new TeeSink(store, counters);
    // GET /metrics: cumulative RED histograms of every committed batch.
    const prometheus = new PrometheusExposition({ counters });
    sink.follow(prometheus);
    log.info(this.options.store ? "storage kept open" : "storage open", {
      path: config.storage.path,
      session_id: store.sessionId,
    });
    const otlpExport = config.export.otlp;
    if (otlpExport.endpoint !== undefined) {
      // Loaded only when configured: the OTLP encoder evaluates the
      // otlp-transformer root (~850 kB of generated code).
      const { OtlpExporter } = await import("./forward/otlp_export.ts");
      const exporter = new OtlpExporter({
        endpoint: otlpExport.endpoint,
        headers: otlpExport.headers,
        intervalMs: parseDuration(otlpExport.interval),
        timeoutMs: parseDuration(otlpExport.timeout),
        maxQueue: otlpExport.max_queue,
        counters,
        log,
      });
      exporter.start();
      sink.follow(exporter);
      // Stops after the receivers and the capture (its final flush sends
      // their last batches), before the store.
      this.#components.unshift(exporter);
      log.info("OTLP export on", { endpoint: otlpExport.endpoint });
    }

    if (config.otlp.enabled) {
      const handler = new OtlpPipeline({
        beyla: config.beyla,
        counters,
        sink,
      });
      const common = {
        maxBodyBytes: config.otlp.max_body_bytes,
        bearerToken: config.otlp.bearer_token,
        handler,
        counters,
      };
      const http = new OtlpHttpReceiver({
        ...common,
        listen: config.otlp.http_listen,
      });
      await http.start();
      this.#components.unshift(http);
      this.receivers.otlp_http = { listen: http.address };
      const grpc = new OtlpGrpcReceiver({
        ...common,
        listen: config.otlp.grpc_listen,
      });
      await grpc.start();
      this.#components.unshift(grpc);
      this.receivers.otlp_grpc = { listen: grpc.address };
    }

    const report = probeCapabilities();
    this.#capabilities = report;
    const capture: CaptureState = {};
    if (!config.beyla.enabled) {
      capture.reason = "beyla.enabled is false";
    } else if (!anyCaptureProtocol(config.beyla)) {
      capture.reason =
        "beyla.protocols: http, grpc, sql and redis are all disabled";
    } else if (!report.canLoad) {
      capture.reason = "eBPF is not available here, see missing";
      log.warn(
        "beyla.enabled: eBPF capture is not available here; RED metrics and spans come from OTLP only",
        { missing: report.missing.join("; ") },
      );
    } else {
      const http = await HttpCapture.start({
        beyla: config.beyla,
        sink,
        counters,
        log,
      });
      // Stops before the store, so its last window is stored.
      this.#components.unshift(http);
      capture.stats = () => http.stats;
      log.info("eBPF HTTP capture running");
    }

    const startedAt = Date.now();
    const agentService = new AgentService(store, counters);
    const api = new QueryApiServer(
      config.agent.api_listen,
      new StoreQueryBackend(store, {
        live: {
          agentId: config.agent.id,
          startedAt,
          counters,
          receivers: this.receivers,
          config: describeConfig(config).split("\n"),
          beyla: config.beyla,
          capabilities: report,
          capture,
          forward: forwarder && (() => forwarder.status()),
        },
      }),
      {
        metrics: prometheus,
        rpc: {
          [QUERY_EBPF_METRICS_PATH]: (request) => agentService.handle(request),
        },
      },
    );
    await api.start();
    this.#components.unshift(api);
    if (forwarder !== undefined) {
      await forwarder.start();
      // Stops before the store closes.
      this.#components.unshift(forwarder);
    }
    this.receivers.query_api = { listen: api.address };
    log.info("agent running", {
      id: config.agent.id,
      ...Object.fromEntries(
        Object.entries(this.receivers).map(([k, v]) => [k, v.listen]),
      ),
    });
  }

  /**
   * For a reload on the same storage: stops everything but the store, which
   * is flushed and left open for the next agent (no close, checkpoint and
   * open in between).
   */
  async handOverStore(): Promise<DuckDbStore> {
    const store = this.#store;
    if (store === undefined) throw new Error("the agent has no store");
    this.#components = this.#components.filter((c) => c !== store);
    await this.shutdown();
    await store.flush();
    store.setRetentionHold(undefined);
    return store;
  }

  /** Stops receivers first, then flushes and closes storage. Safe twice. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const component of this.#components) {
        try {
          await component.shutdown();
        } catch (error) {
          this.options.log.error("shutdown failed", { error: String(error) });
        }
      }
    })();
    return this.#stopping;
  }
}

/** Whether the eBPF capture has anything to do. */
function anyCaptureProtocol(beyla: AgentConfig["beyla"]): boolean {
  const p = beyla.protocols;
  return p.http.enabled || p.grpc.enabled || p.sql.enabled || p.redis.enabled;
}
