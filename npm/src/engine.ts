/**
 * The evaluator: promptflag's engine (Rust, compiled to WebAssembly) behind a JavaScript API.
 *
 * Every decision is the engine's; this module moves values across the boundary as cheaply as it
 * can. The engine answers the hot path with one packed integer per flag (variant, reason, error
 * code); the first time a flag yields a given variant and reason, the full answer is fetched as
 * JSON once and kept, frozen, so later evaluations return the same object without re-reading
 * anything.
 */

import { bucket_hash, bucket_slot, initSync, type InitOutput, scratch_reserve, WasmContext, WasmRuleset } from "./wasm/promptflag_wasm.js";
import {
  DisposedError,
  fromWasmError,
  InvalidArgumentError,
  PromptflagError,
} from "./errors.js";

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Why a value was served (OpenFeature's resolution reasons). */
export type Reason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DISABLED" | "DEFAULT" | "ERROR";

/** OpenFeature error codes, set when the reason is `ERROR`. */
export type ErrorCode =
  | "FLAG_NOT_FOUND"
  | "TARGETING_KEY_MISSING"
  | "INVALID_CONTEXT"
  | "PARSE_ERROR"
  | "TYPE_MISMATCH"
  | "GENERAL";

/** The type of a flag's values. */
export type FlagKind = "prompt" | "boolean" | "string" | "number" | "object";

/** The type a caller asks for in typed evaluation (prompt flags are objects). */
export type ValueType = "boolean" | "string" | "number" | "object";

/**
 * The attributes of one evaluation. `targetingKey` is the default bucketing unit. Values may be
 * strings, numbers, booleans or `Date`s (read as RFC 3339 text); `null` and `undefined` leave an
 * attribute out; arrays and objects are kept but no operator reads them.
 */
export interface ContextAttributes {
  targetingKey?: string;
  [attribute: string]: unknown;
}

/** A prompt version: what a prompt flag's variant serves. */
export interface PromptRef {
  /** The prompt family's id. */
  readonly id: string;
  /** Its semantic version. */
  readonly version: string;
  /** The version's content id: the SHA-256 over its body hash and model configuration. */
  readonly content_id: string;
  /** The SHA-256 of the body (fetch it with `PromptflagClient.getPromptBody`). */
  readonly hash: string;
  /** The model it is written for (empty when not set). */
  readonly model: string;
  /** Model parameters (temperature, max_tokens, top_p, …). */
  readonly parameters: { readonly [key: string]: JsonValue };
  /** The JSON schema the model's output must follow, when the version declares one. */
  readonly output_schema?: JsonValue;
}

/** The outcome of evaluating one flag. On any error the flag's baseline is served. */
export interface Evaluation<T = JsonValue> {
  /** The flag key asked for. */
  readonly flagKey: string;
  /** The value served; `null` only when the flag does not exist. */
  readonly value: T | null;
  /** The variant served; `null` only when the flag does not exist. */
  readonly variant: string | null;
  /** Why. */
  readonly reason: Reason;
  /** Set when `reason` is `ERROR`. */
  readonly errorCode?: ErrorCode;
  /** A sentence about the error. */
  readonly errorMessage?: string;
  /** For prompt flags: the prompt version served. */
  readonly prompt?: PromptRef;
}

/** Where a split put the unit. */
export interface Bucket {
  /** The slot in `[0, 100000)`. */
  readonly slot: number;
  /** The treatment lane, or `null` for the baseline. */
  readonly lane: number | null;
  /** The layer slot, when the split sits in a layer. */
  readonly layerSlot?: number;
  /** False when the unit's layer slot is outside the split's range. */
  readonly inExperiment: boolean;
}

/** An evaluation with everything the engine knows about how it was reached. */
export interface EvaluationDetails<T = JsonValue> extends Evaluation<T> {
  /** The index of the rule that matched. */
  readonly ruleIndex?: number;
  /** The id of the rule that matched, if it has one. */
  readonly ruleId?: string;
  /** The bucketing outcome, when a split decided. */
  readonly bucket?: Bucket;
}

/** The outcome of resolving a prompt flag: `prompt` is `null` only on `FLAG_NOT_FOUND` or `TYPE_MISMATCH`. */
export interface PromptResolution extends Omit<Evaluation<JsonValue>, "prompt"> {
  readonly prompt: PromptRef | null;
}

/** A flag as the ruleset declares it. */
export interface FlagInfo {
  readonly key: string;
  readonly kind: FlagKind;
  /** Variant keys, sorted. */
  readonly variants: readonly string[];
}

/** Options of one evaluation. */
export interface EvaluateOptions {
  /**
   * The clock date operators read for `currentTime` when the context has no such attribute:
   * a `Date` or milliseconds since the epoch. Default: now. `null`: no clock (such conditions
   * do not hold).
   */
  now?: Date | number | null;
}

/** A context: attributes, a {@link PreparedContext}, or JSON text of an object. */
export type ContextInput = ContextAttributes | PreparedContext | string;

const NO_VARIANT = 0xff;
/** Error codes whose message can differ between evaluations of one flag: never cached. */
const UNCACHED_ERROR_CODES = new Set([3, 6]);
const VALUE_TYPES: Record<ValueType, number> = { boolean: 0, string: 1, number: 2, object: 3 };

/** The JSON the engine returns for one evaluation. */
interface RawEvaluation {
  key: string;
  value: JsonValue | null;
  variant: string | null;
  reason: Reason;
  errorCode?: ErrorCode;
  errorMessage?: string;
  ruleIndex?: number;
  ruleId?: string;
  bucket?: { slot: number; lane: number | null; layerSlot?: number; inExperiment: boolean };
  prompt?: PromptRef;
}

interface Description {
  schema: number;
  environment: string;
  revision: number;
  source: string;
  flags: FlagInfo[];
}

let memory: WebAssembly.Memory | null = null;

/** @internal Loads the WebAssembly module synchronously (Node, workerd). */
export function initializeSync(module: BufferSource | WebAssembly.Module): void {
  if (memory === null) {
    memory = initSync({ module }).memory;
  }
}

/** @internal Records the module a browser loaded asynchronously. */
export function markInitialized(exports: InitOutput): void {
  memory = exports.memory;
}

// The scratch area: bytes in Wasm memory that strings are written into for the `*_from_scratch`
// calls, so a hot loop sends text without a malloc and a free per string.
let scratchAddress = 0;
let scratchSize = 0;
let scratchView = new Uint8Array(0);
const encoder = new TextEncoder();

let scratchData = new DataView(new ArrayBuffer(0));

function scratch(minimum: number): Uint8Array {
  if (minimum > scratchSize) {
    // The same rounding as the engine's, so JS knows the size it got.
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(minimum)));
    scratchAddress = scratch_reserve(size);
    scratchSize = size;
    scratchView = new Uint8Array((memory as WebAssembly.Memory).buffer, scratchAddress, scratchSize);
    scratchData = new DataView(scratchView.buffer, scratchAddress, scratchSize);
  } else if (scratchView.byteLength === 0 && scratchSize > 0) {
    // Memory grew, which detaches the old buffer: view the new one.
    scratchView = new Uint8Array((memory as WebAssembly.Memory).buffer, scratchAddress, scratchSize);
    scratchData = new DataView(scratchView.buffer, scratchAddress, scratchSize);
  }
  return scratchView;
}

const TAG_STRING = 0;
const TAG_INTEGER = 1;
const TAG_NUMBER = 2;
const TAG_BOOL = 3;
const TAG_UNSUPPORTED = 4;

/**
 * Encodes a plain object's attributes into the scratch area for `load_from_scratch`, reading
 * each value exactly as `JSON.stringify` would carry it (see {@link PreparedContext.set}).
 * Returns the bytes written, or -1 when the object needs JSON's own rules (a `toJSON`, a boxed
 * primitive, a bigint), which the caller then uses instead.
 */
function encodeAttributes(context: Record<string, unknown>, only?: ReadonlySet<string>): number {
  let offset = 0;
  for (const name of Object.keys(context)) {
    const value = context[name];
    if (only !== undefined && !only.has(name)) {
      // Not read by the flag, so not sent; but a value JSON would encode by its own rules still
      // sends the whole context the JSON way, so the outcome (an error included) is the same.
      if (needsJson(value)) return -1;
      continue;
    }
    let tag: number;
    let text = "";
    let number = 0;
    switch (typeof value) {
      case "string":
        tag = TAG_STRING;
        text = value;
        break;
      case "number":
        if (!Number.isFinite(value)) continue;
        tag = Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63 ? TAG_INTEGER : TAG_NUMBER;
        number = value;
        break;
      case "boolean":
        tag = TAG_BOOL;
        number = value ? 1 : 0;
        break;
      case "object":
        if (value === null) continue;
        if (value instanceof Date) {
          if (Number.isNaN(value.getTime())) continue;
          tag = TAG_STRING;
          text = value.toISOString();
          break;
        }
        if (typeof (value as { toJSON?: unknown }).toJSON === "function") return -1;
        if (!Array.isArray(value)) {
          const prototype = Object.getPrototypeOf(value);
          if (prototype !== Object.prototype && prototype !== null) return -1;
        }
        tag = TAG_UNSUPPORTED;
        break;
      case "bigint":
        return -1;
      default:
        // undefined, functions and symbols: left out, as JSON.stringify leaves them out.
        continue;
    }
    scratch(offset + 5);
    const nameLength = writeScratch(name, offset + 5);
    scratchView[offset] = tag;
    scratchData.setUint32(offset + 1, nameLength, true);
    offset += 5 + nameLength;
    if (tag === TAG_STRING) {
      scratch(offset + 4);
      const length = writeScratch(text, offset + 4);
      scratchData.setUint32(offset, length, true);
      offset += 4 + length;
    } else if (tag === TAG_INTEGER || tag === TAG_NUMBER) {
      scratch(offset + 8);
      scratchData.setFloat64(offset, number, true);
      offset += 8;
    } else if (tag === TAG_BOOL) {
      scratch(offset + 1);
      scratchView[offset] = number;
      offset += 1;
    }
  }
  return offset;
}

/**
 * Whether no attribute of a plain object needs JSON's own rules ({@link needsJson}), checked
 * without encoding any. (`for…in` also visits inherited enumerable properties, which a plain
 * object has only when `Object.prototype` was extended; one of those can only send the context
 * the JSON way, which answers the same.)
 */
function sendableAsIs(context: ContextAttributes): boolean {
  for (const name in context) {
    if (needsJson(context[name])) return false;
  }
  return true;
}

/** Whether {@link encodeAttributes} leaves an object holding `value` to JSON's own rules. */
function needsJson(value: unknown): boolean {
  if (typeof value === "bigint") return true;
  if (typeof value !== "object" || value === null || value instanceof Date) return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return true;
  if (Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype !== Object.prototype && prototype !== null;
}

/** Writes `text` as UTF-8 at `offset` of the scratch area; returns the bytes written. */
function writeScratch(text: string, offset: number): number {
  const length = text.length;
  let view = scratch(offset + length);
  let index = 0;
  for (; index < length; index++) {
    const code = text.charCodeAt(index);
    if (code > 0x7f) break;
    view[offset + index] = code;
  }
  if (index === length) {
    return length;
  }
  view = scratch(offset + index + (length - index) * 3);
  return index + encoder.encodeInto(text.slice(index), view.subarray(offset + index)).written;
}

function ensureInitialized(): void {
  if (memory === null) {
    throw new PromptflagError(
      "ENGINE",
      "the promptflag WebAssembly module is not loaded: import from 'promptflag' itself (not a file inside the package) so the entry for your runtime loads it",
    );
  }
}

/** Milliseconds for the engine: `NaN` means "no clock". */
function clock(now: Date | number | null | undefined): number {
  if (now === undefined) {
    return Date.now();
  }
  if (now === null) {
    return Number.NaN;
  }
  const millis = now instanceof Date ? now.getTime() : now;
  if (typeof millis !== "number" || !Number.isFinite(millis)) {
    throw new InvalidArgumentError(
      `now must be a valid Date, a finite number of milliseconds since the epoch, or null; got ${describeValue(now)}`,
    );
  }
  return millis;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "an invalid Date";
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}

function checkFlagKey(flagKey: unknown): asserts flagKey is string {
  if (typeof flagKey !== "string") {
    throw new InvalidArgumentError(`flagKey must be a string, got ${describeValue(flagKey)}`);
  }
}

/** Whether a context is a plain object of attributes, encoded without JSON (see {@link encodeAttributes}). */
function isPlainAttributes(context: ContextInput): context is ContextAttributes {
  return (
    typeof context === "object" &&
    context !== null &&
    !(context instanceof PreparedContext) &&
    !Array.isArray(context) &&
    typeof (context as { toJSON?: unknown }).toJSON !== "function"
  );
}

/** JSON text of a context given as attributes or text. */
function contextText(context: ContextAttributes | string | undefined): string {
  if (context === undefined) {
    return "{}";
  }
  if (typeof context === "string") {
    return context;
  }
  if (typeof context !== "object" || context === null || Array.isArray(context)) {
    throw new InvalidArgumentError(
      `the context must be an object of attributes (e.g. { targetingKey: "user-1" }), a PreparedContext, or JSON text; got ${describeValue(context)}`,
    );
  }
  try {
    return JSON.stringify(context);
  } catch (error) {
    throw new InvalidArgumentError(
      `the context cannot be encoded as JSON (${(error as Error).message}); use strings, numbers, booleans and Dates as attribute values`,
    );
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value as object)) {
      deepFreeze(inner);
    }
  }
  return value;
}

function toEvaluation(raw: RawEvaluation): Evaluation {
  const evaluation: {
    flagKey: string;
    value: JsonValue | null;
    variant: string | null;
    reason: Reason;
    errorCode?: ErrorCode;
    errorMessage?: string;
    prompt?: PromptRef;
  } = { flagKey: raw.key, value: raw.value, variant: raw.variant, reason: raw.reason };
  if (raw.errorCode !== undefined) evaluation.errorCode = raw.errorCode;
  if (raw.errorMessage !== undefined) evaluation.errorMessage = raw.errorMessage;
  if (raw.prompt !== undefined) evaluation.prompt = raw.prompt;
  return deepFreeze(evaluation);
}

function toDetails(raw: RawEvaluation): EvaluationDetails {
  const details: Record<string, unknown> = { ...toEvaluation(raw) };
  if (raw.ruleIndex !== undefined) details["ruleIndex"] = raw.ruleIndex;
  if (raw.ruleId !== undefined) details["ruleId"] = raw.ruleId;
  if (raw.bucket !== undefined) {
    const bucket: Record<string, unknown> = { slot: raw.bucket.slot, lane: raw.bucket.lane };
    if (raw.bucket.layerSlot !== undefined) bucket["layerSlot"] = raw.bucket.layerSlot;
    bucket["inExperiment"] = raw.bucket.inExperiment;
    details["bucket"] = bucket;
  }
  return deepFreeze(details) as unknown as EvaluationDetails;
}

function parseRaw(text: string): RawEvaluation {
  return JSON.parse(text) as RawEvaluation;
}

/**
 * The bucketing hash every runtime uses: `xxh3_64(seed + "/" + unit)`, as a `bigint`. A split's
 * seed defaults to its flag key; a layer's is `"layer:" + name`.
 */
export function bucketHash(seed: string, unit: string): bigint {
  ensureInitialized();
  if (typeof seed !== "string" || typeof unit !== "string") {
    throw new InvalidArgumentError("bucketHash(seed, unit) takes two strings");
  }
  return bucket_hash(seed, unit);
}

/** The bucketing slot of `unit` under `seed`, in `[0, 100000)`: `(hash * 100000) >> 64`. */
export function bucketSlot(seed: string, unit: string): number {
  ensureInitialized();
  if (typeof seed !== "string" || typeof unit !== "string") {
    throw new InvalidArgumentError("bucketSlot(seed, unit) takes two strings");
  }
  return bucket_slot(seed, unit);
}

/**
 * An evaluation context kept inside the engine: prepare it once, change an attribute (a fresh
 * user id, say) with {@link PreparedContext.set}, and evaluate again without re-encoding the
 * rest. This is the fast path for hot loops. It is not tied to an evaluator: one prepared
 * context can be evaluated against any ruleset, including after a client refresh.
 *
 * The clock for `currentTime` conditions is read when the context is created, or set with
 * {@link PreparedContext.setNow}.
 */
export class PreparedContext {
  /** @internal */
  handle: WasmContext | null;
  #attributes: Record<string, unknown>;
  /** A targeting key set but not yet sent: the next evaluation sends it with its own call. */
  #pendingKey: string | null = null;

  constructor(attributes: ContextAttributes = {}, options?: EvaluateOptions) {
    ensureInitialized();
    if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes)) {
      throw new InvalidArgumentError(
        `a PreparedContext takes an object of attributes (e.g. { targetingKey: "user-1" }), got ${describeValue(attributes)}`,
      );
    }
    const text = contextText(attributes);
    const now = clock(options?.now);
    try {
      this.handle = WasmContext.from_json(text, now);
    } catch (error) {
      throw fromWasmError(error);
    }
    this.#attributes = { ...(attributes as Record<string, unknown>) };
  }

  /** @internal The engine's context, with any pending targeting key sent. */
  live(): WasmContext {
    const handle = this.handle;
    if (handle === null) {
      throw new DisposedError("PreparedContext");
    }
    const pending = this.#pendingKey;
    if (pending !== null) {
      this.#pendingKey = null;
      try {
        handle.set_targeting_key_from_scratch(writeScratch(pending, 0));
      } catch (error) {
        throw fromWasmError(error);
      }
    }
    return handle;
  }

  /** @internal Hands over the pending targeting key (the caller sends it), with the handle. */
  takePending(): string | null {
    if (this.handle === null) {
      throw new DisposedError("PreparedContext");
    }
    const pending = this.#pendingKey;
    this.#pendingKey = null;
    return pending;
  }

  /** The attributes as set (a copy). */
  toJSON(): ContextAttributes {
    return { ...this.#attributes };
  }

  /** An attribute's value as set. */
  get(name: string): unknown {
    return this.#attributes[name];
  }

  /** The targeting key, if set. */
  get targetingKey(): string | undefined {
    const key = this.#attributes["targetingKey"];
    return typeof key === "string" ? key : undefined;
  }

  /** Sets one attribute (with the same reading as a plain object's: see {@link ContextAttributes}). */
  set(name: string, value: unknown): this {
    if (typeof name !== "string") {
      throw new InvalidArgumentError(`an attribute name must be a string, got ${describeValue(name)}`);
    }
    const handle = this.live();
    switch (typeof value) {
      case "string": {
        const nameLength = writeScratch(name, 0);
        handle.set_string_from_scratch(nameLength, writeScratch(value, nameLength));
        break;
      }
      case "number":
        // As JSON would carry it: integers within i64 stay exact, NaN and infinities are left out.
        if (!Number.isFinite(value)) {
          handle.remove(name);
        } else if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
          handle.set_integer(name, value);
        } else {
          handle.set_number(name, value);
        }
        break;
      case "boolean":
        handle.set_bool(name, value);
        break;
      case "bigint":
        throw new InvalidArgumentError(
          `attribute ${JSON.stringify(name)} is a bigint, which JSON cannot carry; pass it as a string or a number`,
        );
      case "object":
        if (value === null) {
          handle.remove(name);
        } else if (value instanceof Date) {
          if (Number.isNaN(value.getTime())) handle.remove(name);
          else handle.set_string(name, value.toISOString());
        } else {
          handle.set_unsupported(name);
        }
        break;
      default:
        // undefined, functions and symbols: left out, as JSON.stringify leaves them out.
        handle.remove(name);
    }
    if (value === undefined) {
      delete this.#attributes[name];
    } else {
      this.#attributes[name] = value;
    }
    return this;
  }

  /** Sets the targeting key (the default bucketing unit). */
  setTargetingKey(targetingKey: string): this {
    if (typeof targetingKey !== "string") {
      throw new InvalidArgumentError(`targetingKey must be a string, got ${describeValue(targetingKey)}`);
    }
    if (this.handle === null) {
      throw new DisposedError("PreparedContext");
    }
    // Sent with the next evaluation (one call for both), or by any other use of the context.
    this.#pendingKey = targetingKey;
    this.#attributes["targetingKey"] = targetingKey;
    return this;
  }

  /** Removes an attribute. */
  delete(name: string): this {
    this.live().remove(String(name));
    delete this.#attributes[name];
    return this;
  }

  /** Sets the clock for `currentTime` conditions: a Date, milliseconds, `null` for none; default now. */
  setNow(now?: Date | number | null): this {
    this.live().set_now_millis(clock(now));
    return this;
  }

  /** Frees the engine's copy; the context cannot be used afterwards. (Garbage collection also frees it.) */
  free(): void {
    this.handle?.free();
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}

/**
 * A validated ruleset, ready to evaluate. Evaluation never throws for a bad flag key or context:
 * it serves the flag's baseline with reason `ERROR` and an OpenFeature error code, exactly as
 * every other promptflag runtime does.
 */
export class Evaluator {
  #ruleset: WasmRuleset | null;
  readonly #description: Description;
  readonly #flagIndex: Map<string, number>;
  readonly #cache = new Map<number, Evaluation>();
  /** Per flag index, the attributes evaluating it can read (`attributes_read_json`). */
  readonly #reads: readonly ReadonlySet<string>[];
  /** Per flag index, whether the targeting key is the one attribute it can read. */
  readonly #readsTargetingKeyOnly: readonly boolean[];
  /** Per flag index, whether it can read `currentTime` (and so the clock). */
  readonly #readsClock: readonly boolean[];
  /** Per flag index that reads no attribute, its one evaluation, once made. */
  readonly #constant: (Evaluation | undefined)[];
  #scratch: WasmContext | null;
  /** The engine context of flags that read only the targeting key: it holds only that. */
  #keyContext: WasmContext | null;
  #prompts: readonly PromptRef[] | undefined;

  private constructor(ruleset: WasmRuleset) {
    this.#ruleset = ruleset;
    this.#description = JSON.parse(ruleset.describe()) as Description;
    deepFreeze(this.#description);
    this.#flagIndex = new Map(this.#description.flags.map((flag, index) => [flag.key, index]));
    const reads = JSON.parse(ruleset.attributes_read_json()) as string[][];
    this.#reads = reads.map((names) => new Set(names));
    this.#readsClock = reads.map((names) => names.includes("currentTime"));
    this.#readsTargetingKeyOnly = reads.map((names) => names.length === 1 && names[0] === "targetingKey");
    this.#constant = reads.map(() => undefined);
    this.#scratch = new WasmContext();
    this.#keyContext = new WasmContext();
  }

  /**
   * Parses and validates a ruleset (JSON text, bytes, or an already parsed object). Throws
   * {@link RulesetValidationError} listing every problem with its path when it is unsound.
   */
  static fromRuleset(ruleset: string | Uint8Array | ArrayBuffer | object): Evaluator {
    ensureInitialized();
    let text: string;
    if (typeof ruleset === "string") {
      text = ruleset;
    } else if (ruleset instanceof Uint8Array || ruleset instanceof ArrayBuffer) {
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(ruleset);
      } catch {
        throw new InvalidArgumentError("the ruleset bytes are not UTF-8 text; pass the ruleset JSON as published");
      }
    } else if (typeof ruleset === "object" && ruleset !== null && !Array.isArray(ruleset)) {
      try {
        text = JSON.stringify(ruleset);
      } catch (error) {
        throw new InvalidArgumentError(`the ruleset object cannot be encoded as JSON: ${(error as Error).message}`);
      }
    } else {
      throw new InvalidArgumentError(
        `a ruleset must be JSON text, UTF-8 bytes or a parsed object, got ${describeValue(ruleset)}`,
      );
    }
    let parsed: WasmRuleset;
    try {
      parsed = WasmRuleset.parse(text);
    } catch (error) {
      throw fromWasmError(error);
    }
    return new Evaluator(parsed);
  }

  /** The ruleset format version. */
  get schema(): number {
    return this.#description.schema;
  }

  /** The environment the ruleset serves. */
  get environment(): string {
    return this.#description.environment;
  }

  /** The ruleset revision. */
  get revision(): number {
    return this.#description.revision;
  }

  /** The git commit the ruleset was built from (empty when unknown). */
  get source(): string {
    return this.#description.source;
  }

  /** Every flag, sorted by key. */
  flags(): readonly FlagInfo[] {
    return this.#description.flags;
  }

  /** Every prompt version the ruleset can serve, sorted by hash. */
  prompts(): readonly PromptRef[] {
    if (this.#prompts === undefined) {
      this.#prompts = deepFreeze(JSON.parse(this.#live().prompts_json()) as PromptRef[]);
    }
    return this.#prompts;
  }

  /**
   * Evaluates one flag. `context` may be an object of attributes, a {@link PreparedContext}
   * (the fast path), or JSON text. Returns the same frozen object for equal outcomes.
   */
  evaluate<T extends JsonValue = JsonValue>(
    flagKey: string,
    context?: ContextInput,
    options?: EvaluateOptions,
  ): Evaluation<T> {
    return this.#run(0, flagKey, context, options, 0) as Evaluation<T>;
  }

  /**
   * Evaluates one flag and reports `TYPE_MISMATCH` (serving the baseline) when the flag's kind
   * is not the one asked for. Prompt flags are objects.
   */
  evaluateTyped<T extends JsonValue = JsonValue>(
    flagKey: string,
    context: ContextInput | undefined,
    type: ValueType,
    options?: EvaluateOptions,
  ): Evaluation<T> {
    const expected = VALUE_TYPES[type];
    if (expected === undefined) {
      throw new InvalidArgumentError(`type must be "boolean", "string", "number" or "object", got ${describeValue(type)}`);
    }
    return this.#run(1, flagKey, context, options, expected) as Evaluation<T>;
  }

  /** Resolves a prompt flag to the prompt version served: id, version, hash, model and parameters. */
  resolvePrompt(flagKey: string, context?: ContextInput, options?: EvaluateOptions): PromptResolution {
    const evaluation = this.#run(2, flagKey, context, options, 0);
    return evaluation.prompt === undefined ? { ...evaluation, prompt: null } : (evaluation as PromptResolution);
  }

  /** Evaluates every flag for one context: an object keyed by flag key, in key order. */
  evaluateAll(context?: ContextInput, options?: EvaluateOptions): Record<string, Evaluation> {
    const ruleset = this.#live();
    const handle = this.#load(context, options);
    const result: Record<string, Evaluation> = {};
    if (handle === null) {
      const raws = JSON.parse(
        ruleset.evaluate_all_text(contextText(context as string), clock(options?.now)),
      ) as RawEvaluation[];
      for (const raw of raws) result[raw.key] = toEvaluation(raw);
      return result;
    }
    const codes = ruleset.evaluate_all_codes(handle);
    const flags = this.#description.flags;
    for (let index = 0; index < codes.length; index++) {
      const flag = flags[index] as FlagInfo;
      result[flag.key] = this.#decode(ruleset, 0, index, flag.key, codes[index] as number, handle, 0);
    }
    return result;
  }

  /**
   * Evaluates one flag with every detail: the rule that matched and, for splits, the slot and
   * lane. Slower than {@link Evaluator.evaluate}; meant for debugging and tests.
   */
  explain<T extends JsonValue = JsonValue>(
    flagKey: string,
    context?: ContextInput,
    options?: EvaluateOptions,
  ): EvaluationDetails<T> {
    checkFlagKey(flagKey);
    const ruleset = this.#live();
    if (context instanceof PreparedContext) {
      return toDetails(parseRaw(ruleset.evaluate_json(flagKey, context.live()))) as EvaluationDetails<T>;
    }
    return toDetails(parseRaw(ruleset.evaluate_text(flagKey, contextText(context), clock(options?.now)))) as EvaluationDetails<T>;
  }

  /** Frees the engine's copy of the ruleset; the evaluator cannot be used afterwards. */
  free(): void {
    this.#ruleset?.free();
    this.#ruleset = null;
    this.#scratch?.free();
    this.#scratch = null;
    this.#keyContext?.free();
    this.#keyContext = null;
    this.#cache.clear();
  }

  [Symbol.dispose](): void {
    this.free();
  }

  #live(): WasmRuleset {
    const ruleset = this.#ruleset;
    if (ruleset === null) {
      throw new DisposedError("Evaluator");
    }
    return ruleset;
  }

  /** The engine-side context for an input, or `null` when the input is text that is not an object. */
  #load(context: ContextInput | undefined, options: EvaluateOptions | undefined): WasmContext | null {
    if (context instanceof PreparedContext) {
      return context.live();
    }
    const scratchContext = this.#scratch as WasmContext;
    if (typeof context === "object" && context !== null && !Array.isArray(context) && typeof context.toJSON !== "function") {
      // The common case, a plain object: its attributes go across in one binary copy, no JSON.
      const length = encodeAttributes(context);
      if (length >= 0 && scratchContext.load_from_scratch(length, clock(options?.now))) {
        return scratchContext;
      }
    }
    return scratchContext.load_json(contextText(context), clock(options?.now)) ? scratchContext : null;
  }

  /** One evaluation: 0 plain, 1 typed, 2 prompt. */
  #run(
    method: 0 | 1 | 2,
    flagKey: string,
    context: ContextInput | undefined,
    options: EvaluateOptions | undefined,
    expected: number,
  ): Evaluation {
    checkFlagKey(flagKey);
    const ruleset = this.#live();
    const index = this.#flagIndex.get(flagKey);
    if (method === 0 && index !== undefined && context instanceof PreparedContext) {
      // The hot loop: a new targeting key and the evaluation in one call.
      const pending = context.takePending();
      const handle = context.handle as WasmContext;
      if (pending !== null) {
        const code = ruleset.evaluate_code_with_targeting_key(index, handle, writeScratch(pending, 0));
        if (code === 0xffffffff) {
          throw new PromptflagError("ENGINE", "the targeting key could not be passed to the engine as UTF-8");
        }
        return this.#decode(ruleset, 0, index, flagKey, code, handle, 0);
      }
      return this.#decode(ruleset, 0, index, flagKey, ruleset.evaluate_code(index, handle), handle, 0);
    }
    if (method === 0 && index !== undefined && (context === undefined || isPlainAttributes(context))) {
      // A plain object (or none): only the attributes the flag reads cross, in the one call
      // that also evaluates, and a flag that reads none does not cross at all once its one
      // evaluation is known. The answer is the engine's for the whole context (core holds the
      // list of attributes read to that; a test compares the two over every vector).
      const evaluation = this.#plain(ruleset, index, flagKey, context, options);
      if (evaluation !== null) return evaluation;
    }
    const handle = this.#load(context, options);
    if (handle === null) {
      // Text that is not a JSON object: the engine's PARSE_ERROR / INVALID_CONTEXT evaluation.
      return toEvaluation(parseRaw(ruleset.evaluate_text(flagKey, context as string, Number.NaN)));
    }
    if (index === undefined) {
      return toEvaluation(parseRaw(this.#json(ruleset, method, flagKey, handle, expected)));
    }
    let code: number;
    if (method === 0) {
      code = ruleset.evaluate_code(index, handle);
    } else if (method === 1) {
      code = ruleset.evaluate_typed_code(index, handle, expected);
    } else {
      code = ruleset.resolve_prompt_code(index, handle);
    }
    return this.#decode(ruleset, method, index, flagKey, code, handle, expected);
  }

  /** {@link Evaluator.evaluate} of a plain-object context; `null` when it needs the JSON way. */
  #plain(
    ruleset: WasmRuleset,
    index: number,
    flagKey: string,
    context: ContextAttributes | undefined,
    options: EvaluateOptions | undefined,
  ): Evaluation | null {
    const reads = this.#reads[index] as ReadonlySet<string>;
    const key = context?.targetingKey;
    // A flag that reads the targeting key alone (a split on it), given one as a string.
    const keyOnly = this.#readsTargetingKeyOnly[index] === true && typeof key === "string";
    let length = 0;
    if (context !== undefined) {
      // Nothing to encode when the flag reads nothing or only the targeting key (set below);
      // the context is still checked, so one JSON cannot carry is refused as before.
      if (keyOnly || reads.size === 0) {
        if (!sendableAsIs(context)) return null;
      } else {
        length = encodeAttributes(context, reads);
        if (length < 0) return null;
      }
    }
    const given = options?.now;
    // The clock is read only by `currentTime` conditions; a given `now` is checked either way.
    const now = given !== undefined ? clock(given) : this.#readsClock[index] ? Date.now() : Number.NaN;
    const constant = this.#constant[index];
    if (constant !== undefined) return constant;
    // A flag that reads only the targeting key is evaluated in a context holding only that, so
    // setting it is all the engine does before evaluating.
    const handle = (keyOnly ? this.#keyContext : this.#scratch) as WasmContext;
    const code = keyOnly
      ? ruleset.evaluate_code_with_targeting_key(index, handle, writeScratch(key as string, 0))
      : ruleset.evaluate_code_from_scratch(index, handle, length, now);
    if (code === 0xffffffff) return null;
    const evaluation = this.#decode(ruleset, 0, index, flagKey, code, handle, 0);
    if (reads.size === 0) this.#constant[index] = evaluation;
    return evaluation;
  }

  #decode(
    ruleset: WasmRuleset,
    method: 0 | 1 | 2,
    index: number,
    flagKey: string,
    code: number,
    handle: WasmContext,
    expected: number,
  ): Evaluation {
    const errorCode = code >>> 11;
    // TYPE_MISMATCH reads differently for typed evaluation and prompt resolution.
    const key = index * 0x20000 + (errorCode === 5 ? method * 0x8000 : 0) + code;
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      return cached;
    }
    const evaluation = toEvaluation(parseRaw(this.#json(ruleset, method, flagKey, handle, expected)));
    if (!UNCACHED_ERROR_CODES.has(errorCode) && (code & NO_VARIANT) !== NO_VARIANT) {
      this.#cache.set(key, evaluation);
    }
    return evaluation;
  }

  #json(ruleset: WasmRuleset, method: 0 | 1 | 2, flagKey: string, handle: WasmContext, expected: number): string {
    if (method === 1) {
      return ruleset.evaluate_typed_json(flagKey, handle, expected);
    }
    return method === 2 ? ruleset.resolve_prompt_json(flagKey, handle) : ruleset.evaluate_json(flagKey, handle);
  }
}
