// End-to-end driver: tasks on the 2025-11-25 wire through the official TypeScript SDK
// client (@modelcontextprotocol/sdk 1.32.2, client.experimental.tasks).
//
// Usage: node tests/peers/ts_tasks.mjs URL
//
// Against examples/everything.py: lists tools (the SDK caches execution.taskSupport), then
// runs slow_compute, confirm_delete (an elicitation inside the task, answered by the
// client's ordinary handler), failing_job and protocol_error_job through callToolStream,
// lists the session's tasks, and cancels a long slow_compute. Prints ONE JSON object on
// stdout with what it observed; any error goes to stderr with a non-zero exit code.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const OVERALL_TIMEOUT_MS = 60_000;
const url = process.argv[2];
if (!url) {
  console.error('usage: ts_tasks.mjs <server url>');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`ts_tasks: gave up after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(3);
}, OVERALL_TIMEOUT_MS);

const seen = { elicitations: [], statusNotifications: 0, runs: {} };
const client = new Client({ name: 'ts-tasks', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  seen.elicitations.push({
    message: request.params.message,
    relatedTask: request.params._meta?.['io.modelcontextprotocol/related-task']?.taskId ?? null,
  });
  return { action: 'accept', content: { confirm: true } };
});
client.fallbackNotificationHandler = async (notification) => {
  if (notification.method === 'notifications/tasks/status') seen.statusNotifications += 1;
};

async function run(name, args) {
  const out = { types: [], statuses: [], taskId: null, result: null, error: null };
  const stream = client.experimental.tasks.callToolStream({ name, arguments: args }, CallToolResultSchema,
    { task: { ttl: 60_000 } });
  for await (const message of stream) {
    out.types.push(message.type);
    if (message.type === 'taskCreated') out.taskId = message.task.taskId;
    if (message.type === 'taskStatus') out.statuses.push(message.task.status);
    if (message.type === 'result') out.result = message.result;
    if (message.type === 'error') out.error = { code: message.error.code ?? null, message: String(message.error.message) };
  }
  seen.runs[name] = out;
  return out;
}

try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  seen.capabilities = client.getServerCapabilities();
  const tools = await client.listTools();
  seen.taskSupport = Object.fromEntries(tools.tools.filter((t) => t.execution?.taskSupport)
    .map((t) => [t.name, t.execution.taskSupport]));

  await run('slow_compute', { seconds: 1, label: 'ts' });
  await run('confirm_delete', { filename: 'a.txt' });
  await run('failing_job', {});
  await run('protocol_error_job', {});

  // A long one, cancelled while it runs.
  const created = await client.request({ method: 'tools/call', params: { name: 'slow_compute',
    arguments: { seconds: 30, label: 'cancel-me' }, task: { ttl: 60_000 } } }, CallToolResultSchema.passthrough()
    .or((await import('@modelcontextprotocol/sdk/types.js')).CreateTaskResultSchema));
  const longId = created.task.taskId;
  const cancelled = await client.experimental.tasks.cancelTask(longId);
  seen.cancel = { status: cancelled.status, get: (await client.experimental.tasks.getTask(longId)).status };

  const listed = await client.experimental.tasks.listTasks();
  seen.listed = listed.tasks.map((t) => ({ taskId: t.taskId, status: t.status }));
  await client.close();
  clearTimeout(watchdog);
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(`ts_tasks: ${error?.stack ?? error}`);
  process.exit(1);
}
