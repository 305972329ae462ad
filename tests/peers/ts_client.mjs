// End-to-end driver: the official TypeScript SDK client against an mcp-actors server.
//
// Usage: node tests/peers/ts_client.mjs URL [--sse [--sdk-order]] [--scenario demo|everything]
//
//   URL                  http://127.0.0.1:PORT/mcp (Streamable HTTP), or .../sse with --sse
//   --sse                use the 2024-11-05 HTTP+SSE transport (SSEClientTransport) instead of
//                        StreamableHTTPClientTransport; the same scenario runs, minus DELETE
//   --scenario NAME      demo (default): the built-in demo app's full session;
//                        everything: a few tools of examples/everything.py
//   --sdk-order          with --sse: leave out the workaround for the SDK's response-before-
//                        notification race (see below), to reproduce it
//
// Runs one scripted session and prints ONE JSON object on stdout with everything it
// observed. Any error goes to stderr and makes the exit code non-zero.
// The script must live under the project root so that `@modelcontextprotocol/sdk`
// resolves from /work/main/node_modules (ESM resolves relative to the script, not cwd).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const OVERALL_TIMEOUT_MS = 30_000; // the whole run, whatever happens
const REQUEST_TIMEOUT_MS = 10_000; // each request
const UPDATE_WAIT_MS = 5_000;      // waiting for notifications/resources/updated

// Deterministic answers of the client-side handlers; the pytest side knows them too.
const ROOTS = [
  { uri: 'file:///work/project', name: 'project' },
  { uri: 'file:///tmp/scratch', name: 'scratch' },
];
const samplingAnswer = (question) => `LLM says: ${question}`;

const USAGE = 'usage: ts_client.mjs <server url> [--sse [--sdk-order]] [--scenario demo|everything]';
let url = null;
let useSse = false;
let sdkOrder = false;
let scenario = 'demo';
for (let i = 2; i < process.argv.length; i += 1) {
  const arg = process.argv[i];
  if (arg === '--sse') useSse = true;
  else if (arg === '--sdk-order') sdkOrder = true;
  else if (arg === '--scenario') scenario = process.argv[(i += 1)];
  else if (!arg.startsWith('--') && url === null) url = arg;
  else { console.error(`ts_client: unexpected argument ${arg}\n${USAGE}`); process.exit(2); }
}
if (!url || !['demo', 'everything'].includes(scenario)) {
  console.error(USAGE);
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`ts_client: gave up after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

const observed = {
  transport: useSse ? 'sse' : 'streamable-http',
  scenario,
  sessionId: null,
  protocolVersion: null,
  serverInfo: null,
  serverCapabilities: null,
  tools: null,
  echo: null,
  longTask: null,
  progress: [],
  sampling: { requests: [], result: null },
  elicitation: { requests: [], result: null },
  roots: { requests: 0, result: null },
  resources: {},
  prompt: null,
  completion: null,
  subscribe: null,
  addNote: null,
  updated: [],
  updateArrived: false,
  updateWaitMs: null,
  otherNotifications: [],
  logMessages: [],
  clientErrors: [],
  sessionIdAfterTerminate: null,
  // --scenario everything only
  simpleText: null,
  toolWithProgress: null,
  // --sse only: every HTTP request the transport made, and what became of the stream on close()
  endpoint: null,
  requests: [],
  wire: [],
  streamAbortedOnClose: null,
  closed: false,
};

// --sse: every request of the transport goes through this fetch (the EventSource's GET and
// the POSTs), so the test sees the wire: one GET, then POSTs to the endpoint, each a 202.
// A response can come down the stream before its POST's 202 (the server acknowledges after it
// has stored the message's effects), so close() waits for the acknowledgements first: aborting
// a POST still in flight would hide whether the server accepted it.
const streamSignals = [];
const inflightPosts = [];
async function recordingFetch(input, init = {}) {
  const target = new URL(input instanceof Request ? input.url : String(input));
  const entry = {
    method: init.method ?? 'GET',
    path: target.pathname + target.search,
    accept: new Headers(init.headers).get('accept'),
    protocolVersion: new Headers(init.headers).get('mcp-protocol-version'),
    status: null,
  };
  observed.requests.push(entry);
  if (entry.method === 'GET') streamSignals.push(init.signal ?? null);
  const pending = fetch(input, init).then(
    (response) => { entry.status = response.status; return response; },
    (error) => { entry.status = `failed: ${error && error.name}`; throw error; },
  );
  if (entry.method === 'POST') inflightPosts.push(pending.catch(() => {}));
  return pending;
}

const transport = useSse
  ? new SSEClientTransport(new URL(url), { fetch: recordingFetch })
  : new StreamableHTTPClientTransport(new URL(url), {
    // No automatic reconnection: a dropped stream should fail the test, not be papered over.
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
  });
if (useSse) {
  // Tap the transport's onmessage (the SDK's Protocol sets it in connect()) to record the order
  // in which the server's messages come down the stream: that order is the server's doing.
  //
  // And work around an SDK 1.32.2 race that is no fault of the server: Protocol handles a
  // response synchronously but defers every notification handler to a microtask, and the
  // EventSource under SSEClientTransport dispatches all the events of one network read in one
  // go. When a tool's last notifications/progress and its result arrive in the same read, the
  // result is handled first, the progress handler is gone, and the notification is dropped
  // ("Received a progress notification for an unknown token"). StreamableHTTPClientTransport
  // awaits between events, so it never sees this. Deferring responses by one microtask makes
  // the SDK handle messages in the order they arrived.
  let deliver;
  const tap = (message, extra) => {
    if (!('method' in message)) observed.wire.push({ id: message.id });
    else if ('id' in message) observed.wire.push({ method: message.method, id: message.id });
    else observed.wire.push({ method: message.method });
    if ('method' in message || sdkOrder) deliver(message, extra);
    else queueMicrotask(() => deliver?.(message, extra));
  };
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get: () => (deliver ? tap : undefined),
    set: (handler) => { deliver = handler; },
  });
}

const client = new Client(
  { name: 'mcp-actors-e2e-ts', version: '0.0.0' },
  { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
);

client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  observed.sampling.requests.push(req.params);
  const first = req.params.messages[0];
  const question = first && first.content && first.content.type === 'text' ? first.content.text : '';
  return { role: 'assistant', model: 'e2e-fake-model', stopReason: 'endTurn', content: { type: 'text', text: samplingAnswer(question) } };
});
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  observed.elicitation.requests.push(req.params);
  return { action: 'accept', content: { confirm: true } };
});
client.setRequestHandler(ListRootsRequestSchema, async () => {
  observed.roots.requests += 1;
  return { roots: ROOTS };
});

let resolveUpdate;
const updateArrived = new Promise((resolve) => { resolveUpdate = resolve; });
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  observed.updated.push(n.params.uri);
  if (n.params.uri === 'demo://notes') resolveUpdate(true);
});
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
  observed.logMessages.push({ level: n.params.level, data: n.params.data });
});
client.fallbackNotificationHandler = async (n) => { observed.otherNotifications.push(n.method); };
client.onclose = () => { observed.closed = true; };
// close() aborts the standalone GET stream; that AbortError is expected, anything else is recorded
// with the phase it happened in (connect, session, terminate, close) so the test can tell a dropped
// stream mid-session from the GET stream that the server ends when the session is DELETEd.
let phase = 'connect';
client.onerror = (e) => { if (!String(e).includes('AbortError')) observed.clientErrors.push({ phase, error: String(e) }); };

const opts = { timeout: REQUEST_TIMEOUT_MS };
const text = (result) => {
  if (result.isError) throw new Error(`tool failed: ${JSON.stringify(result)}`);
  return result.content.map((c) => c.text).join('');
};

async function connect() {
  await client.connect(transport, opts);
  if (useSse) {
    // The legacy transport has no session header: the session is the endpoint URL's query.
    const endpoint = observed.requests.find((r) => r.method === 'POST');
    observed.endpoint = endpoint ? endpoint.path : null;
    observed.sessionId = endpoint ? new URL(endpoint.path, url).searchParams.get('session_id') : null;
    // Nor a protocolVersion getter: the negotiated version is the header its POSTs carry from
    // notifications/initialized (the last request connect() made) on.
    observed.protocolVersion = observed.requests[observed.requests.length - 1].protocolVersion;
  } else {
    observed.sessionId = transport.sessionId ?? null;
    observed.protocolVersion = transport.protocolVersion ?? null;
  }
  observed.serverInfo = client.getServerVersion() ?? null;
  observed.serverCapabilities = client.getServerCapabilities() ?? null;
  phase = 'session';
}

async function closeClient() {
  if (useSse) {
    // No DELETE in HTTP+SSE: closing the client is how the session's stream ends.
    await Promise.race([
      Promise.all(inflightPosts),
      new Promise((resolve) => { setTimeout(resolve, REQUEST_TIMEOUT_MS).unref(); }),
    ]);
    phase = 'close';
    await client.close();
    observed.streamAbortedOnClose = streamSignals.map((signal) => (signal ? signal.aborted : null));
    return;
  }
  phase = 'terminate';
  await transport.terminateSession();
  phase = 'close';
  observed.sessionIdAfterTerminate = transport.sessionId ?? null;
  await client.close();
}

async function everything() {
  await connect();
  observed.tools = (await client.listTools(undefined, opts)).tools.map((t) => t.name).sort();
  observed.simpleText = text(await client.callTool({ name: 'test_simple_text', arguments: {} }, undefined, opts));
  observed.toolWithProgress = text(await client.callTool(
    { name: 'test_tool_with_progress', arguments: {} },
    undefined,
    { ...opts, onprogress: (p) => observed.progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }) },
  ));
  observed.sampling.result = text(await client.callTool(
    { name: 'test_sampling', arguments: { prompt: 'Say hi over SSE' } }, undefined, opts));
  await closeClient();
}

async function demo() {
  await connect();
  observed.tools = (await client.listTools(undefined, opts)).tools.map((t) => t.name).sort();

  observed.echo = text(await client.callTool({ name: 'echo', arguments: { text: 'hello from ts' } }, undefined, opts));

  observed.longTask = text(await client.callTool(
    { name: 'long_task', arguments: { steps: 3, interval_s: 0.05 } },
    undefined,
    { ...opts, onprogress: (p) => observed.progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }) },
  ));

  observed.sampling.result = text(await client.callTool({ name: 'ask_llm', arguments: { question: 'What is 2+2?' } }, undefined, opts));
  observed.elicitation.result = text(await client.callTool({ name: 'confirm', arguments: { action: 'deploy' } }, undefined, opts));
  observed.roots.result = text(await client.callTool({ name: 'show_roots', arguments: {} }, undefined, opts));

  for (const uri of ['demo://about', 'demo://greeting/Ann']) {
    const r = await client.readResource({ uri }, opts);
    observed.resources[uri] = r.contents.map((c) => ({ uri: c.uri, mimeType: c.mimeType ?? null, text: c.text ?? null }));
  }

  const prompt = await client.getPrompt({ name: 'summarize', arguments: { text: 'MCP is a protocol.' } }, opts);
  observed.prompt = {
    description: prompt.description ?? null,
    messages: prompt.messages.map((m) => ({ role: m.role, type: m.content.type, text: m.content.text ?? null })),
  };

  const completion = await client.complete(
    { ref: { type: 'ref/prompt', name: 'summarize' }, argument: { name: 'text', value: 'the ' } }, opts);
  observed.completion = completion.completion;

  observed.subscribe = await client.subscribeResource({ uri: 'demo://notes' }, opts);
  const started = Date.now();
  observed.addNote = text(await client.callTool({ name: 'add_note', arguments: { text: 'first note' } }, undefined, opts));
  let timer;
  const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve(false), UPDATE_WAIT_MS); });
  observed.updateArrived = await Promise.race([updateArrived, timedOut]);
  clearTimeout(timer);
  observed.updateWaitMs = Date.now() - started;

  await closeClient();
}

try {
  await (scenario === 'everything' ? everything() : demo());
} catch (err) {
  console.error('ts_client failed:', err && err.stack ? err.stack : err);
  console.error('observed so far:', JSON.stringify(observed));
  try { await client.close(); } catch { /* already failing */ }
  process.exit(1);
}
process.stdout.write(JSON.stringify(observed) + '\n', () => process.exit(0));
