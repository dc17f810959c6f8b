"""The building blocks every compiled sentinel statement shares: bound parameters, catalogue columns.

Kept apart from the compilers so that each of them (the scan, the per-sample detail, the baselines)
names values and columns the one safe way: a value is always a `Placeholder` bound here, a column is
always a catalogue sensor's `Identifier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from workloads.catalog import sensor

Params = dict[str, Any]
_OPS = {">": sql.SQL(">"), ">=": sql.SQL(">="), "<": sql.SQL("<"), "<=": sql.SQL("<=")}


def column(name: str) -> sql.Identifier:
    """A sensor's column, resolved through the catalogue (the only way a name reaches SQL)."""
    return sql.Identifier(sensor(name).column)


def op_sql(op: str) -> sql.SQL:
    return _OPS[op]  # KeyError for anything that is not one of the four comparisons


@dataclass(frozen=True)
class Statement:
    """One compiled statement and its bound parameters, ready for `cursor.execute(query, params)`."""

    query: sql.Composed
    params: Params


class Binder:
    """Collects bound parameters under generated names, and deduplicates aggregate columns."""

    def __init__(self) -> None:
        self.params: Params = {}
        self.fresh: list[sql.Composable] = []  # aggregates over the new samples
        self.tail: list[sql.Composable] = []  # aggregates over the trailing window
        self._agg_alias: dict[object, str] = {}
        self._tail_aliases: list[str] = []

    def bind(self, value: object) -> sql.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def agg(self, key: object, expr: sql.Composable, *, tail: bool = False) -> sql.Identifier:
        """The alias of aggregate `expr`, added once per `key`: rules watching the same thing share it."""
        alias = self._agg_alias.get(key)
        if alias is None:
            alias = f"a{len(self._agg_alias)}"
            self._agg_alias[key] = alias
            (self.tail if tail else self.fresh).append(
                sql.SQL("{} AS {}").format(expr, sql.Identifier(alias))
            )
            if tail:
                self._tail_aliases.append(alias)
        return sql.Identifier(alias)

    def tail_aliases(self) -> list[str]:
        return list(self._tail_aliases)
