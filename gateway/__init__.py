"""The MCP gateway: asks the portal before every tool call (runs apart from the portal, over its HTTP API)."""
