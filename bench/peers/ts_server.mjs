// The TypeScript SDK (@modelcontextprotocol/sdk) serving the same echo tool on node:http,
// one StreamableHTTPServerTransport per session, as its examples do.
// usage: node ts_server.mjs PORT [json]
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const port = Number(process.argv[2]);
const json = process.argv[3] === 'json';
const transports = new Map();

function newServer() {
  const server = new McpServer({ name: 'ts-sdk-bench', version: '0.0.0' });
  server.registerTool('echo', { description: 'Return the text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    if (!body || body.method !== 'initialize') { res.writeHead(sid ? 404 : 400).end(); return; }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: json,
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
}).listen(port, '127.0.0.1');
