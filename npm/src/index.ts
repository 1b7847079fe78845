/**
 * promptflag: feature flags for LLM prompts.
 *
 * - {@link Evaluator}: validate a ruleset once, evaluate flags locally (the engine is Rust
 *   compiled to WebAssembly, the same code as the edge Worker and native services);
 * - {@link PreparedContext}: the fast path for hot loops;
 * - {@link PromptflagClient}: a ruleset kept fresh from the promptflag Worker, verified prompt
 *   bodies, exposures;
 * - `promptflag/openfeature`: an OpenFeature provider.
 *
 * This module is what every runtime entry (`node`, `workerd`, `browser`) re-exports after
 * loading the WebAssembly module in the way its runtime allows.
 */

export {
  bucketHash,
  bucketSlot,
  Evaluator,
  PreparedContext,
  type Bucket,
  type ContextAttributes,
  type ContextInput,
  type ErrorCode,
  type EvaluateOptions,
  type Evaluation,
  type EvaluationDetails,
  type FlagInfo,
  type FlagKind,
  type JsonValue,
  type PromptRef,
  type PromptResolution,
  type Reason,
  type ValueType,
} from "./engine.js";
export {
  PromptflagClient,
  verifyBundle,
  type FallbackBundle,
  type ClientStatus,
  type ExposureEvent,
  type PromptflagClientOptions,
  type PromptWithBody,
  type RefreshResult,
  type RulesetSource,
  type RulesetUpdate,
} from "./client.js";
export {
  computeSignals,
  citations,
  type DeclaredTool,
  type SignalEvidence,
  type Signals,
  type SignalSource,
  type ToolCallRecord,
} from "./signals.js";
export {
  llmCallEvent,
  shouldJudge,
  withJudgeScore,
  type CallStatus,
  type LlmCallEvent,
  type LlmCallInput,
} from "./calls.js";
export { ExposureSender, type CollectorOptions, type ExposureStats } from "./exposures.js";
export {
  ContextError,
  DisposedError,
  FetchError,
  InvalidArgumentError,
  NotReadyError,
  PromptflagError,
  PromptIntegrityError,
  PromptNotFoundError,
  RulesetValidationError,
  type Problem,
  type PromptflagErrorCode,
} from "./errors.js";
