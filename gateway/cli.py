"""`nhi-mcp-gateway --config FILE`: check the config, then serve MCP at http://host:port/mcp."""

import argparse
import logging
import sys

from .config import ConfigError, load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="nhi-mcp-gateway", description="MCP gateway that asks NHI Portal before every tool call."
    )
    parser.add_argument("--config", required=True, help="the gateway's TOML config")
    parser.add_argument("--check", action="store_true", help="check the config and exit")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as error:
        print(f"nhi-mcp-gateway: config error: {error}", file=sys.stderr)
        return 2
    if args.check:
        print(f"config ok: {len(config.upstreams)} upstream(s), listening on {config.host}:{config.port}")
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import uvicorn

    from .server import build_app

    uvicorn.run(build_app(config), host=config.host, port=config.port, log_level=args.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
