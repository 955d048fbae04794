"""Sandboxed Lua for ``filters.script`` and ``transform.script``.

Argo runs these scripts with gopher-lua and a global ``event`` table built
from the event's JSON object. Here they run in ``lupa`` with a fresh
environment per call that holds only pure libraries (``string``, ``table``,
``math``, ``utf8`` and safe base functions): no ``os``, ``io``, ``require``,
``load`` of files, ``debug`` or ``collectgarbage``. An instruction budget stops
runaway loops. Scripts compile once; a syntax error is reported at load time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import lupa

from knevents import errors

__all__ = ["LuaError", "LuaScript"]

_INSTRUCTION_LIMIT = 10_000_000

_BOOTSTRAP = """
local load, sethook, setmetatable, error, pcall = load, debug.sethook, setmetatable, error, pcall
local safe = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = table.unpack,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset, xpcall = xpcall,
  string = string, table = table, math = math, utf8 = utf8,
}
local function compile(source, name)
  local env = {}
  local chunk, err = load(source, name, "t", env)
  if chunk == nil then return false, err end
  return true, ""
end
local function run(source, name, event, limit)
  local env = setmetatable({event = event}, {__index = safe})
  local chunk, err = load(source, name, "t", env)
  if chunk == nil then error(err, 0) end
  sethook(function() error("script exceeded its instruction budget", 0) end, "", limit)
  local ok, result = pcall(chunk)
  sethook()
  if not ok then error(result, 0) end
  return result
end
return compile, run
"""


LuaError = errors.LuaError


class _Runtime:
    """One Lua state per thread (lupa states are not thread-safe)."""

    def __init__(self) -> None:
        self.lua = lupa.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
        self.compile, self.run = self.lua.execute(_BOOTSTRAP)
        # Drop what scripts must never reach, even through the bootstrap's globals.
        globals_ = self.lua.globals()
        for name in ("os", "io", "package", "require", "dofile", "loadfile", "debug", "collectgarbage"):
            globals_[name] = None

    def to_lua(self, value: Any, depth: int = 0) -> Any:
        if depth > 200:
            raise LuaError("event data nests too deeply for a script")
        if isinstance(value, dict):
            table = self.lua.table()
            for key, item in value.items():
                if item is not None:
                    table[key] = self.to_lua(item, depth + 1)
            return table
        if isinstance(value, list):
            table = self.lua.table()
            index = 1
            for item in value:
                if item is not None:
                    table[index] = self.to_lua(item, depth + 1)
                    index += 1
            return table
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


_local = threading.local()


def _runtime() -> _Runtime:
    runtime: _Runtime | None = getattr(_local, "runtime", None)
    if runtime is None:
        runtime = _Runtime()
        _local.runtime = runtime
    return runtime


def _to_python(value: Any, depth: int = 0) -> Any:
    """A Lua value as JSON-able Python (Argo's toGoValue: a table with a border is an array)."""
    if depth > 100:
        raise LuaError("script output nests too deeply")
    if lupa.lua_type(value) == "table":
        length = len(value)
        if length:
            return [_to_python(value[i], depth + 1) for i in range(1, length + 1)]
        return {str(k): _to_python(v, depth + 1) for k, v in value.items()}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, bool | str):
        return value
    raise LuaError(f"script output contains a {lupa.lua_type(value) or type(value).__name__}")


class LuaScript:
    """A Lua script compiled once and run with a global ``event`` table."""

    def __init__(self, source: str, name: str = "script") -> None:
        self.source = source
        self.name = name
        ok, err = _runtime().compile(source, name)
        if not ok:
            raise LuaError(f"{name}: {err}")

    def call(self, event: Any, convert: Callable[[Any], Any] = _to_python) -> Any:
        """Run with ``event`` (JSON value) bound; return the script's result as Python."""
        runtime = _runtime()
        try:
            result = runtime.run(self.source, self.name, runtime.to_lua(event), _INSTRUCTION_LIMIT)
        except lupa.LuaError as exc:
            raise LuaError(f"{self.name}: {exc}") from None
        return convert(result)

    def returns_true(self, event: Any) -> bool:
        """Run and report whether the script returned exactly ``true`` (Argo's script filter)."""
        return bool(self.call(event, convert=lambda v: v is True))
