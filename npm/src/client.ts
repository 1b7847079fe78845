/**
 * The edge client: local evaluation against a ruleset kept fresh from the promptflag Worker.
 *
 * - `GET /v1/ruleset` with `If-None-Match`, in the background on an interval and on demand;
 * - the last good ruleset keeps serving through network errors and invalid payloads, and a
 *   bundled fallback ruleset serves until the first fetch succeeds;
 * - prompt bodies by hash from `GET /v1/prompts/{sha256}`, each verified against its SHA-256
 *   before it is cached (bounded LRU) or returned;
 * - an exposure callback on every evaluation, and, with `collector`, every exposure sent to the
 *   collector in bounded batches.
 */

import {
  type ContextInput,
  type EvaluateOptions,
  type Evaluation,
  type EvaluationDetails,
  Evaluator,
  type JsonValue,
  PreparedContext,
  type PromptRef,
  type PromptResolution,
  type Reason,
  type ValueType,
} from "./engine.js";
import {
  FetchError,
  InvalidArgumentError,
  NotReadyError,
  PromptflagError,
  PromptIntegrityError,
  PromptNotFoundError,
  RulesetValidationError,
} from "./errors.js";
import type { LlmCallEvent } from "./calls.js";
import { type CollectorOptions, ExposureSender, type ExposureStats } from "./exposures.js";
import { LruCache } from "./lru.js";

/** One evaluation, as the Worker reports exposures (docs/interfaces.md). */
export interface ExposureEvent {
  readonly type: "exposure";
  /** RFC 3339, milliseconds, UTC. */
  readonly timestamp: string;
  readonly environment: string;
  readonly flag_key: string;
  readonly variant: string | null;
  /** The prompt family, for prompt flags. */
  readonly prompt_id: string | null;
  /** The prompt version, for prompt flags. */
  readonly prompt_version: string | null;
  /** The prompt body's hash, for prompt flags. */
  readonly prompt_hash: string | null;
  readonly revision: number;
  /** The context's `targetingKey`, if any. */
  readonly unit: string | null;
  readonly reason: Reason;
}

/** Where the ruleset in use came from. */
export type RulesetSource = "remote" | "fallback";

export interface PromptflagClientOptions {
  /** The Worker's base URL, e.g. `https://flags.example.com`. */
  baseUrl: string | URL;
  /** Background refresh period; `0` turns it off (refresh on demand only). Default 30 000. */
  refreshIntervalMs?: number;
  /** Per-request timeout. Default 10 000. */
  requestTimeoutMs?: number;
  /** A ruleset to serve until the first fetch succeeds (validated now: a bad one throws). */
  fallbackRuleset?: string | Uint8Array | object;
  /** Prompt bodies shipped with the app, by hash; verified, then served without a request. */
  fallbackPrompts?: Record<string, string>;
  /** Only accept rulesets of this environment (a ruleset for another is an invalid payload). */
  environment?: string;
  /** Prompt bodies kept in memory. Default 100. */
  promptCacheSize?: number;
  /** Bytes of prompt bodies kept in memory. Default 16 MiB. */
  promptCacheBytes?: number;
  /**
   * The Worker's read key, sent as `Authorization: Bearer <key>` with every request. Local
   * evaluation reads the ruleset and the prompt bodies, so this is a server key (a client key
   * reads only the evaluation routes; docs/interfaces.md, "Read keys"). Keep it out of pages.
   */
  readKey?: string;
  /**
   * The Ed25519 public key (64 hex digits) of signed rulesets. When set, a ruleset from the edge
   * is used only when its `X-Promptflag-Signature` verifies (WebCrypto) over its environment,
   * revision, epoch and bytes, and when it does not go back from the revision accepted last
   * without a higher epoch (docs/interfaces.md, "Signed rulesets"). A refused one is a
   * {@link RulesetValidationError} (`problems[0].code` `signature_refused`) and the last good
   * ruleset keeps serving.
   */
  rulesetPublicKey?: string;
  /** Extra request headers (an API key for a proxy, say). */
  headers?: Record<string, string>;
  /** The fetch to use. Default: the global one. */
  fetch?: typeof fetch;
  /** Fetch the ruleset at once (default true); otherwise call `refresh()` or `ready()`. */
  autoStart?: boolean;
  /** Called for every evaluation. Exceptions it throws go to `onError`, never to the caller. */
  onExposure?: (event: ExposureEvent) => void;
  /**
   * The collector: every evaluation that serves a variant is sent to it as an exposure, in
   * bounded batches (see {@link ExposureSender}); `exposureStats()` gives the counters.
   */
  collector?: CollectorOptions;
  /** Called with background failures: refreshes, invalid payloads, exposure callbacks. */
  onError?: (error: PromptflagError) => void;
  /** Called after a new ruleset is in use. */
  onUpdate?: (update: RulesetUpdate) => void;
}

/** A new ruleset in use. */
export interface RulesetUpdate {
  readonly revision: number;
  readonly environment: string;
  readonly source: RulesetSource;
}

/** What a refresh found. */
export interface RefreshResult {
  /** True when a new ruleset is now in use; false on `304 Not Modified`. */
  readonly updated: boolean;
  readonly revision: number;
}

/** The client's state. */
export interface ClientStatus {
  readonly ready: boolean;
  readonly source: RulesetSource | null;
  readonly revision: number | null;
  readonly environment: string | null;
  readonly etag: string | null;
  /** When the edge last answered with a usable ruleset or `304`. */
  readonly lastSuccessAt: Date | null;
  /** The last failure, cleared by the next success. */
  readonly lastError: PromptflagError | null;
}

/** A prompt resolution with its body (`null` when no prompt was served). */
export interface PromptWithBody extends PromptResolution {
  readonly body: string | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function hex(bytes: ArrayBuffer): string {
  let text = "";
  for (const byte of new Uint8Array(bytes)) {
    text += byte.toString(16).padStart(2, "0");
  }
  return text;
}

function fromHex(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(text.length / 2));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** The header of `GET /v1/ruleset` carrying the signature (crates/contracts/src/signing.rs). */
const SIGNATURE_HEADER = "x-promptflag-signature";
/** The first line of every signed message. */
const SIGNATURE_DOMAIN = "promptflag-ruleset-signature-v1";

/**
 * Checks a ruleset's signature as docs/interfaces.md ("Signed rulesets") defines it: the text
 * `v1 epoch=E ed25519=HEX`, an Ed25519 signature (WebCrypto) by `publicKey` over the domain line,
 * environment, revision, epoch and the SHA-256 of the bytes, and the epoch rule after
 * `accepted`. Returns the signed revision and epoch; throws why it is refused.
 */
async function verifySignature(
  text: string,
  evaluator: Evaluator,
  header: string | null,
  publicKey: Uint8Array<ArrayBuffer>,
  accepted: { revision: number; epoch: number } | null,
): Promise<{ revision: number; epoch: number }> {
  const revision = evaluator.revision;
  const refuse = (message: string) =>
    new RulesetValidationError(`ruleset rejected: ${message}; keeping the last known good one`, [{ path: "$", code: "signature_refused", message }]);
  if (header === null) throw refuse(`revision ${revision} came without a signature (X-Promptflag-Signature)`);
  const match = /^v1 epoch=(\d+) ed25519=([0-9a-f]{128})$/.exec(header.trim());
  const epoch = match === null ? Number.NaN : Number(match[1]);
  if (match === null || !Number.isSafeInteger(epoch)) throw refuse(`${JSON.stringify(header)} is not a signature (v1 epoch=N ed25519=HEX)`);
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) throw refuse("WebCrypto (crypto.subtle) is not available here, so signatures cannot be verified");
  const encoder = new TextEncoder();
  const digest = await sha256Hex(encoder.encode(text));
  const message = encoder.encode(`${SIGNATURE_DOMAIN}\n${evaluator.environment}\n${revision}\n${epoch}\n${digest}`);
  let verified = false;
  try {
    const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    verified = await subtle.verify({ name: "Ed25519" }, key, fromHex(match[2] ?? ""), message);
  } catch (error) {
    throw refuse(`the signature could not be checked: ${(error as Error)?.message ?? String(error)}`);
  }
  if (!verified) {
    throw refuse(`the signature of revision ${revision} does not verify (a changed ruleset, or one signed for another environment, revision or key)`);
  }
  if (accepted !== null && epoch < accepted.epoch) {
    throw refuse(`revision ${revision} is signed for epoch ${epoch}, below the accepted epoch ${accepted.epoch} (revision ${accepted.revision}): a replayed signature`);
  }
  if (accepted !== null && epoch === accepted.epoch && revision < accepted.revision) {
    throw refuse(`revision ${revision} goes back from revision ${accepted.revision} without a higher epoch (both epoch ${epoch}): a replay, not a rollback`);
  }
  return { revision, epoch };
}

async function sha256Hex(bytes: BufferSource): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) {
    throw new PromptflagError("ENGINE", "WebCrypto (crypto.subtle) is not available here, so prompt bodies cannot be verified");
  }
  return hex(await subtle.digest("SHA-256", bytes));
}

/** A fallback bundle, as `promptflag build` writes it to `fallback/<env>.json`. */
export interface FallbackBundle {
  readonly schema: number;
  readonly environment: string;
  readonly source: string;
  /** The ruleset, as the exact JSON text that was built. */
  readonly ruleset: string;
  /** The SHA-256 of `ruleset`'s UTF-8 bytes. */
  readonly ruleset_sha256: string;
  /** Every body the ruleset names, by the SHA-256 of its bytes. */
  readonly prompts: Readonly<Record<string, string>>;
}

/**
 * Verifies a fallback bundle (`promptflag build`'s `fallback/<env>.json`) by hash and returns
 * the client options that serve it: `fallbackRuleset` (the last built baseline, until the edge
 * answers) and `fallbackPrompts` (its bodies). A bundle whose ruleset or any body does not hash
 * to its name, or that lacks a body its ruleset names, is refused whole with
 * `PromptIntegrityError` (or `InvalidArgumentError` when it is not a bundle at all).
 *
 * ```ts
 * const client = new PromptflagClient({ baseUrl, ...(await verifyBundle(bundle)) });
 * ```
 */
export async function verifyBundle(
  bundle: FallbackBundle | string | Uint8Array,
): Promise<Pick<PromptflagClientOptions, "fallbackRuleset" | "fallbackPrompts">> {
  let parsed: unknown = bundle;
  try {
    if (typeof bundle === "string") parsed = JSON.parse(bundle);
    else if (bundle instanceof Uint8Array) parsed = JSON.parse(new TextDecoder().decode(bundle));
  } catch (error) {
    throw new InvalidArgumentError(`not a fallback bundle: ${(error as Error).message}`);
  }
  const candidate = parsed as Partial<FallbackBundle> | null;
  if (
    candidate === null ||
    typeof candidate !== "object" ||
    candidate.schema !== 1 ||
    typeof candidate.ruleset !== "string" ||
    typeof candidate.ruleset_sha256 !== "string" ||
    typeof candidate.prompts !== "object" ||
    candidate.prompts === null
  ) {
    throw new InvalidArgumentError("not a fallback bundle: schema 1 with ruleset, ruleset_sha256 and prompts");
  }
  const encoder = new TextEncoder();
  const actual = await sha256Hex(encoder.encode(candidate.ruleset));
  if (actual !== candidate.ruleset_sha256) {
    throw new PromptIntegrityError(candidate.ruleset_sha256, actual, "the fallback bundle's ruleset");
  }
  const prompts: Record<string, string> = {};
  for (const [hash, body] of Object.entries(candidate.prompts)) {
    const bodyHash = typeof body === "string" ? await sha256Hex(encoder.encode(body)) : "";
    if (bodyHash !== hash) {
      throw new PromptIntegrityError(hash, bodyHash, "the fallback bundle's prompts");
    }
    prompts[hash] = body as string;
  }
  const ruleset = JSON.parse(candidate.ruleset) as { prompts?: Record<string, { body?: string }> };
  for (const [key, prompt] of Object.entries(ruleset.prompts ?? {})) {
    const hash = prompt.body ?? key;
    if (!(hash in prompts)) {
      throw new PromptIntegrityError(hash, "", "the fallback bundle (the body is missing)");
    }
  }
  return { fallbackRuleset: candidate.ruleset, fallbackPrompts: prompts };
}

function positiveInteger(name: string, value: number | undefined, fallback: number, allowZero: boolean): number {
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidArgumentError(`${name} must be ${allowZero ? "a non-negative" : "a positive"} integer, got ${String(value)}`);
  }
  return value;
}

function asError(error: unknown, url: string): PromptflagError {
  if (error instanceof PromptflagError) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new FetchError(`request to ${url} failed: ${message}`, url, undefined, { cause: error });
}

/** The unit an exposure names: the context's targeting key. */
function unitOf(context: ContextInput | undefined): string | null {
  if (context instanceof PreparedContext) {
    return context.targetingKey ?? null;
  }
  if (typeof context === "string") {
    try {
      const parsed = JSON.parse(context) as { targetingKey?: unknown };
      return typeof parsed?.targetingKey === "string" ? parsed.targetingKey : null;
    } catch {
      return null;
    }
  }
  const key = context?.targetingKey;
  return typeof key === "string" ? key : null;
}

/**
 * Evaluates flags locally from a ruleset it keeps fresh from the promptflag Worker.
 *
 * ```ts
 * const client = new PromptflagClient({ baseUrl: "https://flags.example.com", readKey, fallbackRuleset });
 * await client.ready();
 * const { prompt } = client.resolvePrompt("support_prompt", { targetingKey: userId });
 * const body = await client.getPromptBody(prompt.hash);
 * ```
 */
export class PromptflagClient {
  readonly #base: URL;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #environment: string | undefined;
  readonly #bodies: LruCache<string>;
  readonly #inflightBodies = new Map<string, Promise<string>>();
  readonly #fallbackPrompts = new Map<string, string>();
  readonly #onExposure: ((event: ExposureEvent) => void) | undefined;
  readonly #exposures: ExposureSender | null;
  readonly #onError: ((error: PromptflagError) => void) | undefined;
  readonly #onUpdate: PromptflagClientOptions["onUpdate"];
  readonly #inflightAborts = new Set<AbortController>();
  readonly #listeners = new Set<(update: RulesetUpdate) => void>();
  #evaluator: Evaluator | null = null;
  #source: RulesetSource | null = null;
  #etag: string | null = null;
  #lastSuccessAt: Date | null = null;
  #lastError: PromptflagError | null = null;
  #refreshing: Promise<RefreshResult> | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #firstFetch: Promise<void> | null = null;
  #closed = false;
  readonly #publicKey: Uint8Array<ArrayBuffer> | null = null;
  #accepted: { revision: number; epoch: number } | null = null;

  constructor(options: PromptflagClientOptions) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("PromptflagClient needs options: { baseUrl: 'https://…' }");
    }
    let base: URL;
    try {
      base = new URL(String(options.baseUrl));
    } catch {
      throw new InvalidArgumentError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(String(options.baseUrl))}`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new InvalidArgumentError(`baseUrl must use http or https, got ${base.protocol}`);
    }
    if (!base.pathname.endsWith("/")) {
      base.pathname += "/";
    }
    this.#base = base;
    const fetcher = options.fetch ?? globalThis.fetch;
    if (typeof fetcher !== "function") {
      throw new InvalidArgumentError("no fetch is available here: pass options.fetch");
    }
    this.#fetch = fetcher;
    this.#headers = { ...(options.headers ?? {}) };
    if (options.readKey !== undefined) {
      if (typeof options.readKey !== "string" || options.readKey.trim() === "" || /\s/.test(options.readKey)) {
        throw new InvalidArgumentError("readKey must be the Worker's read key: a non-empty string without white space");
      }
      this.#headers.authorization = `Bearer ${options.readKey}`;
    }
    if (options.rulesetPublicKey !== undefined) {
      if (typeof options.rulesetPublicKey !== "string" || !/^[0-9a-fA-F]{64}$/.test(options.rulesetPublicKey.trim())) {
        throw new InvalidArgumentError("rulesetPublicKey must be an Ed25519 public key: 64 hex digits");
      }
      this.#publicKey = fromHex(options.rulesetPublicKey.trim().toLowerCase());
    }
    this.#timeoutMs = positiveInteger("requestTimeoutMs", options.requestTimeoutMs, 10_000, false);
    const interval = positiveInteger("refreshIntervalMs", options.refreshIntervalMs, 30_000, true);
    this.#environment = options.environment;
    this.#bodies = new LruCache<string>(
      positiveInteger("promptCacheSize", options.promptCacheSize, 100, true),
      positiveInteger("promptCacheBytes", options.promptCacheBytes, 16 * 1024 * 1024, true),
    );
    this.#onExposure = options.onExposure;
    this.#exposures = options.collector === undefined ? null : new ExposureSender(options.collector);
    this.#onError = options.onError;
    this.#onUpdate = options.onUpdate;
    for (const [hash, body] of Object.entries(options.fallbackPrompts ?? {})) {
      if (!SHA256_HEX.test(hash) || typeof body !== "string") {
        throw new InvalidArgumentError(`fallbackPrompts must map SHA-256 hashes (64 lowercase hex digits) to body text; ${JSON.stringify(hash)} is not one`);
      }
      this.#fallbackPrompts.set(hash, body);
    }
    if (options.fallbackRuleset !== undefined) {
      const fallback = Evaluator.fromRuleset(options.fallbackRuleset);
      this.#checkEnvironment(fallback);
      this.#evaluator = fallback;
      this.#source = "fallback";
    }
    if (options.autoStart ?? true) {
      this.#firstFetch = this.#backgroundRefresh();
    }
    if (interval > 0) {
      this.#timer = setInterval(() => void this.#backgroundRefresh(), interval);
      const timer = this.#timer as { unref?: () => void };
      timer.unref?.();
    }
  }

  /**
   * Resolves once a ruleset is in use: the first fetch succeeded, or it failed and a fallback
   * serves. Rejects with {@link NotReadyError} when the first fetch failed and there is no
   * fallback.
   */
  async ready(): Promise<void> {
    if (this.#firstFetch === null) {
      this.#firstFetch = this.#backgroundRefresh();
    }
    await this.#firstFetch;
    if (this.#evaluator === null) {
      throw new NotReadyError(
        `no ruleset: fetching ${new URL("v1/ruleset", this.#base).href} failed (${this.#lastError?.message ?? "unknown error"}) and no fallbackRuleset was given`,
        { cause: this.#lastError },
      );
    }
  }

  /**
   * Fetches the ruleset now (with `If-None-Match`). Rejects with {@link FetchError} or
   * {@link RulesetValidationError} when the edge fails or serves something invalid; the ruleset
   * in use stays as it was.
   */
  refresh(): Promise<RefreshResult> {
    if (this.#closed) {
      return Promise.reject(new PromptflagError("DISPOSED", "this client was closed; create a new one"));
    }
    if (this.#refreshing === null) {
      this.#refreshing = this.#fetchRuleset().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  /** The client's state: where the ruleset came from, its revision, the last error. */
  get status(): ClientStatus {
    return {
      ready: this.#evaluator !== null,
      source: this.#source,
      revision: this.#evaluator?.revision ?? null,
      environment: this.#evaluator?.environment ?? null,
      etag: this.#etag,
      lastSuccessAt: this.#lastSuccessAt,
      lastError: this.#lastError,
    };
  }

  /** The evaluator in use (replaced on every update), or `null` before any ruleset. */
  get evaluator(): Evaluator | null {
    return this.#evaluator;
  }

  /** Evaluates one flag locally; see {@link Evaluator.evaluate}. */
  evaluate<T extends JsonValue = JsonValue>(flagKey: string, context?: ContextInput, options?: EvaluateOptions): Evaluation<T> {
    const evaluator = this.#require();
    const evaluation = evaluator.evaluate<T>(flagKey, context, options);
    this.#expose(evaluator, evaluation, context);
    return evaluation;
  }

  /** Evaluates one flag with a type check; see {@link Evaluator.evaluateTyped}. */
  evaluateTyped<T extends JsonValue = JsonValue>(
    flagKey: string,
    context: ContextInput | undefined,
    type: ValueType,
    options?: EvaluateOptions,
  ): Evaluation<T> {
    const evaluator = this.#require();
    const evaluation = evaluator.evaluateTyped<T>(flagKey, context, type, options);
    this.#expose(evaluator, evaluation, context);
    return evaluation;
  }

  /** Resolves a prompt flag; see {@link Evaluator.resolvePrompt}. */
  resolvePrompt(flagKey: string, context?: ContextInput, options?: EvaluateOptions): PromptResolution {
    const evaluator = this.#require();
    const resolution = evaluator.resolvePrompt(flagKey, context, options);
    this.#expose(evaluator, resolution, context);
    return resolution;
  }

  /** Every flag for one context; see {@link Evaluator.evaluateAll}. */
  evaluateAll(context?: ContextInput, options?: EvaluateOptions): Record<string, Evaluation> {
    const evaluator = this.#require();
    const all = evaluator.evaluateAll(context, options);
    if (this.#onExposure !== undefined || this.#exposures !== null) {
      for (const evaluation of Object.values(all)) {
        this.#expose(evaluator, evaluation, context);
      }
    }
    return all;
  }

  /** One flag with every detail; see {@link Evaluator.explain}. Not an exposure. */
  explain<T extends JsonValue = JsonValue>(flagKey: string, context?: ContextInput, options?: EvaluateOptions): EvaluationDetails<T> {
    return this.#require().explain<T>(flagKey, context, options);
  }

  /** Resolves a prompt flag and fetches the body of the prompt served. */
  async getPrompt(flagKey: string, context?: ContextInput, options?: EvaluateOptions): Promise<PromptWithBody> {
    const resolution = this.resolvePrompt(flagKey, context, options);
    const body = resolution.prompt === null ? null : await this.getPromptBody(resolution.prompt.hash);
    return { ...resolution, body };
  }

  /**
   * A prompt body by the SHA-256 of its bytes: from memory, from `fallbackPrompts`, or from the
   * edge. Every body is verified before it is cached or returned; a mismatch rejects with
   * {@link PromptIntegrityError}.
   */
  getPromptBody(hash: string | PromptRef): Promise<string> {
    const wanted = typeof hash === "object" && hash !== null ? hash.hash : hash;
    if (typeof wanted !== "string" || !SHA256_HEX.test(wanted)) {
      return Promise.reject(
        new InvalidArgumentError(`a prompt body is named by its SHA-256: 64 lowercase hex digits; got ${JSON.stringify(wanted)}`),
      );
    }
    const cached = this.#bodies.get(wanted);
    if (cached !== undefined) {
      return Promise.resolve(cached);
    }
    let pending = this.#inflightBodies.get(wanted);
    if (pending === undefined) {
      pending = this.#loadBody(wanted).finally(() => this.#inflightBodies.delete(wanted));
      this.#inflightBodies.set(wanted, pending);
    }
    return pending;
  }

  /** Calls `listener` after every new ruleset is in use; returns a function that unsubscribes. */
  subscribe(listener: (update: RulesetUpdate) => void): () => void {
    if (typeof listener !== "function") {
      throw new InvalidArgumentError("subscribe(listener) takes a function");
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** What happened to the exposures sent to the collector (`null` without one). */
  exposureStats(): ExposureStats | null {
    return this.#exposures?.stats() ?? null;
  }

  /**
   * Queues an LLM-call event (built by `llmCallEvent`, with its hallucination signals) for the
   * collector in the same batches as exposures; false without a collector or when dropped.
   */
  recordCall(event: LlmCallEvent): boolean {
    return this.#exposures?.recordCall(event) ?? false;
  }

  /** Sends the exposures queued for the collector now; resolves when it has answered. */
  flushExposures(): Promise<void> {
    return this.#exposures?.flush() ?? Promise.resolve();
  }

  /**
   * Stops the background refresh and aborts requests in flight, and sends the exposures still
   * queued (await {@link flushExposures} first to know they went). Evaluation keeps working.
   */
  close(): void {
    this.#closed = true;
    void this.#exposures?.close();
    if (this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    for (const controller of this.#inflightAborts) {
      controller.abort(new PromptflagError("DISPOSED", "the client was closed"));
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #require(): Evaluator {
    const evaluator = this.#evaluator;
    if (evaluator === null) {
      throw new NotReadyError(
        this.#lastError === null
          ? "no ruleset yet: await client.ready() before evaluating, or pass fallbackRuleset"
          : `no ruleset: the last fetch failed (${this.#lastError.message}); pass fallbackRuleset to serve while the edge is unreachable`,
        { cause: this.#lastError },
      );
    }
    return evaluator;
  }

  #expose(evaluator: Evaluator, evaluation: Evaluation | PromptResolution, context: ContextInput | undefined): void {
    const onExposure = this.#onExposure;
    const sender = this.#exposures;
    if (onExposure === undefined && sender === null) {
      return;
    }
    const prompt = evaluation.prompt ?? null;
    const event: ExposureEvent = {
      type: "exposure",
      timestamp: new Date().toISOString(),
      environment: evaluator.environment,
      flag_key: evaluation.flagKey,
      variant: evaluation.variant,
      prompt_id: prompt?.id ?? null,
      prompt_version: prompt?.version ?? null,
      prompt_hash: prompt?.hash ?? null,
      revision: evaluator.revision,
      unit: unitOf(context),
      reason: evaluation.reason,
    };
    sender?.record(event);
    if (onExposure === undefined) {
      return;
    }
    try {
      onExposure(event);
    } catch (error) {
      this.#report(new PromptflagError("ENGINE", `the onExposure callback threw: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
    }
  }

  #report(error: PromptflagError): void {
    try {
      this.#onError?.(error);
    } catch {
      // A failing error handler must not break evaluation or the refresh loop.
    }
  }

  async #backgroundRefresh(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      this.#report(error as PromptflagError);
    }
  }

  #checkEnvironment(evaluator: Evaluator): void {
    if (this.#environment !== undefined && evaluator.environment !== this.#environment) {
      const message = `the ruleset is for environment ${JSON.stringify(evaluator.environment)}, but this client serves ${JSON.stringify(this.#environment)}`;
      throw new RulesetValidationError(`ruleset rejected: ${message}`, [{ path: "environment", code: "wrong_environment", message }]);
    }
  }

  async #request(url: string, headers: Record<string, string>): Promise<Response> {
    const controller = new AbortController();
    this.#inflightAborts.add(controller);
    const timer = setTimeout(
      () => controller.abort(new FetchError(`request to ${url} timed out after ${this.#timeoutMs} ms`, url)),
      this.#timeoutMs,
    );
    try {
      return await this.#fetch(url, { headers: { ...this.#headers, ...headers }, signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason instanceof PromptflagError) {
        throw controller.signal.reason;
      }
      throw asError(error, url);
    } finally {
      clearTimeout(timer);
      this.#inflightAborts.delete(controller);
    }
  }

  async #fetchRuleset(): Promise<RefreshResult> {
    const url = new URL("v1/ruleset", this.#base).href;
    try {
      const headers: Record<string, string> = { accept: "application/json" };
      if (this.#etag !== null && this.#source === "remote") {
        headers["if-none-match"] = this.#etag;
      }
      const response = await this.#request(url, headers);
      if (response.status === 304 && this.#evaluator !== null && this.#source === "remote") {
        await response.body?.cancel();
        this.#lastSuccessAt = new Date();
        this.#lastError = null;
        return { updated: false, revision: this.#evaluator.revision };
      }
      if (response.status !== 200) {
        const detail = await response.text().catch(() => "");
        throw new FetchError(
          `GET ${url} answered ${response.status}${detail ? `: ${detail.slice(0, 300)}` : ""}`,
          url,
          response.status,
        );
      }
      const text = await response.text().catch((error: unknown) => {
        throw asError(error, url);
      });
      // Validation happens before anything changes: an invalid payload leaves everything as it was.
      const evaluator = Evaluator.fromRuleset(text);
      this.#checkEnvironment(evaluator);
      const signed = this.#publicKey === null ? null : await verifySignature(text, evaluator, response.headers.get(SIGNATURE_HEADER), this.#publicKey, this.#accepted);
      if (this.#closed) {
        throw new PromptflagError("DISPOSED", "the client was closed");
      }
      this.#evaluator = evaluator;
      this.#source = "remote";
      if (signed !== null) this.#accepted = signed;
      this.#etag = response.headers.get("etag");
      this.#lastSuccessAt = new Date();
      this.#lastError = null;
      const update: RulesetUpdate = { revision: evaluator.revision, environment: evaluator.environment, source: "remote" };
      for (const listener of [this.#onUpdate, ...this.#listeners]) {
        try {
          listener?.(update);
        } catch (error) {
          this.#report(new PromptflagError("ENGINE", `an update listener threw: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
        }
      }
      return { updated: true, revision: evaluator.revision };
    } catch (error) {
      const failure = asError(error, url);
      this.#lastError = failure;
      throw failure;
    }
  }

  async #loadBody(hash: string): Promise<string> {
    const fallback = this.#fallbackPrompts.get(hash);
    if (fallback !== undefined) {
      const bytes = new TextEncoder().encode(fallback);
      const actual = await sha256Hex(bytes);
      if (actual !== hash) {
        throw new PromptIntegrityError(hash, actual, "fallbackPrompts");
      }
      this.#bodies.set(hash, fallback, bytes.byteLength);
      return fallback;
    }
    const url = new URL(`v1/prompts/${hash}`, this.#base).href;
    const response = await this.#request(url, { accept: "text/plain, text/markdown, */*" });
    if (response.status === 404) {
      await response.body?.cancel();
      throw new PromptNotFoundError(hash, url);
    }
    if (response.status !== 200) {
      const detail = await response.text().catch(() => "");
      throw new FetchError(`GET ${url} answered ${response.status}${detail ? `: ${detail.slice(0, 300)}` : ""}`, url, response.status);
    }
    let bytes: ArrayBuffer;
    try {
      bytes = await response.arrayBuffer();
    } catch (error) {
      throw asError(error, url);
    }
    const actual = await sha256Hex(bytes);
    if (actual !== hash) {
      throw new PromptIntegrityError(hash, actual, url);
    }
    const body = new TextDecoder().decode(bytes);
    this.#bodies.set(hash, body, bytes.byteLength);
    return body;
  }
}
