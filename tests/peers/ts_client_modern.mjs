// End-to-end driver: the official TypeScript client 2.x (@modelcontextprotocol/client) in
// its 2026-07-28 mode against an mcp-actors server.
//
// Usage: node tests/peers/ts_client_modern.mjs URL [--auto]
//
//   URL      http://127.0.0.1:PORT/mcp
//   --auto   versionNegotiation 'auto' (probe server/discover, fall back to initialize);
//            default: pinned to 2026-07-28
//
// Prints ONE JSON object on stdout with what it observed; any error goes to stderr and
// makes the exit code non-zero.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const url = process.argv[2];
const auto = process.argv.includes('--auto');
const watchdog = setTimeout(() => { console.error('ts_client_modern: timed out'); process.exit(3); }, 30_000);

const client = new Client(
  { name: 'mcp-actors-ts-modern', version: '1.0.0' },
  {
    capabilities: { elicitation: {}, sampling: {} },
    versionNegotiation: auto ? { mode: 'auto' } : { mode: { pin: '2026-07-28' } },
  },
);
const asked = [];
client.setRequestHandler('elicitation/create', async (request) => {
  asked.push(request.params.message);
  return { action: 'accept', content: { name: 'Bea' } };
});
client.setRequestHandler('sampling/createMessage', async (request) => {
  asked.push(request.params.messages[0].content.text);
  return { role: 'assistant', model: 'ts-model', content: { type: 'text', text: 'Paris' } };
});

try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const seen = { protocolVersion: client.getNegotiatedProtocolVersion() };
  const tools = await client.listTools();
  seen.firstTool = tools.tools[0].name;
  seen.toolCount = tools.tools.length;
  const simple = await client.callTool({ name: 'test_simple_text', arguments: {} });
  seen.simple = simple.content[0].text;
  const greeted = await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} });
  seen.greeted = greeted.content[0].text;
  const sampled = await client.callTool({ name: 'test_input_required_result_sampling', arguments: {} });
  seen.sampled = sampled.content[0].text;
  const region = await client.callTool({ name: 'test_header_param', arguments: { region: 'Zürich' } });
  seen.region = region.content[0].text;
  const prompt = await client.getPrompt({ name: 'test_input_required_result_prompt', arguments: {} });
  seen.prompt = prompt.messages[0].content.text;
  seen.asked = asked;
  await client.close();
  clearTimeout(watchdog);
  console.log(JSON.stringify(seen));
} catch (err) {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
}
