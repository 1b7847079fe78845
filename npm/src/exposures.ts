/**
 * Exposures to a collector: a bounded queue of exposure events, sent as JSON batches to
 * `POST {url}/v1/events` with the writer token, when a batch is full or the flush interval has
 * passed. Recording never blocks and never throws: when the queue is full the event is dropped and
 * counted, and a batch the collector does not take is dropped and counted too (the collector
 * keys each exposure by its content, so a resend would be harmless, but an unbounded retry is
 * not). `PromptflagClient` sends through one when `collector` is configured; an app evaluating
 * with `Evaluator` directly can use one itself.
 */

import type { LlmCallEvent } from "./calls.js";
import type { ExposureEvent } from "./client.js";
import { InvalidArgumentError } from "./errors.js";

/** Where exposures go, and how they are batched. */
export interface CollectorOptions {
  /** The collector's base URL (`http://127.0.0.1:8787`); events go to `{url}/v1/events`. */
  url: string | URL;
  /** The collector's writer token, sent as `Authorization: Bearer …`. */
  token?: string;
  /** Events per POST at most. Default 500. */
  batchSize?: number;
  /** How long a partial batch may wait, in ms. Default 1 000. */
  flushIntervalMs?: number;
  /** Events held at most; past that, new events are dropped and counted. Default 10 000. */
  maxQueue?: number;
  /** The fetch to use. Default: the global one. */
  fetch?: typeof fetch;
}

/** What happened to recorded exposures. */
export interface ExposureStats {
  /** Events the collector acknowledged. */
  readonly sent: number;
  /** Events dropped because the queue was full. */
  readonly droppedQueueFull: number;
  /** Events dropped because their batch was not delivered. */
  readonly droppedSendFailed: number;
  /** Events waiting. */
  readonly queued: number;
}

function bounded(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`collector.${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** A batching, bounded sender of exposures. */
export class ExposureSender {
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #queue: Array<ExposureEvent | LlmCallEvent> = [];
  readonly #timer: ReturnType<typeof setInterval>;
  #inflight: Promise<void> = Promise.resolve();
  #sent = 0;
  #droppedQueueFull = 0;
  #droppedSendFailed = 0;
  #closed = false;

  constructor(options: CollectorOptions) {
    let base: URL;
    try {
      base = new URL(String(options.url));
    } catch {
      throw new InvalidArgumentError(`collector.url must be an absolute http(s) URL, got ${JSON.stringify(String(options.url))}`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new InvalidArgumentError(`collector.url must use http or https, got ${base.protocol}`);
    }
    this.#url = `${base.href.replace(/\/+$/, "")}/v1/events`;
    this.#headers = { "content-type": "application/json" };
    if (options.token !== undefined && options.token !== "") {
      this.#headers.authorization = `Bearer ${options.token}`;
    }
    const fetcher = options.fetch ?? globalThis.fetch;
    if (typeof fetcher !== "function") {
      throw new InvalidArgumentError("no fetch is available here: pass collector.fetch");
    }
    this.#fetch = fetcher;
    this.#batchSize = bounded("batchSize", options.batchSize, 500);
    this.#maxQueue = bounded("maxQueue", options.maxQueue, 10_000);
    const interval = bounded("flushIntervalMs", options.flushIntervalMs, 1_000);
    this.#timer = setInterval(() => void this.flush(), interval);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Queues an exposure; never blocks. Returns false when it was dropped (or not an exposure). */
  record(event: ExposureEvent): boolean {
    if (this.#closed || event.variant === null) {
      return false;
    }
    return this.#enqueue(event);
  }

  /**
   * Queues an LLM-call event (built by `llmCallEvent`) in the same batches as exposures; never
   * blocks. Returns false when it was dropped.
   */
  recordCall(event: LlmCallEvent): boolean {
    if (this.#closed) {
      return false;
    }
    return this.#enqueue(event);
  }

  #enqueue(event: ExposureEvent | LlmCallEvent): boolean {
    if (this.#queue.length >= this.#maxQueue) {
      this.#droppedQueueFull += 1;
      return false;
    }
    this.#queue.push(event);
    if (this.#queue.length >= this.#batchSize) {
      void this.flush();
    }
    return true;
  }

  /** Sends everything queued; resolves when the collector has answered. Never rejects. */
  flush(): Promise<void> {
    // One batch chain at a time, so batches arrive in order and a flush waits for earlier ones.
    this.#inflight = this.#inflight.then(async () => {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#batchSize);
        try {
          const response = await this.#fetch(this.#url, {
            method: "POST",
            headers: this.#headers,
            body: JSON.stringify(batch),
          });
          await response.arrayBuffer().catch(() => undefined);
          if (response.ok) {
            this.#sent += batch.length;
          } else {
            this.#droppedSendFailed += batch.length;
          }
        } catch {
          this.#droppedSendFailed += batch.length;
        }
      }
    });
    return this.#inflight;
  }

  /** The counters. */
  stats(): ExposureStats {
    return {
      sent: this.#sent,
      droppedQueueFull: this.#droppedQueueFull,
      droppedSendFailed: this.#droppedSendFailed,
      queued: this.#queue.length,
    };
  }

  /** Stops the timer and sends what is queued. */
  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    return this.flush();
  }
}
