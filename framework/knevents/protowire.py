"""The protobuf wire format for the few flat messages of Argo's gRPC contracts, without generated code.

Argo's ``generic.proto`` (``EventSource{name, config}``, ``Event{name, payload}``)
and ``trigger.proto`` (``{resource}``, ``{response}``, ``{success, message}``)
only hold strings, bytes and bools. Encoding those by hand keeps ``protobuf``
and generated ``_pb2`` modules (which pin a protobuf runtime version) out of
the start path; the tests check this codec against messages compiled from the
real ``.proto`` files by grpcio-tools. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ProtoError", "decode", "encode"]

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(fields: Mapping[int, str | bytes | bool | None]) -> bytes:
    """A message from ``{field number: value}``; proto3 defaults (empty, False, None) are left out."""
    out = bytearray()
    for number, value in sorted(fields.items()):
        if value is None or value == b"" or value == "" or value is False:
            continue
        if isinstance(value, bool):
            out += _varint(number << 3 | _VARINT) + _varint(1)
            continue
        raw = value.encode() if isinstance(value, str) else bytes(value)
        out += _varint(number << 3 | _BYTES) + _varint(len(raw)) + raw
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtoError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def decode(data: bytes) -> dict[int, bytes | int]:
    """``{field number: raw bytes (length-delimited) or int (varint)}``; the last occurrence wins, as protobuf."""
    fields: dict[int, bytes | int] = {}
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            fields[number], at = _read_varint(data, at)
        elif wire == _BYTES:
            length, at = _read_varint(data, at)
            if at + length > len(data):
                raise ProtoError("truncated length-delimited field")
            fields[number] = data[at : at + length]
            at += length
        elif wire in (_FIXED64, _FIXED32):  # unknown fields of a newer schema: skip
            at += 8 if wire == _FIXED64 else 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")
    if at != len(data):
        raise ProtoError("truncated fixed-width field")
    return fields
