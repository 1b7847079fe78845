/**
 * LLM-call events for the collector: {@link llmCallEvent} builds the contracts' `llm_call` event
 * (field names as the collector reads them, unknown fields `null`) with the hallucination signals
 * as separate fields, `ExposureSender.recordCall` sends it in the same batches as exposures, and
 * {@link shouldJudge} is the judge's sampling hook, choosing exactly the calls the native
 * client's `JudgeSampler` chooses (the same hash of the request id), so a call retried through
 * either client is judged or not alike.
 */

import { InvalidArgumentError } from "./errors.js";
import { computeSignals, type SignalEvidence } from "./signals.js";

/** An outcome of a call, as the collector reads it. */
export type CallStatus = "success" | "failure" | "error" | "timeout";

/** The contracts' LLM-call event (`type: "llm_call"`). */
export interface LlmCallEvent {
  type: "llm_call";
  timestamp: string;
  request_id: string;
  environment: string | null;
  flag_key: string;
  variant: string;
  prompt_id: string | null;
  prompt_version: string | null;
  prompt_hash: string | null;
  user_id: string | null;
  model: string | null;
  temperature: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  ttft_ms: number | null;
  status: CallStatus;
  parser_valid: boolean | null;
  refused: boolean | null;
  hallucinated: boolean | null;
  cost_usd: number | null;
  citation_mismatch: boolean | null;
  tool_call_mismatch: boolean | null;
  unsupported_numeric_claims: boolean | null;
  judge_score: number | null;
  response_hash: string | null;
}

/** What a caller knows about one call; `evidence` computes the three signals. */
export interface LlmCallInput {
  requestId: string;
  flagKey: string;
  variant: string;
  status: CallStatus;
  /** Default: now. */
  timestamp?: Date | number;
  environment?: string;
  promptId?: string;
  promptVersion?: string;
  promptHash?: string;
  userId?: string;
  model?: string;
  temperature?: number;
  inputTokens?: number;
  outputTokens?: number;
  latencyMs?: number;
  ttftMs?: number;
  parserValid?: boolean;
  refused?: boolean;
  hallucinated?: boolean;
  costUsd?: number;
  /** A judge's score in `[0, 1]`; {@link withJudgeScore} sets it later. */
  judgeScore?: number;
  /** The response, sources, input and tool log: the signals are computed from them. */
  evidence?: SignalEvidence;
  /** `true`: the SHA-256 hex of `evidence.response` goes in `response_hash`. */
  hashResponse?: boolean;
}

const STATUSES: readonly string[] = ["success", "failure", "error", "timeout"];

function measure(name: string, value: number | undefined): number | null {
  if (value === undefined) {
    return null;
  }
  if (!Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

function count(name: string, value: number | undefined): number | null {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new InvalidArgumentError(`${name} must be an integer >= 0, got ${String(value)}`);
  }
  return value ?? null;
}

function required(name: string, value: string): string {
  if (typeof value !== "string" || value === "") {
    throw new InvalidArgumentError(`${name} must be a non-empty string`);
  }
  return value;
}

function score(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidArgumentError(`judgeScore must be a number from 0 to 1, got ${String(value)}`);
  }
  return value;
}

/**
 * Builds an `llm_call` event; throws `InvalidArgumentError` for what the collector would refuse
 * (an empty id, flag or variant, an unknown status, a negative measure, a score outside `[0, 1]`).
 */
export function llmCallEvent(call: LlmCallInput): LlmCallEvent {
  if (!STATUSES.includes(call.status)) {
    throw new InvalidArgumentError(`status must be one of ${STATUSES.join(", ")}, got ${JSON.stringify(call.status)}`);
  }
  const when = call.timestamp === undefined ? new Date() : new Date(call.timestamp);
  if (Number.isNaN(when.getTime())) {
    throw new InvalidArgumentError("timestamp is not a valid time");
  }
  const signals = call.evidence === undefined ? undefined : computeSignals(call.evidence);
  return {
    type: "llm_call",
    timestamp: when.toISOString(),
    request_id: required("requestId", call.requestId),
    environment: call.environment ?? null,
    flag_key: required("flagKey", call.flagKey),
    variant: required("variant", call.variant),
    prompt_id: call.promptId ?? null,
    prompt_version: call.promptVersion ?? null,
    prompt_hash: call.promptHash ?? null,
    user_id: call.userId ?? null,
    model: call.model ?? null,
    temperature: measure("temperature", call.temperature),
    input_tokens: count("inputTokens", call.inputTokens),
    output_tokens: count("outputTokens", call.outputTokens),
    latency_ms: measure("latencyMs", call.latencyMs),
    ttft_ms: measure("ttftMs", call.ttftMs),
    status: call.status,
    parser_valid: call.parserValid ?? null,
    refused: call.refused ?? null,
    hallucinated: call.hallucinated ?? null,
    cost_usd: measure("costUsd", call.costUsd),
    citation_mismatch: signals?.citation_mismatch ?? null,
    tool_call_mismatch: signals?.tool_call_mismatch ?? null,
    unsupported_numeric_claims: signals?.unsupported_numeric_claims ?? null,
    judge_score: call.judgeScore === undefined ? null : score(call.judgeScore),
    response_hash:
      call.hashResponse === true && call.evidence !== undefined
        ? sha256Hex(new TextEncoder().encode(String(call.evidence.response)))
        : null,
  };
}

/** A copy of the event with the judge's score set (a number from 0 to 1). */
export function withJudgeScore(event: LlmCallEvent, judgeScore: number): LlmCallEvent {
  return { ...event, judge_score: score(judgeScore) };
}

/**
 * Whether the call with this request id is in a judge's sample at `rate` (clamped to `[0, 1]`;
 * not finite is 0): the first 16 hex digits of the id's SHA-256, read as a fraction of 2^64 − 1,
 * fall below the rate. The same answer as the native client's `JudgeSampler::sampled`.
 */
export function shouldJudge(requestId: string, rate: number): boolean {
  const bounded = Number.isFinite(rate) ? Math.min(Math.max(rate, 0), 1) : 0;
  const digest = sha256Hex(new TextEncoder().encode(String(requestId)));
  // `Number(bigint)` rounds to nearest like Rust's `u64 as f64`; 2^64 − 1 as a double is 2^64.
  const prefix = Number(BigInt(`0x${digest.slice(0, 16)}`));
  return prefix / 18446744073709551616 < bounded;
}

const ROUND = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * SHA-256 in plain JavaScript: WebCrypto's digest is asynchronous, and a sampling decision on the
 * request path should not have to await. Request ids and responses are small, so speed is moot.
 */
export function sha256Hex(bytes: Uint8Array): string {
  const length = bytes.length;
  const padded = new Uint8Array((((length + 9 + 63) >> 6) << 6));
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const state = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const words = new Uint32Array(64);
  const rotate = (value: number, by: number): number => (value >>> by) | (value << (32 - by));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i += 1) {
      words[i] = view.getUint32(block + i * 4);
    }
    for (let i = 16; i < 64; i += 1) {
      const w15 = words[i - 15]!;
      const w2 = words[i - 2]!;
      const s0 = rotate(w15, 7) ^ rotate(w15, 18) ^ (w15 >>> 3);
      const s1 = rotate(w2, 17) ^ rotate(w2, 19) ^ (w2 >>> 10);
      words[i] = (words[i - 16]! + s0 + words[i - 7]! + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = state as unknown as number[];
    for (let i = 0; i < 64; i += 1) {
      const s1 = rotate(e!, 6) ^ rotate(e!, 11) ^ rotate(e!, 25);
      const choose = (e! & f!) ^ (~e! & g!);
      const t1 = (h! + s1 + choose + ROUND[i]! + words[i]!) >>> 0;
      const s0 = rotate(a!, 2) ^ rotate(a!, 13) ^ rotate(a!, 22);
      const majority = (a! & b!) ^ (a! & c!) ^ (b! & c!);
      const t2 = (s0 + majority) >>> 0;
      h = g;
      g = f;
      f = e;
      e = (d! + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const next = [a, b, c, d, e, f, g, h];
    for (let i = 0; i < 8; i += 1) {
      state[i] = (state[i]! + next[i]!) >>> 0;
    }
  }
  return Array.from(state, (word) => word.toString(16).padStart(8, "0")).join("");
}
