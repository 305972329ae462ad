// End-to-end driver: the official TypeScript SDK client against an mcp-actors demo server.
//
// Usage: node tests/peers/ts_client.mjs http://127.0.0.1:PORT/mcp
//
// Runs one scripted session over Streamable HTTP and prints ONE JSON object on stdout
// with everything it observed. Any error goes to stderr and makes the exit code non-zero.
// The script must live under the project root so that `@modelcontextprotocol/sdk`
// resolves from /work/main/node_modules (ESM resolves relative to the script, not cwd).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
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

const url = process.argv[2];
if (!url) {
  console.error('usage: ts_client.mjs <server url>');
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`ts_client: gave up after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

const observed = {
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
};

const transport = new StreamableHTTPClientTransport(new URL(url), {
  // No automatic reconnection: a dropped stream should fail the test, not be papered over.
  reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
});
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

async function main() {
  await client.connect(transport, opts);
  observed.sessionId = transport.sessionId ?? null;
  observed.protocolVersion = transport.protocolVersion ?? null;
  observed.serverInfo = client.getServerVersion() ?? null;
  observed.serverCapabilities = client.getServerCapabilities() ?? null;

  phase = 'session';
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

  phase = 'terminate';
  await transport.terminateSession();
  phase = 'close';
  observed.sessionIdAfterTerminate = transport.sessionId ?? null;
  await client.close();
}

try {
  await main();
} catch (err) {
  console.error('ts_client failed:', err && err.stack ? err.stack : err);
  console.error('observed so far:', JSON.stringify(observed));
  try { await client.close(); } catch { /* already failing */ }
  process.exit(1);
}
process.stdout.write(JSON.stringify(observed) + '\n', () => process.exit(0));
