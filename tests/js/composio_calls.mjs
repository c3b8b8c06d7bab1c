// Drives @composio/core's own telemetry against a receiver and writes, as JSON to REPORT_FILE,
// every request it sent and what the receiver answered. Environment: RECEIVER_URL (the
// receiver's base, e.g. http://127.0.0.1:4319), REPORT_FILE, CALLS (successful calls, default 302).
//
// The client's telemetry base is a constant (https://telemetry.composio.dev/v1, no option or
// variable), so the one global `fetch` it posts with is wrapped to send that prefix to
// RECEIVER_URL/v1 instead; any other address is refused, so nothing leaves the machine.
import { writeFileSync } from "node:fs";

import { BaseNonAgenticProvider, Composio } from "@composio/core";

const COMPOSIO_TELEMETRY = "https://telemetry.composio.dev/v1";
const receiver = process.env.RECEIVER_URL;
if (!receiver) throw new Error("RECEIVER_URL is not set");
const reportFile = process.env.REPORT_FILE;
if (!reportFile) throw new Error("REPORT_FILE is not set");
const calls = Number(process.env.CALLS ?? 302);

const realFetch = globalThis.fetch;
const requests = [];
globalThis.fetch = async (input, init = {}) => {
  const url = String(input instanceof Request ? input.url : input);
  if (!url.startsWith(COMPOSIO_TELEMETRY)) throw new Error(`blocked: ${url}`);
  const target = receiver + "/v1" + url.slice(COMPOSIO_TELEMETRY.length);
  const response = await realFetch(target, init);
  const answer = await response.clone().text();
  requests.push({ path: new URL(target).pathname, headers: init.headers, body: init.body, status: response.status, answer });
  return response;
};

// A custom provider: Composio instruments the async methods of the provider it is given.
class EchoProvider extends BaseNonAgenticProvider {
  name = "echo";
  wrapTool(tool) { return tool; }
  wrapTools(tools) { return tools; }
  async ping(i) { return i; }
  async inner() { throw new TypeError("bad Bearer abc.def.ghi"); }
  async outer() { return await this.inner(); }
}

const provider = new EchoProvider();
const composio = new Composio({ apiKey: "ak_local_only", baseURL: "http://127.0.0.1:9", provider, disableVersionCheck: true });
// As fast as it goes, so that whole-millisecond stamps collide within a batch of 10; with a pause
// every 5 calls, so that two whole batches never fall in one millisecond: their bodies would be
// byte for byte the same, which the receiver takes for a resend (without event ids or an
// Idempotency-Key nothing tells the two apart). A fast machine did that once in a few runs.
for (let i = 0; i < calls; i++) {
  await provider.ping(i);
  if (i % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 2));
}
let thrown = null;
try { await provider.outer(); } catch (error) { thrown = error.name; }
await composio.flush();

// A resend of the largest batch, byte for byte (as a client retry or a proxy would send it).
const size = (r) => (r.path.endsWith("/metrics/invocations") ? JSON.parse(r.body).length : 0);
const batch = requests.reduce((largest, r) => (size(r) > size(largest) ? r : largest));
const resend = await realFetch(receiver + batch.path, { method: "POST", headers: batch.headers, body: batch.body });
const resendAnswer = await resend.text();

const report = { thrown, requests, resend: { status: resend.status, answer: resendAnswer, body: batch.body } };
// The client flushes once more at `beforeExit` (composio.flush() is itself an instrumented call,
// whose item is sent then), so the report is written at `exit`, with every request in it.
process.on("exit", () => writeFileSync(reportFile, JSON.stringify(report)));
