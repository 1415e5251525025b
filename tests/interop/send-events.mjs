// Sends binary, structured and batch CloudEvents to a govfn server with the JavaScript
// CloudEvents SDK and parses the replies with it. Prints one JSON report; exits 1 on failure.
// Usage: node send-events.mjs http://127.0.0.1:PORT
import assert from "node:assert/strict";
import sdk from "cloudevents";

const { CloudEvent, HTTP } = sdk;
const base = process.argv[2];
const report = { sdk: "cloudevents (npm)", checks: {} };

async function send(path, message) {
  const response = await fetch(base + path, {
    method: "POST",
    headers: message.headers,
    body: message.body,
    signal: AbortSignal.timeout(10000),
  });
  const headers = Object.fromEntries(response.headers.entries());
  const raw = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers, body: raw.toString("utf8"), raw };
}

function replyOf(answer) {
  assert.equal(answer.status, 200, answer.body);
  return HTTP.toEvent({ headers: answer.headers, body: answer.body });
}

function echoEvent(id, data, extra = {}) {
  return new CloudEvent({
    id, source: "/interop/js", type: "ECHO_REQUESTED", datacontenttype: "application/json",
    data, ...extra,
  });
}

const checks = {
  async binary() {
    const event = echoEvent("js-binary-1", { hello: "from js", n: [1, 2] }, {
      gsapcontextid: "gsap-js", chroniclesessionid: "session-js", subject: "interop",
    });
    const first = replyOf(await send("/functions/echo/events", HTTP.binary(event)));
    assert.equal(first.type, "ECHO_REPLIED");
    assert.equal(first.source, "/govfn/functions/echo");
    assert.equal(first.specversion, "1.0");
    assert.deepEqual(first.data, { hello: "from js", n: [1, 2] });
    assert.equal(first.gsapcontextid, "gsap-js");
    assert.equal(first.chroniclesessionid, "session-js");
    assert.match(first.lineagecid, /^b[a-z2-7]+$/);
    const again = replyOf(await send("/functions/echo/events", HTTP.binary(event)));
    assert.equal(again.id, first.id, "a redelivery gets the same reply id");
    return { id: first.id, lineagecid: first.lineagecid };
  },
  async structured() {
    const event = echoEvent("js-structured-1", { mode: "structured" });
    const reply = replyOf(await send("/", HTTP.structured(event)));
    assert.equal(reply.type, "ECHO_REPLIED");
    assert.deepEqual(reply.data, { mode: "structured" });
    return { id: reply.id };
  },
  async batch() {
    const events = [1, 2, 3].map((n) => echoEvent(`js-batch-${n}`, { n }));
    const answer = await send("/", {
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(events.map((e) => e.toJSON())),
    });
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.headers["content-type"], /^application\/cloudevents-batch\+json/);
    const replies = HTTP.toEvent({ headers: answer.headers, body: answer.body });
    assert.equal(replies.length, 3);
    assert.deepEqual(replies.map((r) => r.data.n), [1, 2, 3]);
    assert.equal(new Set(replies.map((r) => r.id)).size, 3);
    return { ids: replies.map((r) => r.id) };
  },
  async billing() {
    const event = new CloudEvent({
      id: "js-cr-1", source: "/interop/js", type: "GSAP_CR_RECEIVED",
      datacontenttype: "application/json", gsapcontextid: "gsap-bill",
      data: { customer_id: "customer-js", quantity: 3 },
    });
    const reply = replyOf(await send("/", HTTP.binary(event)));
    assert.equal(reply.type, "BILLABLE_EVENT");
    assert.equal(reply.gsapcontextid, "gsap-bill");
    assert.equal(reply.subject, "customer-js");
    assert.ok(reply.id.startsWith("bill-"));
    assert.equal(reply.data.meter, "gsap_cr");
    assert.equal(reply.data.quantity, 3);
    return { id: reply.id };
  },
  async refusedWithoutGsap() {
    const event = new CloudEvent({
      id: "js-cr-2", source: "/interop/js", type: "GSAP_CR_RECEIVED",
      datacontenttype: "application/json", data: { customer_id: "c" },
    });
    const answer = await send("/", HTTP.binary(event));
    assert.equal(answer.status, 400);
    assert.equal(answer.headers["content-type"], "application/problem+json");
    assert.equal(JSON.parse(answer.body).attribute, "gsapcontextid");
    return { status: answer.status };
  },
  async binaryData() {
    const event = new CloudEvent({
      id: "js-bytes-1", source: "/interop/js", type: "ECHO_REQUESTED",
      datacontenttype: "application/octet-stream", data: Buffer.from([0, 1, 2, 255]),
    });
    const message = HTTP.binary(event);
    const answer = await send("/", message);
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.headers["content-type"], "application/octet-stream");
    assert.deepEqual([...answer.raw], [0, 1, 2, 255]);
    return { bytes: answer.raw.length };
  },
};

let failed = false;
for (const [name, check] of Object.entries(checks)) {
  try {
    report.checks[name] = { ok: true, ...(await check()) };
  } catch (error) {
    failed = true;
    report.checks[name] = { ok: false, error: String(error && error.stack || error) };
  }
}
console.log(JSON.stringify(report));
process.exit(failed ? 1 : 0);
