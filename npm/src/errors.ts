/**
 * The errors every public function of `promptflag` throws. Each has a stable `code` to branch
 * on and a message that says what to do about it.
 *
 * Evaluation itself does not throw for bad flags or contexts: like every promptflag runtime it
 * serves the flag's baseline with reason `ERROR` and an OpenFeature error code. These errors are
 * for programming mistakes (a flag key that is not a string), rejected rulesets, and I/O.
 */

/** One thing wrong with a ruleset, as the engine reports it. */
export interface Problem {
  /** Where: a dotted path with indices (`flags.support.rules[2].when[0].values`), `$` for the whole. */
  readonly path: string;
  /** A stable name for the kind of problem (`unknown_variant`, `bad_semver`, …). */
  readonly code: string;
  /** What is wrong, in a sentence. */
  readonly message: string;
}

/** The codes of {@link PromptflagError}. */
export type PromptflagErrorCode =
  | "INVALID_ARGUMENT"
  | "INVALID_RULESET"
  | "INVALID_CONTEXT"
  | "DISPOSED"
  | "NOT_READY"
  | "FETCH_FAILED"
  | "PROMPT_NOT_FOUND"
  | "PROMPT_INTEGRITY"
  | "ENGINE";

/** The base class of every error promptflag throws. */
export class PromptflagError extends Error {
  /** A stable, machine-readable code. */
  readonly code: PromptflagErrorCode;

  constructor(code: PromptflagErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PromptflagError";
    this.code = code;
  }
}

/** An argument has the wrong type or value (a programming mistake). */
export class InvalidArgumentError extends PromptflagError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
    this.name = "InvalidArgumentError";
  }
}

/** The ruleset was rejected: `problems` lists every problem, each with its path. */
export class RulesetValidationError extends PromptflagError {
  /** Every problem found, in document order. */
  readonly problems: readonly Problem[];

  constructor(message: string, problems: readonly Problem[], options?: { cause?: unknown }) {
    super("INVALID_RULESET", message, options);
    this.name = "RulesetValidationError";
    this.problems = problems;
  }
}

/** A context could not be read (only thrown where a context is prepared ahead of evaluation). */
export class ContextError extends PromptflagError {
  constructor(message: string) {
    super("INVALID_CONTEXT", message);
    this.name = "ContextError";
  }
}

/** The evaluator or context was freed and can no longer be used. */
export class DisposedError extends PromptflagError {
  constructor(what: string) {
    super("DISPOSED", `this ${what} was freed with free() or a using-declaration; create a new one`);
    this.name = "DisposedError";
  }
}

/** The client has no ruleset yet: no fetch has succeeded and no fallback ruleset was given. */
export class NotReadyError extends PromptflagError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NOT_READY", message, options);
    this.name = "NotReadyError";
  }
}

/** A request to the edge failed (network error, timeout, or an unexpected HTTP status). */
export class FetchError extends PromptflagError {
  /** The HTTP status, when a response arrived. */
  readonly status: number | undefined;
  /** The URL requested. */
  readonly url: string;

  constructor(message: string, url: string, status?: number, options?: { cause?: unknown }) {
    super("FETCH_FAILED", message, options);
    this.name = "FetchError";
    this.url = url;
    this.status = status;
  }
}

/** The edge has no prompt body with this hash. */
export class PromptNotFoundError extends PromptflagError {
  /** The SHA-256 asked for. */
  readonly hash: string;

  constructor(hash: string, url: string) {
    super(
      "PROMPT_NOT_FOUND",
      `no prompt body with hash ${hash} at ${url}: publish the prompt (promptflag publish) before a ruleset refers to it`,
    );
    this.name = "PromptNotFoundError";
    this.hash = hash;
  }
}

/** A prompt body's SHA-256 is not the hash it was fetched by: it was not cached or returned. */
export class PromptIntegrityError extends PromptflagError {
  /** The hash asked for. */
  readonly expected: string;
  /** The hash of the bytes received. */
  readonly actual: string;

  constructor(expected: string, actual: string, url: string) {
    super(
      "PROMPT_INTEGRITY",
      `the body served at ${url} hashes to ${actual}, not ${expected}: the edge or a proxy altered it; it was discarded`,
    );
    this.name = "PromptIntegrityError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** The shape the Wasm layer throws (JSON text), turned into a typed error here, in one place. */
interface ThrownByWasm {
  kind?: string;
  message?: string;
  problems?: Problem[];
}

/** Converts whatever the Wasm layer threw into a {@link PromptflagError}. */
export function fromWasmError(thrown: unknown): PromptflagError {
  if (thrown instanceof PromptflagError) {
    return thrown;
  }
  let parsed: ThrownByWasm | undefined;
  if (typeof thrown === "string") {
    try {
      parsed = JSON.parse(thrown) as ThrownByWasm;
    } catch {
      parsed = undefined;
    }
  }
  if (parsed === undefined || typeof parsed !== "object" || parsed === null) {
    const message = thrown instanceof Error ? thrown.message : String(thrown);
    return new PromptflagError("ENGINE", `the promptflag engine failed: ${message}`, { cause: thrown });
  }
  const message = parsed.message ?? "unknown error";
  switch (parsed.kind) {
    case "ruleset": {
      const problems = parsed.problems ?? [];
      return new RulesetValidationError(rulesetMessage(message, problems), problems);
    }
    case "context":
      return new ContextError(`${message}; pass an object of attributes, e.g. { targetingKey: "user-1" }`);
    case "argument":
      return new InvalidArgumentError(message);
    default:
      return new PromptflagError("ENGINE", message);
  }
}

function rulesetMessage(message: string, problems: readonly Problem[]): string {
  if (problems.length === 0 || message.includes("\n")) {
    return `${message}\nFix the ruleset (promptflag lint shows the same problems) and load it again.`;
  }
  const lines = problems.slice(0, 20).map((problem) => `  ${problem.path}: ${problem.message}`);
  if (problems.length > 20) {
    lines.push(`  … and ${problems.length - 20} more (see error.problems)`);
  }
  return `${message}\n${lines.join("\n")}\nFix the ruleset (promptflag lint shows the same problems) and load it again.`;
}
