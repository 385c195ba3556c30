"""alloop: assisted active learning as an MCP tool server, an agent skill and a CLI."""

__version__ = "0.1.0"
