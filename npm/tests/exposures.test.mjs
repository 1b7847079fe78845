// The exposure sender's bounds: batches of at most `batchSize`, a full queue drops and counts
// instead of growing, a collector that is down or refuses costs counted events, never an
// exception or a blocked evaluation, and bad options are refused at construction. The events
// reaching the real collector (and being stored with every field) are checked by the Rust suite
// crates/cli/tests/forensics.rs, which starts one.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { describe, test } from "node:test";
import { loadPackage } from "./support.mjs";

const { ExposureSender, InvalidArgumentError } = await loadPackage();

function event(unit, variant = "concise") {
  return {
    type: "exposure", timestamp: new Date(0).toISOString(), environment: "dev", flag_key: "support_prompt",
    variant, prompt_id: "support", prompt_version: "2.0.0", prompt_hash: "9f".repeat(32), revision: 7,
    unit, reason: "SPLIT",
  };
}

/** An HTTP listener on 127.0.0.1 that answers every POST with `status` and keeps the bodies. */
async function listener(status) {
  const batches = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      batches.push({ path: request.url, authorization: request.headers.authorization, events: JSON.parse(body) });
      response.writeHead(status, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, batches, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe("ExposureSender", () => {
  test("sends batches of at most batchSize with the writer token, and counts what was sent", async () => {
    const collector = await listener(200);
    const sender = new ExposureSender({ url: collector.url, token: "writer", batchSize: 2, flushIntervalMs: 60_000 });
    try {
      for (const unit of ["u1", "u2", "u3"]) {
        assert.equal(sender.record(event(unit)), true);
      }
      // Evaluations that served nothing are not exposures.
      assert.equal(sender.record(event("u4", null)), false);
      await sender.flush();
      assert.deepEqual(collector.batches.map((b) => b.events.map((e) => e.unit)), [["u1", "u2"], ["u3"]]);
      assert.ok(collector.batches.every((b) => b.path === "/v1/events" && b.authorization === "Bearer writer"));
      assert.deepEqual(sender.stats(), { sent: 3, droppedQueueFull: 0, droppedSendFailed: 0, queued: 0 });
    } finally {
      await sender.close();
      await collector.close();
    }
  });

  test("a full queue drops and counts; a collector that refuses or is down costs counted events", async () => {
    const refusing = await listener(503);
    const sender = new ExposureSender({ url: refusing.url, batchSize: 100, maxQueue: 2, flushIntervalMs: 60_000 });
    try {
      assert.equal(sender.record(event("u1")), true);
      assert.equal(sender.record(event("u2")), true);
      assert.equal(sender.record(event("u3")), false);
      assert.deepEqual(sender.stats(), { sent: 0, droppedQueueFull: 1, droppedSendFailed: 0, queued: 2 });
      await sender.flush();
      assert.deepEqual(sender.stats(), { sent: 0, droppedQueueFull: 1, droppedSendFailed: 2, queued: 0 });
    } finally {
      await sender.close();
      await refusing.close();
    }
    // Nothing listens on the discard port.
    const down = new ExposureSender({ url: "http://127.0.0.1:9", flushIntervalMs: 60_000 });
    down.record(event("u1"));
    await down.close();
    assert.deepEqual(down.stats(), { sent: 0, droppedQueueFull: 0, droppedSendFailed: 1, queued: 0 });
  });

  test("bad options are refused when the sender is made", () => {
    assert.throws(() => new ExposureSender({ url: "not a url" }), InvalidArgumentError);
    assert.throws(() => new ExposureSender({ url: "ftp://example.com" }), InvalidArgumentError);
    assert.throws(() => new ExposureSender({ url: "http://127.0.0.1:9", batchSize: 0 }), InvalidArgumentError);
    assert.throws(() => new ExposureSender({ url: "http://127.0.0.1:9", maxQueue: 1.5 }), InvalidArgumentError);
  });
});
