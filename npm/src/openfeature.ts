/**
 * An OpenFeature provider for `@openfeature/server-sdk`, backed by local evaluation: an
 * {@link Evaluator} (a fixed ruleset) or a {@link PromptflagClient} (a ruleset kept fresh from
 * the edge, with exposures).
 *
 * ```ts
 * import { OpenFeature } from "@openfeature/server-sdk";
 * import { PromptflagClient } from "promptflag";
 * import { PromptflagProvider } from "promptflag/openfeature";
 *
 * await OpenFeature.setProviderAndWait(new PromptflagProvider(new PromptflagClient({ baseUrl, readKey })));
 * const prompt = await OpenFeature.getClient().getObjectValue("support_prompt", {}, { targetingKey: "user-1" });
 * ```
 *
 * This module imports nothing from the SDK at run time (only its types), so the package keeps
 * no runtime dependencies.
 */

import type {
  ErrorCode,
  EvaluationContext,
  FlagMetadata,
  JsonValue as OpenFeatureJsonValue,
  Provider,
  ResolutionDetails,
} from "@openfeature/server-sdk";
import type { ContextAttributes, Evaluation, JsonValue, ValueType } from "./engine.js";
import { InvalidArgumentError } from "./errors.js";

/** What the provider evaluates with: an `Evaluator` or a `PromptflagClient`. */
export interface PromptflagSource {
  evaluateTyped(flagKey: string, context: ContextAttributes | undefined, type: ValueType): Evaluation<JsonValue>;
  /** Present on `PromptflagClient`: awaited by `initialize`. */
  ready?(): Promise<void>;
  /** Present on `PromptflagClient`: called by `onClose`. */
  close?(): void;
  /** The ruleset's revision and environment, for flag metadata. */
  readonly revision?: number | null;
  readonly environment?: string | null;
  readonly status?: { readonly revision: number | null; readonly environment: string | null };
  /** Present on `PromptflagClient`: the provider emits PROVIDER_CONFIGURATION_CHANGED on updates. */
  subscribe?(listener: (update: { revision: number; environment: string }) => void): () => void;
}

type Handler = (details?: Record<string, unknown>) => unknown;

/**
 * The provider's event emitter, in the shape OpenFeature's SDK expects of `provider.events`
 * (implemented here so the package needs nothing from the SDK at run time).
 */
class ProviderEvents {
  readonly #handlers = new Map<string, Set<Handler>>();

  emit(eventType: string, context?: Record<string, unknown>): void {
    for (const handler of [...(this.#handlers.get(eventType) ?? [])]) {
      try {
        const result = handler(context ?? {}) as { catch?: (f: () => void) => void } | undefined;
        result?.catch?.(() => {});
      } catch {
        // A failing handler must not stop the others.
      }
    }
  }

  addHandler(eventType: string, handler: Handler): void {
    const handlers = this.#handlers.get(eventType) ?? new Set<Handler>();
    handlers.add(handler);
    this.#handlers.set(eventType, handlers);
  }

  removeHandler(eventType: string, handler: Handler): void {
    this.#handlers.get(eventType)?.delete(handler);
  }

  removeAllHandlers(eventType?: string): void {
    if (eventType === undefined) this.#handlers.clear();
    else this.#handlers.delete(eventType);
  }

  getHandlers(eventType: string): Handler[] {
    return [...(this.#handlers.get(eventType) ?? [])];
  }

  setLogger(): this {
    return this;
  }
}

/** An OpenFeature server provider that evaluates flags locally with promptflag's engine. */
export class PromptflagProvider implements Provider {
  readonly metadata = { name: "promptflag" } as const;
  readonly runsOn = "server" as const;
  readonly hooks = [];
  /** OpenFeature provider events: PROVIDER_CONFIGURATION_CHANGED when a client's ruleset changes. */
  readonly events = new ProviderEvents() as unknown as Provider["events"];
  readonly #source: PromptflagSource;
  readonly #unsubscribe: (() => void) | undefined;

  constructor(source: PromptflagSource) {
    if (typeof source !== "object" || source === null || typeof source.evaluateTyped !== "function") {
      throw new InvalidArgumentError("PromptflagProvider needs an Evaluator or a PromptflagClient");
    }
    this.#source = source;
    this.#unsubscribe = source.subscribe?.((update) => {
      (this.events as unknown as ProviderEvents).emit("PROVIDER_CONFIGURATION_CHANGED", {
        message: `ruleset revision ${update.revision} of ${update.environment}`,
        metadata: { revision: update.revision, environment: update.environment },
      });
    });
  }

  async initialize(): Promise<void> {
    await this.#source.ready?.();
  }

  async onClose(): Promise<void> {
    this.#unsubscribe?.();
    this.#source.close?.();
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.#resolve(flagKey, defaultValue, context, "boolean"));
  }

  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.#resolve(flagKey, defaultValue, context, "string"));
  }

  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.#resolve(flagKey, defaultValue, context, "number"));
  }

  resolveObjectEvaluation<T extends OpenFeatureJsonValue>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    return Promise.resolve(this.#resolve(flagKey, defaultValue, context, "object"));
  }

  #resolve<T>(flagKey: string, defaultValue: T, context: EvaluationContext, type: ValueType): ResolutionDetails<T> {
    let evaluation: Evaluation<JsonValue>;
    try {
      evaluation = this.#source.evaluateTyped(flagKey, context as ContextAttributes, type);
    } catch (error) {
      // Not ready, or a context JSON cannot carry: OpenFeature reports these as errors with the default.
      const code = (error as { code?: string })?.code === "NOT_READY" ? "PROVIDER_NOT_READY" : "GENERAL";
      return {
        value: defaultValue,
        reason: "ERROR",
        errorCode: code as ErrorCode,
        errorMessage: (error as Error)?.message ?? String(error),
      };
    }
    const flagMetadata: FlagMetadata = {};
    const revision = this.#source.status?.revision ?? this.#source.revision;
    if (typeof revision === "number") flagMetadata["revision"] = revision;
    const environment = this.#source.status?.environment ?? this.#source.environment;
    if (typeof environment === "string") flagMetadata["environment"] = environment;
    if (evaluation.prompt !== undefined) {
      flagMetadata["promptId"] = evaluation.prompt.id;
      flagMetadata["promptVersion"] = evaluation.prompt.version;
      flagMetadata["promptHash"] = evaluation.prompt.hash;
    }
    const details: ResolutionDetails<T> = {
      // On an error OpenFeature hands the caller the default; promptflag's baseline is kept in
      // the variant, so a mismatched or missing flag never returns a value of the wrong type.
      value: evaluation.errorCode === undefined ? (evaluation.value as T) : defaultValue,
      reason: evaluation.reason,
      flagMetadata,
    };
    if (evaluation.variant !== null) details.variant = evaluation.variant;
    if (evaluation.errorCode !== undefined) {
      details.errorCode = evaluation.errorCode as ErrorCode;
      if (evaluation.errorMessage !== undefined) details.errorMessage = evaluation.errorMessage;
    }
    return details;
  }
}
