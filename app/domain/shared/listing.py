"""The one filter parser, sort and keyset-cursor helper that every list endpoint uses.

Query strings (`status=hot`, `created_at__gte=2026-01-01`, `tags__has=vip`,
`company.name__contains=acme`, `custom_fields.visits__gte=3`) and JSON search bodies
(`{"and": [{"field": "status", "op": "eq", "value": "hot"}, {"or": [...]}]}`) both become
SQLAlchemy conditions through the same code.
"""

from __future__ import annotations

import base64
import math
import operator
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, cast, false, func, not_, or_, true, tuple_
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH
from sqlalchemy.sql import Select

from app.domain.shared.errors import ValidationError

MAX_LIMIT = 200
MAX_FILTER_DEPTH = 10
OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "has", "hasany", "contains",
             "startswith", "isnull"}
_ORDERED = {"gt", "gte", "lt", "lte"}


@dataclass(frozen=True)
class FilterField:
    column: Any
    kind: str  # str | uuid | datetime | date | int | decimal | bool | array | text
    sortable: bool = False


@dataclass(frozen=True)
class Related:
    """Filters on a related record: `company.name__contains=acme`."""

    fields: Mapping[str, FilterField]
    # Given a condition on the related table, return the condition on the listed table.
    link: Callable[[ColumnElement[bool]], ColumnElement[bool]]


@dataclass(frozen=True)
class ListSpec:
    fields: Mapping[str, FilterField]
    id_column: Any
    default_sort: str = "-created_at"
    related: Mapping[str, Related] = field(default_factory=dict)
    custom_fields_column: Any = None
    custom_fields_object: str | None = None  # whose definitions the filter keys must name


def custom_field_key(spec: ListSpec, name: str) -> str | None:
    """The custom field key that a filter name (`custom_fields.<key>`, with or without
    `__<op>`) refers to, for the caller to check against the workspace's definitions."""
    if spec.custom_fields_object is None or not name.startswith("custom_fields."):
        return None
    return name.partition("__")[0].split(".", 1)[1]


def tree_fields(node: Any) -> Iterator[str]:
    """Every `field` named in a filter tree (as `condition_from_tree` reads it)."""
    if isinstance(node, dict):
        for key in ("and", "or"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    yield from tree_fields(child)
        if "not" in node:
            yield from tree_fields(node["not"])
        if "field" in node:
            yield str(node["field"])


@dataclass
class Condition:
    field: str
    op: str
    value: Any


def _parse_scalar(kind: str, raw: Any, loc: list[str | int]) -> Any:
    try:
        if kind in ("str", "text", "array"):
            if not isinstance(raw, str | int | float) or "\x00" in str(raw):
                raise ValueError
            return str(raw)
        if kind == "uuid":
            return raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        if kind == "int":
            if isinstance(raw, bool) or not -(2**31) <= int(raw) < 2**31:  # int4 columns
                raise ValueError
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1"):
                return True
            if str(raw).lower() in ("false", "0"):
                return False
            raise ValueError
        if kind == "datetime":
            value = datetime.fromisoformat(str(raw).replace(" ", "+"))
            if value.tzinfo is None:
                raise ValidationError.at(loc, "a time needs an offset, e.g. 2026-01-01T00:00:00Z")
            return value.astimezone(UTC)  # out of range in UTC (year 10000) is a 422 here
        if kind == "date":
            return date.fromisoformat(str(raw))
        if kind == "decimal":
            if isinstance(raw, bool) or not isinstance(raw, str | int | float):
                raise ValueError
            number = Decimal(str(raw))
            if not number.is_finite() or abs(number.adjusted()) > 30:
                raise ValueError
            return number
    except ValidationError:
        raise
    except (ValueError, TypeError, OverflowError, InvalidOperation) as exc:
        raise ValidationError.at(loc, f"{raw!r} is not a valid {kind}") from exc
    raise AssertionError(kind)


def _values(kind: str, raw: Any, loc: list[str | int]) -> list[Any]:
    items = raw if isinstance(raw, list) else [v for v in str(raw).split(",") if v != ""]
    if not items:
        raise ValidationError.at(loc, "give at least one value")
    return [_parse_scalar(kind, v, loc) for v in items]


_COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge,
            "lt": operator.lt, "lte": operator.le}


def _column_condition(spec: FilterField, op: str, raw: Any, loc: list[str | int]) -> Any:
    col, kind = spec.column, spec.kind
    if op == "isnull":
        flag = _parse_scalar("bool", raw, loc)
        return col.is_(None) if flag else col.is_not(None)
    if kind == "array":
        if op in ("has", "eq"):
            return col.contains([_parse_scalar("str", raw, loc)])
        if op == "hasany":
            return col.overlap(_values("str", raw, loc))
        raise ValidationError.at(loc, f"operator {op!r} does not apply to a list field")
    if op in ("in", "nin"):
        condition = col.in_(_values(kind, raw, loc))
        return condition if op == "in" else not_(condition)
    if op in ("contains", "startswith"):
        if kind not in ("str", "text"):
            raise ValidationError.at(loc, f"operator {op!r} applies to text fields only")
        needle = str(raw).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%" if op == "contains" else f"{needle}%"
        return col.ilike(pattern, escape="\\")
    if op in ("has", "hasany"):
        raise ValidationError.at(loc, f"operator {op!r} applies to list fields only")
    if op in _ORDERED and kind in ("bool", "uuid"):
        raise ValidationError.at(loc, f"operator {op!r} does not apply to a {kind} field")
    value = _parse_scalar(kind, raw, loc)
    return _COMPARE[op](col, value)  # only the one asked for: `bool > x` is not SQL


def _custom_field_condition(column: Any, key: str, op: str, raw: Any,
                            loc: list[str | int]) -> Any:
    if not key.replace("_", "").isalnum():
        raise ValidationError.at(loc, f"unknown custom field {key!r}")
    if op == "isnull":
        present = column.has_key(key)
        return not_(present) if _parse_scalar("bool", raw, loc) else present
    value = raw
    if isinstance(raw, str):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
    if isinstance(value, dict | list) and op not in ("in", "nin"):
        raise ValidationError.at(loc, "custom field filters take a single value")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError.at(loc, "numbers must be finite")
    # Text that reads as JSON ("12", "true") may be meant either way: a number field holds 12,
    # a text field (a tax number, a postcode) holds "12". Compare with both.
    alternatives = [value, raw] if isinstance(raw, str) and value != raw else [value]
    jsonpath_ops = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    if op in jsonpath_ops:
        # jsonpath comparisons of mismatched types are "unknown", never a server error.
        tests = " || ".join(f"@ {jsonpath_ops[op]} $v{i}" for i in range(len(alternatives)))
        variables = {f"v{i}": v for i, v in enumerate(alternatives)}
        return func.jsonb_path_exists(column, cast(f"$.{key} ? ({tests})", JSONPATH),
                                      bindparam(None, variables, type_=JSONB))
    if op == "contains":
        needle = str(raw).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column[key].astext.ilike(f"%{needle}%", escape="\\")
    if op == "has":
        return or_(*(column[key].contains([v]) for v in alternatives))
    if op in ("in", "nin"):
        values = value if isinstance(value, list) else str(raw).split(",")
        condition = column[key].astext.in_([str(v) for v in values])
        return condition if op == "in" else not_(condition)
    raise ValidationError.at(loc, f"operator {op!r} does not apply to custom fields")


def condition_for(spec: ListSpec, cond: Condition, loc: list[str | int]) -> Any:
    if cond.op not in OPERATORS:
        raise ValidationError.at(loc, f"unknown operator {cond.op!r}; use one of "
                                      + ", ".join(sorted(OPERATORS)))
    name = cond.field
    if name.startswith("custom_fields.") and spec.custom_fields_column is not None:
        return _custom_field_condition(spec.custom_fields_column, name.split(".", 1)[1],
                                       cond.op, cond.value, loc)
    if "." in name:
        relation, _, sub = name.partition(".")
        related = spec.related.get(relation)
        if related is None or sub not in related.fields:
            raise ValidationError.at(loc, f"unknown filter field {name!r}")
        return related.link(_column_condition(related.fields[sub], cond.op, cond.value, loc))
    if name not in spec.fields:
        raise ValidationError.at(loc, f"unknown filter field {name!r}")
    return _column_condition(spec.fields[name], cond.op, cond.value, loc)


def conditions_from_query(spec: ListSpec, params: Mapping[str, str],
                          reserved: set[str]) -> list[Any]:
    result = []
    for key, raw in params.items():
        if key in reserved:
            continue
        name, _, op = key.partition("__")
        result.append(condition_for(spec, Condition(name, op or "eq", raw), ["query", key]))
    return result


def condition_from_tree(spec: ListSpec, node: Any, loc: list[str | int], *,
                        depth: int = 0) -> Any:
    """`{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}` or `{"field", "op", "value"}`."""
    if not isinstance(node, dict):
        raise ValidationError.at(loc, "a filter is an object")
    if depth >= MAX_FILTER_DEPTH:
        raise ValidationError.at(loc, f"filters nest at most {MAX_FILTER_DEPTH} levels deep")
    if "and" in node or "or" in node:
        key = "and" if "and" in node else "or"
        children = node[key]
        if not isinstance(children, list) or len(node) != 1:
            raise ValidationError.at(loc, f"{key!r} takes a list and nothing beside it")
        parts = [condition_from_tree(spec, c, [*loc, key, i], depth=depth + 1)
                 for i, c in enumerate(children)]
        if not parts:
            return true() if key == "and" else false()
        return and_(*parts) if key == "and" else or_(*parts)
    if "not" in node and len(node) == 1:
        return not_(condition_from_tree(spec, node["not"], [*loc, "not"], depth=depth + 1))
    extra = set(node) - {"field", "op", "value"}
    if extra or "field" not in node:
        raise ValidationError.at(loc, "a condition has field, op and value")
    return condition_for(spec, Condition(str(node["field"]), str(node.get("op", "eq")),
                                         node.get("value")), loc)


@dataclass(frozen=True)
class Page:
    limit: int
    cursor: str | None
    sort: str | None


def check_limit(limit: int, loc: list[str | int]) -> int:
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationError.at(loc, f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _sort_field(spec: ListSpec, sort: str | None) -> tuple[str, FilterField, bool]:
    raw = sort or spec.default_sort
    descending = raw.startswith("-")
    name = raw.lstrip("-+")
    field_spec = spec.fields.get(name)
    if field_spec is None or not field_spec.sortable:
        allowed = sorted(n for n, f in spec.fields.items() if f.sortable)
        raise ValidationError.at(["query", "sort"], f"cannot sort by {name!r}; use one of "
                                                     + ", ".join(allowed))
    return name, field_spec, descending


def _encode_cursor(value: Any, record_id: uuid.UUID) -> str:
    payload = orjson.dumps([value, str(record_id)], default=str)
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, record_id = orjson.loads(raw)
        return _parse_scalar(kind, value, ["query", "cursor"]), uuid.UUID(record_id)
    except (ValueError, TypeError, orjson.JSONDecodeError, ValidationError) as exc:
        raise ValidationError.at(["query", "cursor"], "invalid cursor") from exc


def paginate(spec: ListSpec, query: Select[Any], page: Page) -> tuple[Select[Any], Callable[
        [list[Any]], tuple[list[Any], str | None]]]:
    """Apply sort + keyset cursor; returns the query and a function that cuts the page."""
    _, field_spec, descending = _sort_field(spec, page.sort)
    col, id_col = field_spec.column, spec.id_column
    if page.cursor:
        value, last_id = _decode_cursor(page.cursor, field_spec.kind)
        key = tuple_(col, id_col)
        query = query.where(key < tuple_(value, last_id) if descending
                            else key > tuple_(value, last_id))
    order = (col.desc(), id_col.desc()) if descending else (col.asc(), id_col.asc())
    query = query.order_by(*order).limit(page.limit + 1)

    def cut(rows: list[Any]) -> tuple[list[Any], str | None]:
        if len(rows) <= page.limit:
            return rows, None
        rows = rows[: page.limit]
        return rows, row_cursor(spec, page.sort, rows[-1])

    return query, cut


def row_cursor(spec: ListSpec, sort: str | None, row: Any) -> str:
    """The cursor that continues a listing right after `row` (Relay edge cursors)."""
    name, _, _ = _sort_field(spec, sort)
    return _encode_cursor(getattr(row, name), row.id)
