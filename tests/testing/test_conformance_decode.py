"""Request bodies are decoded the Go way, for every endpoint with a body (issue 9, point 1)."""

from __future__ import annotations

import json

import pytest

from consul_streams.testing.server.bodies import (
    CATALOG_REGISTER,
    CHECK_DEFINITION,
    SERVICE_DEFINITION,
    TXN_OPS,
)
from consul_streams.testing.server.decode import (
    BodyError,
    decode,
    go_duration_string,
    parse_go_json,
)

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def put(http: Http, path: str, body: object) -> tuple[int, str]:
    raw = body if isinstance(body, str) else json.dumps(body)
    r = await http.put(path, raw)
    return r.status, r.text


# -- the decoder ----------------------------------------------------------------------------


def test_keys_match_fields_case_insensitively_exact_first() -> None:
    """encoding/json (*decodeState).object: exact field name first, then a case-fold match."""
    assert decode(b'{"name": "web", "PORT": 80, "tAgS": ["a"]}', SERVICE_DEFINITION) == {
        "Name": "web",
        "Port": 80,
        "Tags": ["a"],
    }


def test_snake_case_aliases_fill_their_fields() -> None:
    """agent/structs ServiceDefinition.UnmarshalJSON, CheckType.UnmarshalJSON aliases."""
    body = {
        "name": "web",
        "enable_tag_override": True,
        "tagged_addresses": {"lan": {"address": "10.0.0.1", "port": 80}},
        "check": {"args": ["/bin/true"], "interval": "10s", "tls_skip_verify": True},
    }
    out = decode(json.dumps(body).encode(), SERVICE_DEFINITION)
    assert out["EnableTagOverride"] is True
    assert out["TaggedAddresses"] == {"lan": {"Address": "10.0.0.1", "Port": 80}}
    assert out["Check"] == {"ScriptArgs": ["/bin/true"], "Interval": "10s", "TLSSkipVerify": True}


def test_the_field_wins_over_its_alias() -> None:
    """CheckDefinition.UnmarshalJSON: ``if t.ServiceID == "" { t.ServiceID = aux.... }``."""
    out = decode(b'{"Name": "c", "ServiceID": "a", "service_id": "b"}', CHECK_DEFINITION)
    assert out["ServiceID"] == "a"
    out = decode(b'{"Name": "c", "service_id": "b"}', CHECK_DEFINITION)
    assert out["ServiceID"] == "b"


def test_null_leaves_a_field_unset() -> None:
    """encoding/json literalStore: null into a non-pointer is a no-op."""
    assert decode(b'{"Name": "web", "Port": null, "Tags": null}', SERVICE_DEFINITION) == {
        "Name": "web"
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "EOF"),
        (b"   ", "EOF"),
        (b'{"Name": "web",', "unexpected EOF"),
        (b'{"Name": "web"', "unexpected EOF"),
        (b"{'Name': 1}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"Name" "web"}', "invalid character '\"' after object key"),
        (b'{"Name": "a" "Port": 1}', "invalid character '\"' after object key:value pair"),
        (b'{"Tags": ["a" "b"]}', "invalid character '\"' after array element"),
        (b"?", "invalid character '?' looking for beginning of value"),
    ],
)
def test_syntax_errors_read_as_go_writes_them(raw: bytes, error: str) -> None:
    """encoding/json scanner errors (and io.EOF / io.ErrUnexpectedEOF from Decoder.Decode)."""
    with pytest.raises(BodyError) as info:
        parse_go_json(raw)
    assert str(info.value) == error


def test_only_the_first_value_is_read() -> None:
    """json.Decoder.Decode reads one value; what follows it is never looked at."""
    assert parse_go_json(b'{"Name": "web"} trailing garbage') == {"Name": "web"}


@pytest.mark.parametrize(
    ("spec", "raw", "error"),
    [
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "Port": "80"}',
            "json: cannot unmarshal string into Go struct field .Port of type int",
        ),
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "Port": 1.5}',
            "json: cannot unmarshal number 1.5 into Go struct field .Port of type int",
        ),
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "Tags": "a"}',
            "json: cannot unmarshal string into Go struct field .Tags of type []string",
        ),
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "EnableTagOverride": "yes"}',
            "json: cannot unmarshal string into Go struct field .EnableTagOverride of type bool",
        ),
        (
            CATALOG_REGISTER,
            b'{"Node": "n", "Service": {"Port": "x"}}',
            "json: cannot unmarshal string into Go struct field NodeService.Service.Port "
            "of type int",
        ),
        (
            CATALOG_REGISTER,
            b'{"Node": ["n"]}',
            "json: cannot unmarshal array into Go struct field RegisterRequest.Node of type string",
        ),
        (
            TXN_OPS,
            b'[{"KV": {"Verb": "set", "Key": "k", "Flags": -1}}]',
            "json: cannot unmarshal number -1 into Go struct field KVTxnOp.KV.Flags of type uint64",
        ),
        (TXN_OPS, b'[{"KV": {"Value": "a$=="}}]', "illegal base64 data at input byte 1"),
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "Check": {"TTL": "soon"}}',
            'time: invalid duration "soon"',
        ),
        (
            SERVICE_DEFINITION,
            b'{"Name": "web", "Check": {"TTL": "10"}}',
            'time: missing unit in duration "10"',
        ),
        (
            CHECK_DEFINITION,
            b'{"Name": "c", "Interval": "10x"}',
            'time: unknown unit "x" in duration "10x"',
        ),
        (CHECK_DEFINITION, b'{"Name": "c", "Timeout": ""}', 'time: invalid duration ""'),
    ],
)
def test_type_errors_name_the_struct_field_and_go_type(
    spec: object, raw: bytes, error: str
) -> None:
    """encoding/json UnmarshalTypeError.Error and (*decodeState).addErrorContext."""
    with pytest.raises(BodyError) as info:
        decode(raw, spec)  # type: ignore[arg-type]
    assert str(info.value) == error


def test_unknown_fields_are_refused() -> None:
    """lib.DecodeJSON: decoder.DisallowUnknownFields() (Consul >= 1.7 'stricter JSON decoding')."""
    with pytest.raises(BodyError, match=r'^json: unknown field "Service"$'):
        decode(b'{"Name": "web", "Service": "web"}', SERVICE_DEFINITION)
    with pytest.raises(BodyError, match=r'^json: unknown field "WriteRequest"$'):
        decode(b'{"Node": "n", "WriteRequest": {}}', CATALOG_REGISTER)


# -- every endpoint with a body, over HTTP ----------------------------------------------------


async def test_agent_service_register_accepts_lowercase_keys(http: Http) -> None:
    """agent/agent_endpoint.go AgentRegisterService: decodeBody into structs.ServiceDefinition."""
    status, _ = await put(http, "/v1/agent/service/register", {"name": "web", "port": 80})
    assert status == 200
    services = (await http.get("/v1/agent/services")).json()
    assert (services["web"]["Service"], services["web"]["Port"]) == ("web", 80)


async def test_agent_check_register_takes_args_and_service_id_aliases(http: Http) -> None:
    """agent/agent_endpoint.go AgentRegisterCheck: structs.CheckDefinition.UnmarshalJSON."""
    await put(http, "/v1/agent/service/register", {"Name": "web"})
    body = {"name": "alive", "service_id": "web", "ttl": "30s", "status": "passing"}
    assert (await put(http, "/v1/agent/check/register", body))[0] == 200
    check = (await http.get("/v1/agent/checks")).json()["alive"]
    assert (check["ServiceID"], check["Status"]) == ("web", "passing")


async def test_catalog_register_and_deregister_lowercase(http: Http) -> None:
    """agent/catalog_endpoint.go CatalogRegister / CatalogDeregister: decodeBody."""
    body = {"node": "n1", "address": "10.0.0.1", "service": {"service": "db", "port": 5432}}
    assert await put(http, "/v1/catalog/register", body) == (200, "true\n")
    assert (await http.get("/v1/catalog/service/db")).json()[0]["ServicePort"] == 5432
    assert await put(http, "/v1/catalog/deregister", {"node": "n1"}) == (200, "true\n")
    assert (await http.get("/v1/catalog/service/db")).json() == []


async def test_session_create_lowercase(http: Http) -> None:
    """agent/session_endpoint.go SessionCreate: decodeBody into structs.Session."""
    r = await http.put("/v1/session/create", json.dumps({"name": "s", "behavior": "delete"}))
    info = (await http.get("/v1/session/info/" + r.json()["ID"])).json()[0]
    assert (info["Name"], info["Behavior"]) == ("s", "delete")


async def test_txn_lowercase_ops(http: Http) -> None:
    """agent/txn_endpoint.go Txn: decodeBody into api.TxnOps; Value is base64 []byte."""
    ops = [{"kv": {"verb": "set", "key": "t", "value": "dg=="}}]
    assert (await put(http, "/v1/txn", ops))[0] == 200
    assert (await http.get("/v1/kv/t?raw")).body == b"v"


async def test_check_update_lowercase(http: Http) -> None:
    """agent/agent_endpoint.go AgentCheckUpdate: decodeBody into checkUpdate."""
    await put(http, "/v1/agent/check/register", {"Name": "c", "TTL": "30s"})
    assert (await put(http, "/v1/agent/check/update/c", {"status": "warning", "output": "o"}))[
        0
    ] == 200
    check = (await http.get("/v1/agent/checks")).json()["c"]
    assert (check["Status"], check["Output"]) == ("warning", "o")


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        ("/v1/agent/service/register", "", 400, "Request decode failed: EOF"),
        (
            "/v1/agent/service/register",
            {"Name": "web", "Port": "80"},
            400,
            "Request decode failed: json: cannot unmarshal string into Go struct field .Port "
            "of type int",
        ),
        (
            "/v1/agent/service/register",
            {"Name": "web", "Service": "web"},
            400,
            'Request decode failed: json: unknown field "Service"',
        ),
        ("/v1/agent/check/register", "{", 400, "Request decode failed: unexpected EOF"),
        (
            "/v1/agent/check/update/c",
            {"Status": "passing", "Note": "x"},
            400,
            'Request decode failed: json: unknown field "Note"',
        ),
        (
            "/v1/catalog/register",
            {"Node": "n", "Address": "a", "Service": {"Service": "s", "Port": "1"}},
            400,
            "Request decode failed: json: cannot unmarshal string into Go struct field "
            "NodeService.Service.Port of type int",
        ),
        ("/v1/catalog/deregister", "[1]", 400, "Request decode failed: json: cannot unmarshal"),
        (
            "/v1/session/create",
            {"Name": 5},
            400,
            "Request decode failed: json: cannot unmarshal number into Go struct field .Name",
        ),
        ("/v1/txn", "[{]", 400, "Failed to parse body: invalid character ']'"),
    ],
)
async def test_bad_bodies_get_consuls_status_and_text_and_store_nothing(
    http: Http, path: str, body: object, status: int, text: str
) -> None:
    """agent/http.go decodeBody callers: HTTPError{400, "Request decode failed: " + err}."""
    before = (await http.get("/v1/catalog/services")).json()
    got = await put(http, path, body)
    assert got[0] == status
    assert got[1].startswith(text), got[1]
    assert (await http.get("/v1/catalog/services")).json() == before
    assert (await http.get("/v1/agent/services")).json() == {}


def test_go_duration_string() -> None:
    """time.Duration.String, which CheckDefinition.HealthCheck uses for Interval/Timeout."""
    cases = {0: "0s", 90 * 10**9: "1m30s", 60 * 10**9: "1m0s", 1_500_000_000: "1.5s"}
    cases.update({500_000_000: "500ms", 1500: "1.5\u00b5s", 999: "999ns", -(10**9): "-1s"})
    for ns, text in cases.items():
        assert go_duration_string(ns) == text


async def test_check_durations_as_go_prints_them(http: Http) -> None:
    """agent/structs CheckDefinition.UnmarshalJSON takes ns or a string; HealthCheck prints."""
    body = {
        "name": "web",
        "check": {"http": "http://x", "interval": 90 * 10**9, "timeout": "1500ms"},
    }
    assert (await put(http, "/v1/agent/service/register", body))[0] == 200
    check = (await http.get("/v1/agent/checks")).json()["service:web"]
    assert (check["Interval"], check["Timeout"]) == ("1m30s", "1.5s")
