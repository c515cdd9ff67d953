"""Blocking outbound HTTP for action plugins, over ``wasi:http/outgoing-handler``.

The host lets a request through only when its host (and port) was granted to the plugin
and the name resolves to an address the operator allows; otherwise :class:`HttpError` is
raised with ``retryable = False``. The run's wall-clock timeout applies while a request
is in flight. ::

    from sundial import http

    r = http.get("https://api.example.com/status", timeout=5)
    if r.status != 200:
        raise Retryable(f"status {r.status}")
    data = r.json()
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

try:  # present only inside a build of the action world (see the package's doc)
    from componentize_py_types import Err
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as t
except ImportError:
    outgoing_handler = streams = t = None  # type: ignore[assignment]

    class Err(Exception):  # type: ignore[no-redef]
        value: Any = None

__all__ = ["Response", "HttpError", "request", "get", "post", "put", "delete", "MAX_RESPONSE_BYTES"]

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest response body read before failing, unless ``max_response_bytes`` says otherwise."""

Headers = Union[Mapping[str, str], Sequence[tuple[str, str]], None]


class HttpError(Exception):
    """Why a request failed. ``retryable`` is false when it never can succeed: the host is
    not granted, the address is refused by policy, or the request itself is invalid."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Response:
    """A received response: status, headers in order (values decoded as UTF-8), body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive), if any."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def _describe(code: Any) -> HttpError:
    if isinstance(code, t.ErrorCode_HttpRequestDenied):
        return HttpError("request denied: host not granted to this plugin", False)
    if isinstance(code, t.ErrorCode_DestinationIpProhibited):
        return HttpError(
            "request denied: host resolves to a prohibited (private, loopback, link-local or reserved) address",
            False,
        )
    name = type(code).__name__.removeprefix("ErrorCode_")
    if isinstance(code, (t.ErrorCode_HttpRequestUriInvalid, t.ErrorCode_HttpRequestMethodInvalid)):
        return HttpError(name, False)
    value = getattr(code, "value", None)
    return HttpError(f"{name}: {value}" if value is not None else name, True)


_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


def request(
    method: str,
    url: str,
    *,
    headers: Headers = None,
    body: Union[bytes, str, None] = None,
    json: Any = None,
    timeout: Optional[float] = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> Response:
    """Send a request and read the whole response. ``json`` (any JSON value) sets the
    body and ``content-type: application/json``; ``timeout`` (seconds) bounds connecting
    and the first response byte."""
    if outgoing_handler is None:
        raise HttpError("sundial.http works only inside an action component", False)
    if url.startswith("https://"):
        scheme, rest = t.Scheme_Https(), url[8:]
    elif url.startswith("http://"):
        scheme, rest = t.Scheme_Http(), url[7:]
    else:
        raise HttpError(f"url {url!r} must start with http:// or https://", False)
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:] or "/"
    if not authority:
        raise HttpError(f"url {url!r} has no host", False)

    pairs: list[tuple[str, str]] = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"))
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("content-type", "application/json"))
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")

    try:
        fields = t.Fields.from_list([(k, v.encode("utf-8")) for k, v in pairs])
    except Err as e:
        raise HttpError(f"invalid header: {type(e.value).__name__}", False) from None
    upper = method.upper()
    verb = getattr(t, "Method_" + upper.capitalize())() if upper in _METHODS else t.Method_Other(upper)
    req = t.OutgoingRequest(fields)
    try:
        req.set_method(verb)
        req.set_scheme(scheme)
        req.set_authority(authority)
        req.set_path_with_query(path)
    except Err:
        raise HttpError(f"invalid request line for {url!r}", False) from None
    options = t.RequestOptions()
    if timeout is not None:
        ns = int(timeout * 1_000_000_000)
        try:
            options.set_connect_timeout(ns)
            options.set_first_byte_timeout(ns)
        except Err:
            raise HttpError(f"timeout {timeout!r} is not accepted", False) from None

    out_body = req.body()
    try:
        pending = outgoing_handler.handle(req, options)
    except Err as e:
        raise _describe(e.value) from None
    failed = None
    with out_body.write() as stream:
        for i in range(0, len(data), 4096):
            try:
                stream.blocking_write_and_flush(data[i : i + 4096])
            except Err as e:
                failed = HttpError(f"writing request body: {e.value}", True)
                break
    if failed is not None:
        # The host closes the body when the request failed (refused, no connection):
        # the reason is the response's, once it is there. The body is dropped first,
        # so the host does not wait for its end.
        out_body.__exit__(None, None, None)
        with pending:
            with pending.subscribe() as ready:
                ready.block()
            got = pending.get()
        if got is not None and not isinstance(got, Err) and isinstance(got.value, Err):
            raise _describe(got.value.value) from None
        raise failed
    try:
        t.OutgoingBody.finish(out_body, None)
    except Err as e:
        raise _describe(e.value) from None

    with pending:
        with pending.subscribe() as ready:
            ready.block()
        got = pending.get()
    # option<result<result<incoming-response, error-code>>>, as Ok/Err values.
    if got is None:
        raise HttpError("response not ready", True)
    if isinstance(got, Err):
        raise HttpError("response already taken", False)
    inner = got.value
    if isinstance(inner, Err):
        raise _describe(inner.value)
    response = inner.value
    with response:
        status = response.status()
        with response.headers() as h:
            resp_headers = [(k, v.decode("utf-8", errors="replace")) for k, v in h.entries()]
        incoming = response.consume()
        chunks: list[bytes] = []
        size = 0
        with incoming.stream() as s:
            while True:
                try:
                    chunk = s.blocking_read(64 * 1024)
                except Err as e:
                    if isinstance(e.value, streams.StreamError_Closed):
                        break
                    raise HttpError(f"reading response body: {e.value}", True) from None
                size += len(chunk)
                if size > max_response_bytes:
                    raise HttpError(f"response body larger than {max_response_bytes} bytes", False)
                chunks.append(chunk)
        t.IncomingBody.finish(incoming)
    return Response(status, resp_headers, b"".join(chunks))


def get(url: str, **kw: Any) -> Response:
    """``GET url``; keyword arguments as for :func:`request`."""
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> Response:
    """``POST url``; keyword arguments as for :func:`request`."""
    return request("POST", url, **kw)


def put(url: str, **kw: Any) -> Response:
    """``PUT url``; keyword arguments as for :func:`request`."""
    return request("PUT", url, **kw)


def delete(url: str, **kw: Any) -> Response:
    """``DELETE url``; keyword arguments as for :func:`request`."""
    return request("DELETE", url, **kw)
