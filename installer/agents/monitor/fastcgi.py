"""A minimal FastCGI client: enough to GET an FPM pool's ping path over its socket, without
Nginx in the way and without forking (cgi-fcgi would)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

_VERSION = 1
_BEGIN, _END, _PARAMS, _STDIN, _STDOUT, _STDERR = 1, 3, 4, 5, 6, 7
_RESPONDER = 1
_HEADER = struct.Struct(">BBHHBx")


def _record(kind: int, body: bytes, request: int = 1) -> bytes:
    padding = -len(body) % 8
    return _HEADER.pack(_VERSION, kind, request, len(body), padding) + body + b"\0" * padding


def _length(n: int) -> bytes:
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def encode_params(params: Mapping[str, str]) -> bytes:
    out = b""
    for name, value in params.items():
        key, val = name.encode(), value.encode()
        out += _length(len(key)) + _length(len(val)) + key + val
    return out


def request_bytes(params: Mapping[str, str]) -> bytes:
    body = encode_params(params)
    return (_record(_BEGIN, struct.pack(">HB5x", _RESPONDER, 0))
            + (_record(_PARAMS, body) if body else b"") + _record(_PARAMS, b"")
            + _record(_STDIN, b""))


def parse_response(data: bytes) -> tuple[bytes, bytes, bool]:
    """(stdout, stderr, complete) of the records in `data`."""
    out, err, done = b"", b"", False
    offset = 0
    while offset + _HEADER.size <= len(data):
        _, kind, _, length, padding = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if start + length + padding > len(data):
            break
        content = data[start:start + length]
        if kind == _STDOUT:
            out += content
        elif kind == _STDERR:
            err += content
        elif kind == _END:
            done = True
        offset = start + length + padding
    return out, err, done


def get(address: str, path: str, timeout: float) -> tuple[int, str]:
    """GET `path` from the FastCGI server at `address` (a unix socket path, or host:port).
    Returns (HTTP status, body); raises OSError when it cannot be reached or answer."""
    if address.startswith("/"):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: str | tuple[str, int] = address
    else:
        host, _, port = address.rpartition(":")
        conn = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
        target = (host.strip("[]") or "127.0.0.1", int(port))
    with conn:
        conn.settimeout(timeout)
        conn.connect(target)
        conn.sendall(request_bytes({
            "REQUEST_METHOD": "GET", "SCRIPT_NAME": path, "SCRIPT_FILENAME": path,
            "REQUEST_URI": path, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        }))
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if parse_response(data)[2]:
                break
    out, _, done = parse_response(data)
    if not done and not out:
        raise OSError("no FastCGI answer")
    head, _, body = out.partition(b"\r\n\r\n")
    status = 200
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
    return status, body.decode("utf-8", "replace")
