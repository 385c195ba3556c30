#!/usr/bin/env bash
# The MCP Inspector CLI from npm, a third-party MCP client the tests drive alloop with.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=.cache/npm-inspector
VERSION=2.12.0
if [ -x "$PREFIX/node_modules/.bin/mcp-inspector" ] && grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/@modelcontextprotocol/inspector/package.json" 2>/dev/null; then
  exit 0
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "@modelcontextprotocol/inspector@$VERSION"
