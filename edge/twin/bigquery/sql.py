"""BigQuery standard SQL to DuckDB: parsed and translated by sqlglot, checked against the subset the
twin knows to answer exactly as BigQuery does, with query parameters passed as typed DuckDB
parameters and tables resolved to the DuckDB tables holding them.

Known to work (each checked against BigQuery's documented semantics, most in tests/twin/test_bigquery.py):
SELECT ... FROM / JOIN / WHERE / GROUP BY / HAVING / QUALIFY / ORDER BY (NULLS FIRST as BigQuery) /
LIMIT / OFFSET, WITH, subqueries, UNION / INTERSECT / EXCEPT, SELECT * EXCEPT / REPLACE, window
functions (ROW_NUMBER, RANK, DENSE_RANK, LAG, LEAD, FIRST_VALUE, LAST_VALUE, aggregates OVER);
COUNT, COUNTIF, SUM, AVG, MIN, MAX, ANY_VALUE, ARRAY_AGG, STRING_AGG, LOGICAL_AND/OR, STDDEV*,
VARIANCE*, APPROX_COUNT_DISTINCT; JSON_VALUE and JSON_EXTRACT_SCALAR over STRING or JSON; arrays
with OFFSET / ORDINAL / SAFE_OFFSET / SAFE_ORDINAL (out of range fails as in BigQuery), ARRAY_LENGTH,
UNNEST (without WITH OFFSET), `IN UNNEST(...)`, GENERATE_ARRAY; CAST / SAFE_CAST; string functions
(LOWER, UPPER, LENGTH, SUBSTR, CONCAT, ||, TRIM, REPLACE, STARTS_WITH, ENDS_WITH, STRPOS, SPLIT,
LPAD, RPAD, REVERSE, REGEXP_CONTAINS / EXTRACT / REPLACE); ABS, ROUND, FLOOR, CEIL, SIGN, DIV, MOD,
SAFE_DIVIDE, GREATEST, LEAST, IF, CASE, COALESCE, IFNULL, NULLIF; CURRENT_TIMESTAMP / DATE,
TIMESTAMP_ADD / SUB, DATE_ADD / SUB, TIMESTAMP_TRUNC (not by WEEK), EXTRACT (not
DAYOFWEEK / WEEK), DATE(), UNIX_SECONDS / MILLIS / MICROS, TIMESTAMP / DATE literals; query
parameters (named or positional) of type STRING, INT64, FLOAT64, NUMERIC, BOOL, TIMESTAMP, DATE,
DATETIME, TIME, BYTES, JSON and ARRAYs of them.

Refused with 400 invalidQuery (sqlglot would translate them, but DuckDB answers differently):
DML, DDL and scripts; legacy SQL; TIMESTAMP_DIFF / DATE_DIFF (boundaries vs whole units); DATE_TRUNC
(its result type follows its input's); WEEK / DAYOFWEEK parts; UNNEST ... WITH OFFSET (DuckDB counts
from 1); JSON_QUERY / JSON_EXTRACT (their STRING-or-JSON result type); TO_JSON_STRING and FORMAT*
(formats differ); SQRT, LN, LOG, POW, EXP (DuckDB returns NaN or infinity where BigQuery fails);
LIMIT inside ARRAY_AGG and whatever else sqlglot flags as inexact; wildcard tables,
INFORMATION_SCHEMA, system variables; STRUCT parameters; any function sqlglot does not know.
Division by zero fails as in BigQuery (`/` and MOD; SAFE_DIVIDE answers NULL).
Known differences that remain: integer literal arithmetic overflowing 32 bits fails in DuckDB
(`SELECT 2147483647 + 1`); JSON_VALUE re-spells numbers such as `1e2` as `100.0`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError
from sqlglot.tokens import TokenType

from edge.twin.bigquery.catalog import Table
from edge.twin.bigquery.errors import Invalid, InvalidQuery
from edge.twin.bigquery.rows import SCALAR_PARSERS
from edge.twin.bigquery.schema import DUCKDB_TYPES, TYPE_ALIASES

# DuckDB macros the translation calls (BigQueryBackend.start creates them).
MACROS = (
    "CREATE OR REPLACE MACRO bq_array_at(arr, i) AS CASE WHEN i >= 1 AND i <= len(arr) THEN arr[i] "
    "WHEN arr IS NULL OR i IS NULL THEN NULL "
    "ELSE error('Array index ' || (i - 1) || ' is out of bounds (array length ' || len(arr) || ')') END",
    "CREATE OR REPLACE MACRO bq_array_at_safe(arr, i) AS CASE WHEN i >= 1 AND i <= len(arr) THEN arr[i] END",
    "CREATE OR REPLACE MACRO bq_divisor(b) AS CASE WHEN b = 0 THEN error('division by zero') ELSE b END",
    "CREATE OR REPLACE MACRO bq_valid_json(j) AS CASE WHEN json_valid(j) THEN j END",
)

_STRUCTURE = set(
    """
    Select Union Intersect Except With CTE Subquery From Join Where Group Having Qualify Order
    Ordered Limit Offset Distinct Alias TableAlias Table Column Identifier Star Literal Boolean Null
    Paren Tuple DataType Var Interval Window WindowSpec Unnest Exists Array Struct PropertyEQ
    Placeholder Parameter Bracket Dot RawString JSONPath JSONPathKey JSONPathRoot JSONPathSubscript
    Cast TryCast
""".split()
)
_OPERATORS = set(
    """
    And Or Not EQ NEQ GT GTE LT LTE Is In Between Like NullSafeEQ NullSafeNEQ Add Sub Mul Div Neg
    Mod IntDiv SafeDivide DPipe Case If Coalesce Nullif Greatest Least
""".split()
)
_FUNCTIONS = set(
    """
    Count CountIf Sum Avg Min Max AnyValue ArrayAgg GroupConcat LogicalAnd LogicalOr Stddev
    StddevSamp StddevPop Variance VariancePop ApproxDistinct RowNumber Rank DenseRank Lag Lead
    FirstValue LastValue JSONExtractScalar ArraySize GenerateSeries Lower Upper Length Substring
    Concat Trim Replace StartsWith EndsWith StrPosition Split Pad Reverse RegexpLike RegexpExtract
    RegexpReplace Abs Round Floor Ceil Sign CurrentTimestamp CurrentDate TimestampAdd TimestampSub
    DateAdd DateSub TimestampTrunc Extract Date UnixSeconds UnixMillis UnixMicros
    Timestamp TsOrDsToTimestamp Rand Uuid
""".split()
)
ALLOWED = _STRUCTURE | _OPERATORS | _FUNCTIONS
_BAD_PARTS = {"WEEK", "ISOWEEK", "DAYOFWEEK", "WEEKDAY", "DOW"}
_INTEGER_TYPES = {exp.DataType.Type.BIGINT, exp.DataType.Type.INT}


@dataclass
class Translation:
    """A query ready for DuckDB: its SQL, its parameter values, the tables it reads."""

    sql: str
    params: dict = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)


def translate(
    query: str,
    *,
    project: str,
    default_dataset: dict | None,
    parameters: list[dict],
    resolve: Callable[[str, str, str], Table],
) -> Translation:
    """Translates one BigQuery SELECT; raises InvalidQuery (400) for SQL the twin cannot answer exactly,
    NotFound (404) for a missing table."""
    text, positional = _positional_placeholders(_strip_dialect_comment(query))
    tree = _parse(text)
    _check_supported(tree)
    _rewrite(tree)
    params = _bind_parameters(tree, parameters, positional)
    tables = _resolve_tables(tree, project, default_dataset, resolve)
    _name_anonymous_columns(tree)
    return Translation(_generate(tree), params, tables)


def _generate(tree: exp.Expression) -> str:
    """DuckDB SQL; sqlglot's warnings of a possibly different answer refuse the query, except those
    about time zones (the twin's DuckDB sessions run in UTC, as BigQuery does)."""
    generator = sqlglot.Dialect.get_or_raise("duckdb").generator(unsupported_level=ErrorLevel.IGNORE)
    try:
        sql = generator.generate(tree)
    except SqlglotError as exc:
        raise InvalidQuery(f"The twin cannot translate this query to DuckDB: {exc}") from None
    doubts = [m for m in generator.unsupported_messages if "timezone" not in m.lower()]
    if doubts:
        raise InvalidQuery(f"The twin cannot translate this query to DuckDB exactly: {'; '.join(doubts)}")
    return sql


def uses_legacy_sql(query: str, use_legacy_sql) -> bool:
    """BigQuery's rule: a `#standardSQL` / `#legacySQL` first line wins, else `useLegacySql` (default true)."""
    first = query.lstrip().split("\n", 1)[0].strip().lower()
    if first.startswith("#standardsql"):
        return False
    if first.startswith("#legacysql"):
        return True
    return use_legacy_sql is None or bool(use_legacy_sql)


def _strip_dialect_comment(query: str) -> str:
    return re.sub(r"^\s*#(standard|legacy)sql[^\n]*\n?", "", query, flags=re.IGNORECASE)


def _positional_placeholders(query: str) -> tuple[str, int]:
    """The query with each positional `?` renamed `@__positional_N` (in text order), and their count."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("bigquery").tokenize(query)
    except SqlglotError as exc:
        raise InvalidQuery(f"Syntax error: {exc}") from None
    spots = [t.start for t in tokens if t.token_type == TokenType.PLACEHOLDER]
    for n, start in reversed(list(enumerate(spots))):
        query = f"{query[:start]}@__positional_{n}{query[start + 1 :]}"
    return query, len(spots)


def _parse(query: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(query, read="bigquery") if s is not None]
    except ParseError as exc:
        raise InvalidQuery(_syntax_error(exc)) from None
    except SqlglotError as exc:
        raise InvalidQuery(f"Syntax error: {exc}") from None
    if len(statements) != 1:
        raise InvalidQuery("The twin's BigQuery runs exactly one statement per query (no scripts).")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise InvalidQuery(f"The twin's BigQuery runs SELECT queries only, not {tree.key.upper()} statements.")
    return tree


def _syntax_error(exc: ParseError) -> str:
    """BigQuery's wording: `Syntax error: <what> at [line:column]`."""
    if not exc.errors:
        return f"Syntax error: {exc}"
    first = exc.errors[0]
    near = (first.get("highlight") or "").strip()
    where = f" near {near!r}" if near else ""
    return f"Syntax error: {first.get('description')}{where} at [{first.get('line')}:{first.get('col')}]"


def _check_supported(tree: exp.Expression) -> None:
    for node in tree.walk():
        name = type(node).__name__
        if isinstance(node, exp.Anonymous):
            raise InvalidQuery(f"Function not found or not supported by the twin's BigQuery: {node.name}")
        if name not in ALLOWED:
            raise InvalidQuery(f"The twin's BigQuery does not support {_describe(node)} (sqlglot {name}).")
        part = node.this.name if isinstance(node, exp.Extract) else ""
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            part = node.text("unit")
        if part.upper() in _BAD_PARTS:
            raise InvalidQuery(f"The twin's BigQuery does not support the date part {part.upper()} here.")
        if isinstance(node, exp.Unnest) and node.args.get("offset"):
            raise InvalidQuery("The twin's BigQuery does not support UNNEST ... WITH OFFSET.")
        if isinstance(node, exp.Bracket) and "offset" not in node.args:
            raise InvalidQuery("Subscripts other than [OFFSET()], [ORDINAL()], [SAFE_OFFSET()] are not supported.")


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Func):
        return f"the function {node.sql('bigquery').split('(')[0]}"
    return f"`{node.sql('bigquery')[:80]}`"


# ---------------------------------------------------------------------------------- parameters


def _bind_parameters(tree: exp.Expression, parameters: list[dict], positional: int) -> dict:
    """Replaces each `@name` with a typed DuckDB parameter; returns the DuckDB parameter values."""
    named = {}
    for index, param in enumerate(parameters or []):
        name = param.get("name")
        key = name.lower() if name else f"__positional_{index}"
        named[key] = param
    if positional and any(p.get("name") for p in parameters or []):
        raise InvalidQuery("Positional and named parameters cannot be mixed within the same query.")
    values, slots = {}, {}
    for node in list(tree.find_all(exp.Parameter)):
        name = node.name.lower()
        if name not in named:
            shown = "?" if name.startswith("__positional_") else f"@{node.name}"
            raise InvalidQuery(f"Query parameter '{shown}' not found (or not supported by the twin).")
        if name not in slots:
            slots[name] = f"p{len(slots)}"
            duck_type, values[slots[name]] = _parameter_value(named[name])
            slots[name] = (slots[name], duck_type)
        slot, duck_type = slots[name]
        node.replace(exp.Cast(this=exp.Var(this=f"${slot}"), to=exp.DataType.build(duck_type, dialect="duckdb")))
    return values


def _parameter_value(param: dict) -> tuple[str, object]:
    """The DuckDB type and Python value of one REST QueryParameter."""
    ptype = param.get("parameterType") or {}
    value = param.get("parameterValue") or {}
    label = param.get("name") or "?"
    kind = str(ptype.get("type", "")).upper()
    if kind == "ARRAY":
        element = str((ptype.get("arrayType") or {}).get("type", "")).upper()
        if element in ("ARRAY", "STRUCT"):
            raise InvalidQuery(f"Parameter {label}: ARRAY of {element} is not supported by the twin.")
        base, parse = _scalar_parameter_type(element, label)
        items = value.get("arrayValues")
        if items is None:
            return f"{base}[]", None
        return f"{base}[]", [_parse_parameter(parse, item.get("value"), label) for item in items]
    base, parse = _scalar_parameter_type(kind, label)
    return base, _parse_parameter(parse, value.get("value"), label)


def _scalar_parameter_type(kind: str, label: str) -> tuple[str, Callable]:
    legacy = TYPE_ALIASES.get(kind)
    if legacy is None or legacy in ("RECORD", "GEOGRAPHY"):
        raise InvalidQuery(f"Parameter {label}: type {kind or '(none)'} is not supported by the twin.")
    return DUCKDB_TYPES[legacy], SCALAR_PARSERS[legacy]


def _parse_parameter(parse: Callable, raw, label: str):
    if raw is None:
        return None
    try:
        return parse(raw)
    except (ValueError, TypeError, ArithmeticError):
        raise Invalid(f"Invalid value for query parameter {label}: {raw!r:.100}") from None


# ------------------------------------------------------------------------------------- tables


def _resolve_tables(
    tree: exp.Expression, project: str, default_dataset: dict | None, resolve: Callable[[str, str, str], Table]
) -> list[Table]:
    """Points every table reference at its DuckDB table; returns the tables read."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables: list[Table] = []
    for node in list(tree.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier):
            raise InvalidQuery(f"The twin's BigQuery cannot read from `{node.sql('bigquery')[:80]}`.")
        if not node.args.get("db") and node.name.lower() in ctes:
            continue
        table = _lookup(node, project, default_dataset, resolve)
        if not table.fields:
            raise InvalidQuery(f"Table {table.label} has no schema.")
        if table not in tables:
            tables.append(table)
        alias = node.args.get("alias")
        duck = exp.Table(
            this=exp.to_identifier(table.table_id, quoted=True),
            db=exp.to_identifier(f"{table.project}.{table.dataset}", quoted=True),
        )
        duck.set("alias", alias or exp.TableAlias(this=exp.to_identifier(node.name, quoted=True)))
        node.replace(duck)
    return tables


def _lookup(node: exp.Table, project: str, default_dataset: dict | None, resolve) -> Table:
    name, dataset, catalog = node.name, node.text("db"), node.text("catalog")
    if "*" in name or name.upper().startswith("INFORMATION_SCHEMA") or dataset.upper() == "INFORMATION_SCHEMA":
        raise InvalidQuery(f"The twin's BigQuery does not support wildcard tables or INFORMATION_SCHEMA: {name}")
    if not dataset:
        if not default_dataset or not default_dataset.get("datasetId"):
            raise InvalidQuery(f'Table "{name}" must be qualified with a dataset (e.g. dataset.table).')
        dataset, catalog = default_dataset["datasetId"], default_dataset.get("projectId") or project
    return resolve(catalog or project, dataset, name)


# ------------------------------------------------------------------------------------ rewrite


def _rewrite(tree: exp.Expression) -> None:
    """Makes DuckDB compute what BigQuery computes where sqlglot's translation alone would not."""
    for node in list(tree.walk()):
        if isinstance(node, exp.Literal) and not node.is_string and re.search(r"[.eE]", node.this):
            node.replace(exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE")))  # FLOAT64, not DECIMAL
        elif isinstance(node, exp.DataType):
            _rewrite_type(node)
        elif isinstance(node, (exp.Cast, exp.TryCast)) and node.to.this in _INTEGER_TYPES:
            # BigQuery rounds halves away from zero; DuckDB's DOUBLE->BIGINT cast rounds them to even.
            node.set("this", type(node)(this=node.this, to=exp.DataType.build("DECIMAL(38, 18)")))
        elif isinstance(node, exp.Bracket):
            node.replace(_array_access(node))
        elif isinstance(node, (exp.DateAdd, exp.DateSub)):
            # BigQuery's DATE_ADD / DATE_SUB answer a DATE; DuckDB's date + interval is a TIMESTAMP.
            wrapper = exp.Cast(this=exp.Null(), to=exp.DataType.build("DATE"))
            node.replace(wrapper)
            wrapper.set("this", node)
        elif isinstance(node, exp.JSONExtractScalar):
            # BigQuery's JSON_VALUE of text that is not JSON is NULL; DuckDB's fails.
            node.set("this", exp.Anonymous(this="bq_valid_json", expressions=[node.this]))
        elif isinstance(node, (exp.Div, exp.Mod)):
            # BigQuery fails on a zero divisor; DuckDB answers inf or NaN for floating point.
            node.set("expression", exp.Anonymous(this="bq_divisor", expressions=[node.expression]))


def _rewrite_type(node: exp.DataType) -> None:
    if node.this == exp.DataType.Type.DECIMAL and not node.expressions:
        node.set(
            "expressions",
            [exp.DataTypeParam(this=exp.Literal.number(38)), exp.DataTypeParam(this=exp.Literal.number(9))],
        )
    elif node.this == exp.DataType.Type.BIGDECIMAL:
        node.set("this", exp.DataType.Type.DECIMAL)
        node.set(
            "expressions",
            [exp.DataTypeParam(this=exp.Literal.number(38)), exp.DataTypeParam(this=exp.Literal.number(18))],
        )


def _array_access(node: exp.Bracket) -> exp.Expression:
    """`a[OFFSET(i)]` -> `bq_array_at(a, i + 1)`: out of range fails as in BigQuery (SAFE_ returns NULL)."""
    index = node.expressions[0]
    if node.args.get("offset", 0) == 0:
        index = exp.Add(this=exp.Paren(this=index), expression=exp.Literal.number(1))
    macro = "bq_array_at_safe" if node.args.get("safe") else "bq_array_at"
    return exp.Anonymous(this=macro, expressions=[node.this, index])


def _name_anonymous_columns(tree: exp.Expression) -> None:
    """Names result columns as BigQuery does: an expression without an alias becomes f0_, f1_, ..."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    counter = 0
    for projection in list(select.expressions):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
            continue
        projection.replace(exp.alias_(projection.copy(), f"f{counter}_", quoted=True))
        counter += 1
