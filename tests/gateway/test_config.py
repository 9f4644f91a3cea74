"""A config error stops the gateway at start with a message naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load, parse
from gateway.resources import Unresolved, resource_for

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NHI_GATEWAY_TOKEN": "t0ken"}


def _config(**overrides) -> dict:
    raw = {
        "portal": {"url": "http://127.0.0.1:8000", "token_env": "NHI_GATEWAY_TOKEN"},
        "listen": {"host": "127.0.0.1", "port": 8790},
        "human": {"mode": "header"},
        "upstream": [
            {
                "name": "docs",
                "tool": "docs-mcp",
                "identity": "svc-docs-reader",
                "url": "http://127.0.0.1:9001/mcp",
                "map": [{"tool": "search_docs", "scope": "confluence:content:read", "resource": "space:{space}"}],
            }
        ],
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            target = raw[section][0] if section == "upstream" else raw[section]
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        else:
            raw[section] = value
    return raw


def test_the_example_config_is_valid():
    config = load(ROOT / "gateway/examples/docs-mcp.toml", ENV)
    assert config.portal.timeout == 2 and config.upstreams[0].mapping("search_docs").scope == "confluence:content:read"
    assert config.upstreams[0].mapping("delete_space") is None and not config.prefixed


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"portal__url": "ftp://x"}, "portal.url"),
        ({"portal__token_env": "NO_SUCH_VARIABLE"}, "portal.token_env"),
        ({"portal__timeout_ms": "2s"}, "portal.timeout_ms"),
        ({"portal__timout_ms": 10}, "portal.timout_ms"),
        ({"listen__port": 70000}, "listen.port"),
        ({"listen__host": "0.0.0.0"}, "human.mode"),  # header mode off loopback without a trusted proxy
        ({"human__mode": "cookie"}, "human.mode"),
        ({"human": {"mode": "jwt", "jwks": "file:///no/such.json", "issuer": "i", "audience": "a"}}, "human.jwks"),
        ({"human": {"mode": "jwt", "jwks": "file:///etc/hostname", "audience": "a"}}, "human.issuer"),
        ({"upstream": []}, "upstream"),
        ({"upstream__command": ["python"]}, "upstream[0].url"),
        ({"upstream__url": None}, "upstream[0].url"),
        ({"upstream__name": "has space"}, "upstream[0].name"),
        ({"upstream__headers_env": {"Authorization": "UNSET_VAR"}}, "upstream[0].headers_env"),
        ({"upstream__map": [{"tool": "a", "scope": "s", "resource": "x:{a"}]}, "upstream[0].map[0].resource"),
        ({"upstream__map": [{"tool": "a"}]}, "upstream[0].map[0].scope"),
        ({"usage": {"flush_ms": 0}}, "usage.flush_ms"),
        ({"usage": {"max_batch": 1001}}, "usage.max_batch"),  # more than the portal takes in one POST
        ({"usage": {"flush": 100}}, "usage.flush"),
    ],
)
def test_each_error_names_its_key(overrides, key):
    with pytest.raises(ConfigError) as raised:
        parse(_config(**overrides), ENV)
    assert raised.value.key == key


def test_usage_batching_is_optional_and_bounded():
    config = parse(_config(), ENV)
    assert (config.usage_flush_ms, config.usage_max_batch) == (1000, 500)
    config = parse(_config(usage={"flush_ms": 250, "max_batch": 1000}), ENV)
    assert (config.usage_flush_ms, config.usage_max_batch) == (250, 1000)


def test_header_mode_off_loopback_needs_a_trusted_proxy():
    config = parse(_config(listen__host="0.0.0.0", human={"mode": "header", "trusted_proxy": True}), ENV)
    assert config.human.trusted_proxy


def test_the_console_script_refuses_a_bad_config_and_names_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[portal]\nurl = "http://127.0.0.1:8000"\n[listen]\nport = 1\n[human]\nmode = "header"\n')
    script = Path(sys.executable).with_name("nhi-mcp-gateway")
    done = subprocess.run([script, "--config", path], capture_output=True, text=True, env={"NHI_GATEWAY_TOKEN": "x"})
    assert done.returncode == 2 and "config error: upstream:" in done.stderr


def test_resource_templates_take_the_calls_arguments():
    mapping = parse(_config(), ENV).upstreams[0].maps[0]
    assert resource_for(mapping, {"space": "ENG", "query": "x"}) == "space:ENG"
    assert resource_for(mapping, {"space": 7}) == "space:7"
    for missing in ({}, {"space": ""}, {"space": ["ENG"]}, {"space": True}, None):
        with pytest.raises(Unresolved):
            resource_for(mapping, missing)
