"""A sample MCP client for the walkthrough: list the tools through the gateway as one human, call one allowed and
one denied, and print what the gateway answered.

    python -m gateway.sample_client [--url http://127.0.0.1:8790/mcp] [--user owner]
"""

import argparse
import asyncio

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

CALLS = [
    ("search_docs", {"space": "ENG", "query": "deploy"}),  # inside the grant: space:ENG
    ("search_docs", {"space": "HR", "query": "salaries"}),  # outside it
    ("delete_space", {"space": "ENG"}),  # not mapped to any scope
]


async def run(url: str, user: str) -> None:
    # The header an authenticating proxy would set (the walkthrough's gateway listens on loopback only).
    http = httpx2.AsyncClient(headers={"X-Forwarded-User": user}, timeout=httpx2.Timeout(30.0))
    async with http, Client(streamable_http_client(url, http_client=http), cache=None) as client:
        listed = [tool.name for tool in (await client.list_tools()).tools]
        print(f"tools/list as {user}: {', '.join(listed) or '(none)'}")
        for name, arguments in CALLS:
            try:
                result = await client.call_tool(name, arguments)
                print(f"  allowed  {name}({arguments}) -> {result.content[0].text}")
            except MCPError as error:
                print(f"  denied   {name}({arguments}) -> {error.message} (event {error.data.get('event_id')})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8790/mcp")
    parser.add_argument("--user", default="owner")
    args = parser.parse_args(argv)
    asyncio.run(run(args.url, args.user))


if __name__ == "__main__":
    main()
