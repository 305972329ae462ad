// bench (k): the echo tool served by Cloudflare's McpAgent, a Durable Object per session.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { McpAgent } from "agents/mcp";
import { z } from "zod";

export class EchoAgent extends McpAgent {
  server = new McpServer({ name: "bench-echo", version: "1.0.0" });

  async init() {
    this.server.registerTool(
      "echo",
      { description: "Return the text unchanged", inputSchema: { text: z.string() } },
      async ({ text }) => ({ content: [{ type: "text", text }] })
    );
  }
}

export default EchoAgent.serve("/mcp");
