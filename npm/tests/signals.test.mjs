// The hallucination signals and the judge's sampling against the vectors the Rust crate writes
// (crates/evals/tests/signal-vectors.json): the npm port must answer every one exactly as the
// native code does. Then the LLM-call event helper: the contracts' field names, the signals as
// separate fields, the judge's score, refusals of what the collector would refuse, and delivery
// through the batching sender.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { test } from "node:test";
import { loadPackage, ROOT } from "./support.mjs";

const promptflag = await loadPackage();
const { computeSignals, shouldJudge, llmCallEvent, withJudgeScore, ExposureSender, InvalidArgumentError } = promptflag;

const vectors = JSON.parse(readFileSync(join(ROOT, "crates", "evals", "tests", "signal-vectors.json"), "utf8"));

test("the vectors file holds cases for both halves", () => {
  assert.ok(vectors.signals.length >= 10, `only ${vectors.signals.length} signal vectors`);
  assert.ok(vectors.sampling.length >= 50, `only ${vectors.sampling.length} sampling vectors`);
});

for (const vector of vectors.signals) {
  test(`signals: ${vector.name}`, () => {
    const computed = computeSignals(vector.evidence);
    assert.deepEqual(
      {
        citation_mismatch: computed.citation_mismatch,
        tool_call_mismatch: computed.tool_call_mismatch,
        unsupported_numeric_claims: computed.unsupported_numeric_claims,
        unmatched_citations: computed.unmatchedCitations,
        tool_call_problems: computed.toolCallProblems.length,
        unsupported_numbers: computed.unsupportedNumbers,
      },
      vector.signals,
      JSON.stringify(computed.toolCallProblems),
    );
  });
}

test("sampling: every request id and rate as the native JudgeSampler chooses", () => {
  const disagreements = vectors.sampling.filter((v) => shouldJudge(v.request_id, v.rate) !== v.sampled);
  assert.deepEqual(disagreements, []);
});

test("sampling: the hash is SHA-256 of the request id", () => {
  // The package hashes synchronously in plain JavaScript; Node's own SHA-256 checks it on
  // lengths around the block boundaries.
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const id = "é".repeat(length);
    const digest = createHash("sha256").update(id, "utf8").digest("hex");
    const prefix = Number(BigInt(`0x${digest.slice(0, 16)}`)) / 2 ** 64;
    assert.equal(shouldJudge(id, prefix + 1e-12), true, `length ${length}`);
    assert.equal(shouldJudge(id, Math.max(prefix - 1e-12, 0)), false, `length ${length}`);
  }
});

test("an LLM-call event carries the contracts' fields and the signals separately", () => {
  const event = llmCallEvent({
    requestId: "req-1",
    flagKey: "support-prompt",
    variant: "v2",
    status: "success",
    timestamp: Date.UTC(2026, 0, 2, 3, 4, 5),
    model: "gpt-4o-mini",
    latencyMs: 812,
    inputTokens: 120,
    outputTokens: 40,
    hashResponse: true,
    evidence: {
      response: "The Pro plan is 1,300 a year [kb-12] [kb-99].",
      input: "How much is Pro?",
      sources: [{ id: "kb-12", text: "Pro costs 1,200 a year." }],
      declaredTools: [],
      toolCalls: [],
    },
  });
  assert.equal(event.type, "llm_call");
  assert.equal(event.timestamp, "2026-01-02T03:04:05.000Z");
  assert.equal(event.citation_mismatch, true);
  assert.equal(event.tool_call_mismatch, false);
  assert.equal(event.unsupported_numeric_claims, true);
  assert.equal(event.judge_score, null);
  assert.equal(event.response_hash, createHash("sha256").update("The Pro plan is 1,300 a year [kb-12] [kb-99].").digest("hex"));
  assert.deepEqual(Object.keys(event).sort(), [
    "citation_mismatch", "cost_usd", "environment", "flag_key", "hallucinated", "input_tokens", "judge_score",
    "latency_ms", "model", "output_tokens", "parser_valid", "prompt_hash", "prompt_id", "prompt_version", "refused",
    "request_id", "response_hash", "status", "temperature", "timestamp", "tool_call_mismatch", "ttft_ms", "type",
    "unsupported_numeric_claims", "user_id", "variant",
  ]);
  assert.equal(withJudgeScore(event, 0.25).judge_score, 0.25);
  assert.equal(event.judge_score, null, "withJudgeScore copies");
  const bare = llmCallEvent({ requestId: "req-2", flagKey: "f", variant: "a", status: "error" });
  assert.equal(bare.citation_mismatch, null);
  assert.equal(bare.tool_call_mismatch, null);
  assert.equal(bare.unsupported_numeric_claims, null);
});

test("what the collector would refuse is refused when the event is built", () => {
  const base = { requestId: "r", flagKey: "f", variant: "a", status: "success" };
  for (const broken of [
    { ...base, requestId: "" },
    { ...base, status: "ok-ish" },
    { ...base, latencyMs: -1 },
    { ...base, inputTokens: 1.5 },
    { ...base, judgeScore: 1.2 },
    { ...base, timestamp: Number.NaN },
  ]) {
    assert.throws(() => llmCallEvent(broken), InvalidArgumentError, JSON.stringify(broken));
  }
  assert.throws(() => withJudgeScore(llmCallEvent(base), Number.NaN), InvalidArgumentError);
});

test("the batching sender delivers call events with the writer token", async () => {
  const received = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ url: request.url, authorization: request.headers.authorization, body: JSON.parse(body) });
      response.writeHead(202, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const sender = new ExposureSender({ url: `http://127.0.0.1:${server.address().port}`, token: "writer-token" });
    const event = llmCallEvent({ requestId: "req-9", flagKey: "f", variant: "a", status: "success", evidence: { response: "ok", sources: [] } });
    assert.equal(sender.recordCall(event), true);
    await sender.close();
    assert.equal(sender.recordCall(event), false, "a closed sender takes nothing");
    assert.equal(received.length, 1);
    assert.equal(received[0].url, "/v1/events");
    assert.equal(received[0].authorization, "Bearer writer-token");
    assert.deepEqual(received[0].body, [event]);
    assert.equal(sender.stats().sent, 1);
    // A client with a collector sends calls through its own sender; without one it takes none.
    const { PromptflagClient } = promptflag;
    const options = { baseUrl: "http://127.0.0.1:9/", autoStart: false, refreshIntervalMs: 0 };
    const withCollector = new PromptflagClient({ ...options, collector: { url: `http://127.0.0.1:${server.address().port}`, token: "writer-token" } });
    assert.equal(withCollector.recordCall(event), true);
    await withCollector.flushExposures();
    withCollector.close();
    assert.equal(received.length, 2);
    assert.deepEqual(received[1].body, [event]);
    const without = new PromptflagClient(options);
    assert.equal(without.recordCall(event), false);
    without.close();
  } finally {
    server.close();
  }
});
