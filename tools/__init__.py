"""alloop.tools: one module per tool, plus the domain modules they share (no MCP here)."""
