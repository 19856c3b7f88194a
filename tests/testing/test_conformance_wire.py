"""The dev agent looks like dev mode on the wire: JSON, headers, paths (issue 9, point 4)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def raw_request(
    agent: DevAgent, method: str, target: str
) -> tuple[int, dict[str, str], bytes]:
    """One request with the exact request target (no client-side path normalisation)."""
    reader, writer = await asyncio.open_connection(agent.host, agent.port)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def test_every_json_answer_is_indented_and_newline_terminated(http: Http) -> None:
    """agent/http.go marshalJSON: ``DevMode`` formats as ``?pretty`` (MarshalIndent + "\\n")."""
    assert (await http.put("/v1/kv/a", b"x")).body == b"true\n"
    assert (await http.get("/v1/catalog/datacenters")).body == b'[\n    "dc1"\n]\n'


async def test_missing_trailing_slash_redirects_like_go_servemux(agent: DevAgent) -> None:
    """net/http (*ServeMux).matchOrRedirect: ``/tree`` redirects to the ``/tree/`` pattern."""
    status, headers, body = await raw_request(agent, "GET", "/v1/kv?recurse")
    assert (status, headers["location"]) == (301, "/v1/kv/?recurse")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body == b'<a href="/v1/kv/?recurse">Moved Permanently</a>.\n\n'
    status, headers, body = await raw_request(agent, "PUT", "/v1/agent/service/maintenance")
    assert (status, headers["location"], body) == (301, "/v1/agent/service/maintenance/", b"")
    # An exact pattern is served as is; a path inside a subtree is not redirected.
    assert (await raw_request(agent, "GET", "/v1/catalog/services"))[0] == 200
    assert (await raw_request(agent, "GET", "/v1/kv/missing"))[0] == 404


async def test_unclean_paths_redirect_to_the_clean_path(agent: DevAgent) -> None:
    """net/http cleanPath + (*ServeMux).Handler: '.', '..' and '//' answer 301 to the clean path."""
    for target, location in (
        ("/v1/kv/a//b", "/v1/kv/a/b"),
        ("/v1/kv/a/../b?raw", "/v1/kv/b?raw"),
        ("/v1/./status/leader", "/v1/status/leader"),
    ):
        status, headers, _ = await raw_request(agent, "GET", target)
        assert (status, headers["location"]) == (301, location), target


async def test_non_printable_paths_are_a_bare_400(agent: DevAgent) -> None:
    """go-cleanhttp PrintablePathCheckHandler wraps the mux: 400, no body, nothing stored."""
    for target in ("/v1/kv/a%00b", "/v1/kv/a%0Ab", "/v1/kv/%7F"):
        status, _, body = await raw_request(agent, "PUT", target)
        assert (status, body) == (400, b""), target
    assert (await raw_request(agent, "GET", "/v1/kv/?keys"))[2] == b"[]\n"


async def test_default_acl_policy_header_on_wrapped_answers() -> None:
    """agent/http.go wrap: setACLDefaultPolicy on every wrapped answer, errors included."""
    async with (
        DevAgent(acl_default_policy="deny", management_token="root") as a,
        aiohttp.ClientSession() as s,
        s.get(a.url + "/v1/kv/x") as r,
    ):
        assert (r.status, r.headers["X-Consul-Default-Acl-Policy"]) == (403, "deny")


async def test_translate_addresses_header_only_when_configured() -> None:
    """agent/http.go setTranslateAddr: only with translate_wan_addrs."""
    for enabled in (False, True):
        async with (
            DevAgent(translate_wan_addrs=enabled) as a,
            aiohttp.ClientSession() as s,
            s.get(a.url + "/v1/status/leader") as r,
        ):
            assert r.headers.get("X-Consul-Translate-Addresses") == ("true" if enabled else None)


async def test_cached_reads_say_miss_then_hit_with_age(http: Http) -> None:
    """agent/http.go setCacheMeta: X-Cache MISS, then HIT with Age (agent/cache)."""
    first = await http.get("/v1/catalog/services?cached")
    assert (first.headers["X-Cache"], "Age" in first.headers) == ("MISS", False)
    second = await http.get("/v1/catalog/services?cached")
    assert (second.headers["X-Cache"], second.headers["Age"]) == ("HIT", "0")
    revalidate = await http.get(
        "/v1/catalog/services?cached", headers={"Cache-Control": "must-revalidate"}
    )
    assert revalidate.headers["X-Cache"] == "MISS"
    assert "X-Cache" not in (await http.get("/v1/catalog/services")).headers
    assert "X-Cache" not in (await http.get("/v1/catalog/nodes?cached")).headers
    assert (await http.get("/v1/health/service/consul?cached")).headers["X-Cache"] == "MISS"


async def test_go_maps_are_written_with_sorted_keys(http: Http) -> None:
    """encoding/json (mapEncoder).encode sorts map keys; struct fields keep their order."""
    for node, name in (("n1", "web"), ("n2", "api")):
        body = {"Node": node, "Address": "10.0.0.1", "NodeMeta": {"z": "1", "a": "2"}}
        body["Service"] = {"Service": name, "Meta": {"zz": "1", "aa": "2"}}
        assert (await http.put("/v1/catalog/register", json.dumps(body))).status == 200
    services = (await http.get("/v1/catalog/services")).json()
    assert list(services) == sorted(services)
    node = (await http.get("/v1/catalog/node/n1")).json()["Node"]
    assert list(node["Meta"]) == ["a", "z"]
    instance = (await http.get("/v1/catalog/service/web")).json()[0]
    assert list(instance["ServiceMeta"]) == ["aa", "zz"]
    assert list(instance)[:3] == ["ID", "Node", "Address"]


async def test_mux_answers_do_not_change_when_a_path_repeats(agent: DevAgent) -> None:
    """The dispatcher remembers routed paths: redirects, 400s and 404s stay as they were."""
    for _ in range(2):
        status, headers, _ = await raw_request(agent, "GET", "/v1/kv?recurse")
        assert (status, headers["location"]) == (301, "/v1/kv/?recurse")
        assert (await raw_request(agent, "GET", "/v1/kv/a//b"))[0] == 301
        assert (await raw_request(agent, "PUT", "/v1/kv/a%00b"))[:3:2] == (400, b"")
        assert (await raw_request(agent, "GET", "/v1/nope"))[0] == 404
        assert (await raw_request(agent, "DELETE", "/v1/status/leader"))[0] == 405
    assert (await raw_request(agent, "GET", "/v1/kv/fresh"))[0] == 404
    assert (await raw_request(agent, "PUT", "/v1/kv/fresh"))[0] == 200
    assert (await raw_request(agent, "GET", "/v1/kv/fresh"))[0] == 200


def test_router_serves_the_longest_prefix_and_exact_paths_first() -> None:
    """Consul's mux: an exact pattern wins, then the longest subtree; the rest is the suffix."""
    from consul_streams.testing.server.dispatch import Router

    async def handler(call: object) -> aiohttp.web.StreamResponse:
        raise AssertionError("not called")

    router = Router()
    router.add("/v1/a/", ("GET",), handler)
    router.add("/v1/a/b/", ("GET",), handler)
    router.add("/v1/a/b/exact", ("PUT",), handler)
    found = {
        path: (m[0].path, m[1]) if (m := router.match(path)) else None
        for path in ("/v1/a/b/c/d", "/v1/a/bc", "/v1/a/", "/v1/a/b/exact", "/v1/a", "/v2/a/x")
    }
    assert found == {
        "/v1/a/b/c/d": ("/v1/a/b/", "c/d"),
        "/v1/a/bc": ("/v1/a/", "bc"),
        "/v1/a/": ("/v1/a/", ""),
        "/v1/a/b/exact": ("/v1/a/b/exact", ""),
        "/v1/a": None,
        "/v2/a/x": None,
    }
    assert router.is_prefix("/v1/a/b/")
    assert not router.is_prefix("/v1/a/b")
    assert router.is_exact("/v1/a/b/exact")
    assert router.is_exact("/v1/a/")
    assert not router.is_exact("/v1/a/b/c")
