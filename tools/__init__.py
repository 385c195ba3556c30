"""alloop.tools: the tools (files here) over the domain packages (folders here); no MCP, Typer or rich."""
