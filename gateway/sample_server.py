"""A sample upstream MCP server for the walkthrough, the tests and the benchmark: a small documentation store.

It holds no real data and counts the calls that reach it (GET /calls), so a test can show that a denied call never
arrived. `python -m gateway.sample_server --port 9001` (streamable HTTP at /mcp) or `--stdio`.
"""

import argparse
from collections import Counter

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

PAGES = {
    "ENG": {"deploys": "Deploys go out from main after review.", "oncall": "The on-call rota is in the runbook."},
    "HR": {"salaries": "Salary bands are confidential."},
}
CALLS: Counter = Counter()

server = MCPServer("sample-docs", instructions="A sample documentation store (NHI Portal walkthrough).")


@server.tool()
def search_docs(space: str, query: str) -> str:
    """Search the pages of one space."""
    CALLS["search_docs"] += 1
    hits = [name for name, text in PAGES.get(space, {}).items() if query.lower() in (name + " " + text).lower()]
    return ", ".join(hits) or "no pages match"


@server.tool()
def read_page(space: str, page: str) -> str:
    """Read one page."""
    CALLS["read_page"] += 1
    return PAGES.get(space, {}).get(page, "no such page")


@server.tool()
def delete_space(space: str) -> str:
    """Delete a whole space (the walkthrough leaves this tool unmapped: the gateway denies it)."""
    CALLS["delete_space"] += 1
    return f"deleted {space}"


@server.custom_route("/calls", methods=["GET"])
async def calls(request: Request) -> JSONResponse:
    return JSONResponse(dict(CALLS))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--stdio", action="store_true", help="serve over stdin/stdout instead of HTTP")
    args = parser.parse_args(argv)
    if args.stdio:
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port, stateless_http=True, json_response=True)


if __name__ == "__main__":
    main()
