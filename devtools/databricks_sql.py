"""The SQL engine behind the Databricks stand-in: a subset of Databricks SQL over Unity Catalog and Delta tables.

Names are Unity Catalog's three levels (`catalog.schema.table`, each part bare or in backticks, matched
case-insensitively and kept lower-case as Unity Catalog does); one-part and two-part names are completed with
the statement's `catalog` and `schema` (default `main`.`default`). Each table lives in one in-memory SQLite
table (STRICT, so a value of the wrong type is refused as Databricks refuses it); every write snapshots the
rows and columns as a new Delta version (version 0 at creation), which `DESCRIBE HISTORY`, `RESTORE TABLE ...
TO VERSION AS OF n` and time travel (`FROM t VERSION AS OF n`) read back.

Supported statements (anything else FAILS with a message naming what is not supported):

    CREATE CATALOG [IF NOT EXISTS] c [COMMENT '...'] [MANAGED LOCATION '...']
    CREATE {SCHEMA|DATABASE} [IF NOT EXISTS] [c.]s [COMMENT '...'] [MANAGED LOCATION '...']
    CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (col TYPE [NOT NULL] [COMMENT '...'], ...) [table clauses]
    CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t [table clauses] AS <query>
    CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t [SHALLOW|DEEP] CLONE src [VERSION AS OF n]
        table clauses: USING DELTA, COMMENT '...', TBLPROPERTIES (...), PARTITIONED BY (...), CLUSTER BY (...)
        (accepted; only ALTER TABLE's CLUSTER BY is kept, as DESCRIBE DETAIL's clusteringColumns)
    INSERT {INTO|OVERWRITE} [TABLE] t [(cols)] {VALUES (...), ... | <query>}
    UPDATE t [[AS] a] SET col = expr, ... [WHERE cond]
    DELETE FROM t [[AS] a] [WHERE cond]
    TRUNCATE TABLE t
    ALTER TABLE t ADD {COLUMN|COLUMNS} [(]col TYPE [COMMENT '...'], ...[)]
    ALTER TABLE t SET TBLPROPERTIES ('k' = 'v', ...);  ALTER TABLE t CLUSTER BY {(col, ...) | NONE}
    DROP TABLE [IF EXISTS] t;  DROP {SCHEMA|DATABASE} [IF EXISTS] s [CASCADE];  DROP CATALOG [IF EXISTS] c [CASCADE]
    <query>: [WITH ...] SELECT ... (SQLite evaluates it: WHERE, GROUP BY, ORDER BY, LIMIT, joins, subqueries,
        CASE, CAST, count/sum/min/max/avg, coalesce, xxhash64(* | cols), hash, md5, sha1, sha2, concat,
        concat_ws, nvl, if, count_if, current_catalog(), current_schema(), current_user(), current_timestamp())
    SHOW CATALOGS; SHOW {SCHEMAS|DATABASES} [IN c]; SHOW TABLES [{IN|FROM} [c.]s] [LIKE 'pat*|alt']
    SHOW GRANTS [principal] ON {CATALOG|SCHEMA|TABLE} x; SHOW TBLPROPERTIES t
    DESCRIBE [TABLE] t; DESCRIBE HISTORY t [LIMIT n]; DESCRIBE DETAIL t
    RESTORE [TABLE] t [TO] {VERSION AS OF n | TIMESTAMP AS OF 'ts'}
    GRANT priv, ... ON {CATALOG|SCHEMA|TABLE} x TO principal; REVOKE priv, ... ON ... FROM principal
    VACUUM t [RETAIN n HOURS] [DRY RUN];  OPTIMIZE t [ZORDER BY (...)]

Named parameter markers (`:name`) are bound from the request's `parameters`. Sums of 64-bit integers wrap
around (Spark without ANSI mode); `xxhash64` is a deterministic 64-bit hash that skips NULLs as Spark's does,
not Spark's exact values.
"""

# The engine composes SQLite SQL from quoted identifiers of its own making; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"


class SqlError(Exception):
    """A statement that fails, with Databricks' error class and SQLSTATE in the message."""

    def __init__(self, error_class: str, message: str, sqlstate: str = "42000") -> None:
        super().__init__(f"[{error_class}] {message} SQLSTATE: {sqlstate}")
        self.error_class = error_class


def unsupported(what: str) -> SqlError:
    return SqlError("UNSUPPORTED_FEATURE", f"{what} is not supported by the Databricks stand-in.", "0A000")


# ---------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # word | ident (backticked) | string | number | param | op
    text: str  # unescaped for ident and string; without the colon for param
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops


_TOKEN = re.compile(
    r"""
     (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
    |(?P<ident>`(?:[^`]|``)*`)
    |(?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<number>(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)(?:BD|bd|[LlSsYyDd])?(?![A-Za-z_]))
    |(?P<param>:[A-Za-z_]\w*)
    |(?P<word>[A-Za-z_]\w*)
    |(?P<op><=>|<>|!=|<=|>=|==|\|\||::|[(),.;*+\-/%<>=!&|^~\[\]?{}])
    """,
    re.X | re.S,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b"}


def _unescape(body: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif char == quote and body[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None:
            raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {sql[pos : pos + 10]!r} (position {pos}).", "42601")
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "ident":
            tokens.append(Token("ident", text[1:-1].replace("``", "`"), pos))
        elif kind == "string":
            tokens.append(Token("string", _unescape(text[1:-1], text[0]), pos))
        elif kind == "number":
            tokens.append(Token("number", re.sub(r"(BD|bd|[LlSsYyDd])$", "", text), pos))
        elif kind == "param":
            tokens.append(Token("param", text[1:], pos))
        elif kind != "ws":
            tokens.append(Token(kind, text, pos))
        pos = match.end()
    return tokens


def quote_name(*parts: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _sqlite_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def at(self, *words: str) -> bool:
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token.upper != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise self.error(" ".join(words))

    def at_op(self, op: str) -> bool:
        token = self.peek()
        return token is not None and token.is_op(op)

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.i += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error(repr(op))

    def error(self, expected: str) -> SqlError:
        token = self.peek()
        near = "end of input" if token is None else repr(token.text)
        return SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {near}: expected {expected}.", "42601")

    def ident(self) -> str:
        token = self.peek()
        if token is None or token.kind not in ("word", "ident"):
            raise self.error("an identifier")
        self.i += 1
        return token.text

    def name(self) -> list[str]:
        if self.at("IDENTIFIER") and (nxt := self.peek(1)) is not None and nxt.is_op("("):
            raise unsupported("IDENTIFIER() clause")
        parts = [self.ident()]
        while self.at_op("."):
            self.i += 1
            parts.append(self.ident())
        return parts

    def string(self) -> str:
        token = self.peek()
        if token is None or token.kind != "string":
            raise self.error("a string literal")
        self.i += 1
        return token.text

    def integer(self) -> int:
        token = self.peek()
        if token is None or token.kind != "number" or not token.text.isdigit():
            raise self.error("an integer")
        self.i += 1
        return int(token.text)

    def rest(self) -> list[Token]:
        tokens = self.tokens[self.i :]
        self.i = len(self.tokens)
        return tokens

    def balanced(self) -> list[Token]:
        """The tokens of a parenthesised group (the cursor on its `(`), without the outer parentheses."""
        self.expect_op("(")
        start, depth = self.i, 1
        while not self.done():
            token = self.tokens[self.i]
            self.i += 1
            if token.is_op("("):
                depth += 1
            elif token.is_op(")"):
                depth -= 1
                if depth == 0:
                    return self.tokens[start : self.i - 1]
        raise self.error("')'")

    def end(self) -> None:
        if not self.done():
            raise self.error("end of statement")


# ----------------------------------------------------------------------------------------------- types

_TYPE_ALIASES = {
    "long": "bigint",
    "bigint": "bigint",
    "int": "int",
    "integer": "int",
    "short": "smallint",
    "smallint": "smallint",
    "byte": "tinyint",
    "tinyint": "tinyint",
    "string": "string",
    "varchar": "varchar",
    "char": "char",
    "double": "double",
    "float": "float",
    "real": "float",
    "decimal": "decimal",
    "dec": "decimal",
    "numeric": "decimal",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ltz": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
    "binary": "binary",
}
_TYPE_NAMES = {
    "bigint": "LONG",
    "int": "INT",
    "smallint": "SHORT",
    "tinyint": "BYTE",
    "string": "STRING",
    "varchar": "STRING",
    "char": "CHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "decimal": "DECIMAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP_NTZ",
    "binary": "BINARY",
    "array": "ARRAY",
    "map": "MAP",
    "struct": "STRUCT",
}
_AFFINITY = {
    "bigint": "INTEGER",
    "int": "INTEGER",
    "smallint": "INTEGER",
    "tinyint": "INTEGER",
    "boolean": "INTEGER",
    "double": "REAL",
    "float": "REAL",
    "decimal": "REAL",
    "binary": "BLOB",
}


def _base(spark_type: str) -> str:
    return re.split(r"[(<]", spark_type, maxsplit=1)[0]


def type_name(spark_type: str) -> str:
    """The `type_name` of the Statement Execution API's manifest for a Spark type."""
    return _TYPE_NAMES.get(_base(spark_type), "STRING")


def sqlite_type(spark_type: str) -> str:
    return _AFFINITY.get(_base(spark_type), "TEXT")


def parse_type(parser: Parser) -> str:
    """A Spark type at the cursor -> its canonical lower-case text (`bigint`, `decimal(10,2)`, ...)."""
    word = parser.ident().lower()
    if parser.at_op("<") or word in ("array", "map", "struct", "variant", "interval", "void", "object"):
        raise unsupported(f"Data type {word.upper()}")
    if word not in _TYPE_ALIASES:
        raise SqlError("UNSUPPORTED_DATATYPE", f"Unsupported data type {word.upper()!r}.", "0A000")
    canonical = _TYPE_ALIASES[word]
    args: list[int] = []
    if parser.accept_op("("):
        args.append(parser.integer())
        if parser.accept_op(","):
            args.append(parser.integer())
        parser.expect_op(")")
    if canonical == "decimal":
        precision, scale = (args + [10, 0][len(args) :])[:2] if args else (10, 0)
        return f"decimal({precision},{scale})"
    if canonical in ("varchar", "char"):
        if len(args) != 1:
            raise parser.error(f"{canonical.upper()}(length)")
        return f"{canonical}({args[0]})"
    if args:
        raise SqlError("PARSE_SYNTAX_ERROR", f"{word.upper()} takes no parameters.", "42601")
    return canonical


def format_value(value: Any, spark_type: str | None) -> str | None:  # noqa: PLR0911 - one return a type
    """A value as the JSON_ARRAY format gives it: a string, or null."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    base = _base(spark_type) if spark_type else ""
    if base == "boolean" or isinstance(value, bool):
        return "true" if value and value != "false" else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if base == "decimal" and isinstance(value, (int, float)):
        scale = int(re.findall(r"\d+", spark_type or "decimal(10,0)")[-1])
        with contextlib.suppress(InvalidOperation):
            return f"{Decimal(str(value)):.{scale}f}"
    if base in ("double", "float") or isinstance(value, float):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if number in (float("inf"), float("-inf")):
            return "Infinity" if number > 0 else "-Infinity"
        text = repr(number)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            text = f"{mantissa}E{int(exponent)}"
        return text
    return str(value)


def _infer_type(values: list[Any]) -> str:
    for value in values:
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "bigint"
        if isinstance(value, float):
            return "double"
        if isinstance(value, bytes):
            return "binary"
        if isinstance(value, str):
            return "string"
    return "string"


# --------------------------------------------------------------------------------------------- catalog


@dataclass
class Column:
    name: str
    type: str
    comment: str | None = None
    nullable: bool = True

    def sqlite_ddl(self) -> str:
        return f"{_sqlite_ident(self.name)} {sqlite_type(self.type)}" + ("" if self.nullable else " NOT NULL")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "metadata": {"comment": self.comment} if self.comment else {},
        }


@dataclass
class Version:
    version: int
    timestamp: float
    operation: str
    parameters: dict[str, str]
    metrics: dict[str, str]
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    read_version: int | None
    user: str
    blind_append: bool = False


@dataclass
class Table:
    key: tuple[str, str, str]
    sqlite: str
    columns: list[Column]
    table_id: str
    created: float
    comment: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    history: list[Version] = field(default_factory=list)
    clustering_columns: list[str] = field(default_factory=list)  # liquid clustering keys

    @property
    def display(self) -> str:
        return quote_name(*self.key)

    @property
    def latest(self) -> int:
        return self.history[-1].version


@dataclass
class Result:
    columns: list[tuple[str, str]]  # (name, Spark type)
    rows: list[list[Any]]

    def data_array(self) -> list[list[str | None]]:
        return [[format_value(value, self.columns[i][1]) for i, value in enumerate(row)] for row in self.rows]


EMPTY = Result(columns=[], rows=[])

PRIVILEGES = frozenset(
    {
        "ALL PRIVILEGES",
        "APPLY TAG",
        "BROWSE",
        "CREATE CATALOG",
        "CREATE FUNCTION",
        "CREATE MATERIALIZED VIEW",
        "CREATE MODEL",
        "CREATE SCHEMA",
        "CREATE TABLE",
        "CREATE VOLUME",
        "EXECUTE",
        "MANAGE",
        "MODIFY",
        "READ VOLUME",
        "REFRESH",
        "SELECT",
        "USE CATALOG",
        "USE SCHEMA",
        "WRITE VOLUME",
    }
)
_ALIAS_STOP = frozenset(
    {
        *("WHERE", "JOIN", "ON", "GROUP", "ORDER", "LIMIT", "OFFSET", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS"),
        *("UNION", "EXCEPT", "INTERSECT", "HAVING", "WINDOW", "USING", "NATURAL", "LATERAL", "QUALIFY", "ANTI", "SEMI"),
        *("SET", "VERSION", "TIMESTAMP", "AS", "MINUS", "FOR", "SYSTEM_VERSION", "SYSTEM_TIME"),
    }
)
_FUNCTION_NAMES = {
    "sum": "spark_sum",
    "nvl": "ifnull",
    "if": "iif",
    "substring": "substr",
    "len": "length",
    "char_length": "length",
    "character_length": "length",
    "lcase": "lower",
    "ucase": "upper",
    "xxhash64": "spark_xxhash64",
    "hash": "spark_hash",
    "try_cast": "CAST",
}


def _hash_args(args: tuple[Any, ...], size: int) -> int:
    digest = hashlib.blake2b(b"seed42", digest_size=size).digest()
    for value in args:
        if value is None:
            continue  # Spark's hashes skip nulls
        if isinstance(value, bytes):
            encoded = b"b" + value
        elif isinstance(value, float) and value.is_integer():
            encoded = b"f" + repr(value).encode()
        else:
            encoded = type(value).__name__[0].encode() + str(value).encode()
        digest = hashlib.blake2b(digest + encoded, digest_size=size).digest()
    return int.from_bytes(digest, "big", signed=True)


def _wrap64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


class _SparkSum:
    def __init__(self) -> None:
        self.total: int | float | None = None

    def step(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):
            try:
                value = float(value) if re.search(r"[.eE]", value) else int(value)
            except ValueError as exc:
                raise ValueError(f"cannot sum the string {value!r}") from exc
        self.total = value if self.total is None else self.total + value

    def finalize(self) -> int | float | None:
        return _wrap64(self.total) if isinstance(self.total, int) else self.total


class _CountIf:
    def __init__(self) -> None:
        self.count = 0

    def step(self, value: Any) -> None:
        if value:
            self.count += 1

    def finalize(self) -> int:
        return self.count


def _sha2(value: Any, bits: int) -> str | None:
    if value is None:
        return None
    data = value if isinstance(value, bytes) else str(value).encode()
    algorithm = {0: "sha256", 224: "sha224", 256: "sha256", 384: "sha384", 512: "sha512"}.get(int(bits))
    return hashlib.new(algorithm, data).hexdigest() if algorithm else None


def _digest(algorithm: str) -> Any:
    def function(value: Any) -> str | None:
        if value is None:
            return None
        return hashlib.new(algorithm, value if isinstance(value, bytes) else str(value).encode()).hexdigest()

    return function


def _concat(*args: Any) -> str | None:
    return None if any(arg is None for arg in args) else "".join(str(format_value(arg, None)) for arg in args)


def _concat_ws(separator: Any, *args: Any) -> str | None:
    if separator is None:
        return None
    return str(separator).join(str(format_value(arg, None)) for arg in args if arg is not None)


@dataclass
class _Ref:
    """A table as one query reads it: the SQLite table holding it, the alias, and its columns."""

    sqlite: str
    alias: str
    columns: list[Column]


@dataclass
class _Context:
    catalog: str
    schema: str
    params: dict[str, Any]
    user: str
    temp_tables: dict[tuple[str, int], str] = field(default_factory=dict)
    column_types: dict[str, str | None] = field(default_factory=dict)
    internal_names: dict[str, str] = field(default_factory=dict)

    def note_columns(self, ref: _Ref) -> None:
        for column in ref.columns:
            key = column.name.lower()
            known = self.column_types.get(key, column.type)
            self.column_types[key] = column.type if known == column.type else None


_PARAM_TYPES_INT = frozenset({"BIGINT", "INT", "INTEGER", "LONG", "SMALLINT", "TINYINT", "SHORT", "BYTE"})
_PARAM_TYPES_FLOAT = frozenset({"DOUBLE", "FLOAT", "REAL", "DECIMAL"})


def bind_parameters(parameters: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The request's `parameters` ([{name, value, type}]) as Python values for the markers."""
    values: dict[str, Any] = {}
    for parameter in parameters or []:
        name = parameter.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise SqlError("INVALID_PARAMETER_MARKER", f"Invalid parameter name {name!r}.", "42K0E")
        raw = parameter.get("value")
        kind = str(parameter.get("type") or "STRING").upper()
        base = re.split(r"[(<]", kind, maxsplit=1)[0]
        try:
            if raw is None:
                values[name] = None
            elif base in _PARAM_TYPES_INT:
                values[name] = int(raw)
            elif base in _PARAM_TYPES_FLOAT:
                values[name] = float(raw)
            elif base == "BOOLEAN":
                values[name] = 1 if str(raw).lower() == "true" else 0
            else:
                values[name] = str(raw)
        except ValueError as exc:
            raise SqlError("CAST_INVALID_INPUT", f"The value {raw!r} of parameter {name!r} cannot be cast to {kind}.", "22018") from exc
    return values


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}Z"


class SqlEngine:
    """Unity Catalog + Delta tables in memory; `execute` runs one statement. Thread-safe (one at a time)."""

    def __init__(self, *, user: str = "standin@example.com", default_catalog: str = DEFAULT_CATALOG) -> None:
        self.user = user
        self.default_catalog = default_catalog
        self._lock = threading.RLock()
        self._next_table = 0
        self.catalogs: dict[str, str | None] = {}  # name -> comment
        self.schemas: dict[tuple[str, str], str | None] = {}
        self.tables: dict[tuple[str, str, str], Table] = {}
        self.grants: dict[tuple[str, str], dict[str, list[str]]] = {}  # (object type, key) -> principal -> privileges
        self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA case_sensitive_like = ON")
        db.create_function("spark_xxhash64", -1, lambda *args: _hash_args(args, 8), deterministic=True)
        db.create_function("spark_hash", -1, lambda *args: _hash_args(args, 4), deterministic=True)
        db.create_function("md5", 1, _digest("md5"), deterministic=True)
        db.create_function("sha1", 1, _digest("sha1"), deterministic=True)
        db.create_function("sha", 1, _digest("sha1"), deterministic=True)
        db.create_function("sha2", 2, _sha2, deterministic=True)
        db.create_function("concat", -1, _concat, deterministic=True)
        db.create_function("concat_ws", -1, _concat_ws, deterministic=True)
        db.create_aggregate("spark_sum", 1, cast("Any", _SparkSum))
        db.create_aggregate("count_if", 1, cast("Any", _CountIf))
        return db

    def reset(self) -> None:
        with self._lock:
            self.db.close()
            self.db = self._connect()
            self.catalogs.clear()
            self.schemas.clear()
            self.tables.clear()
            self.grants.clear()

    # ------------------------------------------------------------------------------------------ entry

    def execute(
        self, statement: str, parameters: list[dict[str, Any]] | None = None, *, catalog: str | None = None, schema: str | None = None
    ) -> Result:
        tokens = tokenize(statement)
        while tokens and tokens[-1].is_op(";"):
            tokens.pop()
        if not tokens:
            raise SqlError("PARSE_EMPTY_STATEMENT", "Syntax error, unexpected empty statement.", "42617")
        if any(token.is_op(";") for token in tokens):
            raise SqlError("MULTIPLE_STATEMENTS", "Only one statement can be executed per request.", "0A000")
        ctx = _Context(
            catalog=(catalog or self.default_catalog).lower(),
            schema=(schema or DEFAULT_SCHEMA).lower(),
            params=bind_parameters(parameters),
            user=self.user,
        )
        with self._lock:
            try:
                return self._dispatch(Parser(tokens), ctx)
            finally:
                for temp in ctx.temp_tables.values():
                    self.db.execute(f"DROP TABLE IF EXISTS temp.{_sqlite_ident(temp)}")

    def _dispatch(self, p: Parser, ctx: _Context) -> Result:
        first = p.peek()
        if first is None:
            raise p.error("a statement")
        word = first.upper
        if word in ("SELECT", "WITH", "VALUES") or first.is_op("("):
            return self._query(p.rest(), ctx)
        handlers = {
            "CREATE": self._create,
            "INSERT": self._insert,
            "UPDATE": self._update,
            "DELETE": self._delete,
            "TRUNCATE": self._truncate,
            "ALTER": self._alter,
            "DROP": self._drop,
            "SHOW": self._show,
            "DESCRIBE": self._describe,
            "DESC": self._describe,
            "RESTORE": self._restore,
            "GRANT": self._grant,
            "REVOKE": self._grant,
            "VACUUM": self._vacuum,
            "OPTIMIZE": self._optimize,
        }
        handler = handlers.get(word)
        if handler is None:
            raise unsupported(f"The statement {first.text.upper()!r}")
        return handler(p, ctx)

    # --------------------------------------------------------------------------------------- names

    def _schema_key(self, parts: list[str], ctx: _Context) -> tuple[str, str]:
        if len(parts) == 1:
            return ctx.catalog, parts[0].lower()
        if len(parts) == 2:
            return parts[0].lower(), parts[1].lower()
        raise SqlError("REQUIRES_SINGLE_PART_NAMESPACE", f"{quote_name(*parts)} is not a schema name.", "42K05")

    def _table_key(self, parts: list[str], ctx: _Context) -> tuple[str, str, str]:
        if len(parts) == 1:
            return ctx.catalog, ctx.schema, parts[0].lower()
        if len(parts) == 2:
            return ctx.catalog, parts[0].lower(), parts[1].lower()
        if len(parts) == 3:
            return parts[0].lower(), parts[1].lower(), parts[2].lower()
        raise SqlError("INVALID_IDENTIFIER", f"{quote_name(*parts)} has more than three parts.", "42602")

    def _need_catalog(self, catalog: str) -> None:
        if catalog not in self.catalogs:
            raise SqlError("NO_SUCH_CATALOG_EXCEPTION", f"Catalog '{catalog}' was not found.", "42704")

    def _need_schema(self, key: tuple[str, str]) -> None:
        self._need_catalog(key[0])
        if key not in self.schemas:
            raise SqlError("SCHEMA_NOT_FOUND", f"The schema {quote_name(*key)} cannot be found.", "42704")

    def _table(self, key: tuple[str, str, str]) -> Table:
        table = self.tables.get(key)
        if table is None:
            raise SqlError(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view {quote_name(*key)} cannot be found. Verify the spelling and correctness of the schema and catalog.",
                "42P01",
            )
        return table

    # ----------------------------------------------------------------------------------- sqlite work

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("SAVEPOINT statement")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO statement")
            self.db.execute("RELEASE statement")
            raise
        self.db.execute("RELEASE statement")

    def _run(self, sql: str, ctx: _Context, bindings: dict[str, Any] | None = None) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, bindings if bindings is not None else ctx.params)
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, ctx) from exc
        except (ValueError, OverflowError) as exc:
            raise SqlError("ARITHMETIC_OVERFLOW" if isinstance(exc, OverflowError) else "INVALID_ARGUMENT", str(exc), "22003") from exc

    def _sqlite_error(self, exc: sqlite3.Error, ctx: _Context) -> SqlError:
        message = str(exc)
        for internal, display in ctx.internal_names.items():
            message = message.replace(internal, display)
        patterns = [
            (
                r"no such column: (.+)",
                "UNRESOLVED_COLUMN.WITHOUT_SUGGESTION",
                "A column, variable, or function parameter with name `{0}` cannot be resolved.",
                "42703",
            ),
            (r"no such function: (.+)", "UNRESOLVED_ROUTINE", "Cannot resolve routine `{0}` on search path [`system`.`builtin`].", "42883"),
            (r"no such table: (.+)", "TABLE_OR_VIEW_NOT_FOUND", "The table or view `{0}` cannot be found.", "42P01"),
            (
                r"cannot store (\w+) value in (\w+) column (.+)",
                "DELTA_FAILED_TO_MERGE_FIELDS",
                "Cannot write a {0} value to the {1} column {2}.",
                "22018",
            ),
            (
                r"NOT NULL constraint failed: (.+)",
                "DELTA_NOT_NULL_CONSTRAINT_VIOLATED",
                "NOT NULL constraint violated for column: {0}.",
                "23502",
            ),
            (
                r"(\d+) values for (\d+) columns",
                "INSERT_COLUMN_ARITY_MISMATCH",
                "Cannot write to the table: {0} values for {1} columns.",
                "21S01",
            ),
            (
                r"table (.+) has (\d+) columns but (\d+) values were supplied",
                "INSERT_COLUMN_ARITY_MISMATCH",
                "Cannot write to {0}: it has {1} columns but {2} values were supplied.",
                "21S01",
            ),
            (r"ambiguous column name: (.+)", "AMBIGUOUS_REFERENCE", "Reference `{0}` is ambiguous.", "42704"),
            (r"(near .*syntax error|incomplete input|unrecognized token.*)", "PARSE_SYNTAX_ERROR", "Syntax error: {0}.", "42601"),
            (
                r"You did not supply a value for binding parameter :?(\w+)",
                "UNBOUND_SQL_PARAMETER",
                "Found the unbound parameter: {0}.",
                "42P02",
            ),
        ]
        for pattern, error_class, template, state in patterns:
            match = re.search(pattern, message)
            if match:
                return SqlError(error_class, template.format(*match.groups()), state)
        return SqlError("INTERNAL_ERROR", message, "XX000")

    def _new_sqlite_name(self) -> str:
        self._next_table += 1
        return f"t{self._next_table}"

    def _load(self, sqlite_name: str, columns: list[Column], rows: list[tuple[Any, ...]], ctx: _Context) -> None:
        """(Re)create the SQLite table with `columns` holding exactly `rows`."""
        self.db.execute(f"DROP TABLE IF EXISTS {_sqlite_ident(sqlite_name)}")
        ddl = ", ".join(column.sqlite_ddl() for column in columns)
        self._run(f"CREATE TABLE {_sqlite_ident(sqlite_name)} ({ddl}) STRICT", ctx, {})
        if rows:
            marks = ", ".join("?" for _ in columns)
            try:
                self.db.executemany(f"INSERT INTO {_sqlite_ident(sqlite_name)} VALUES ({marks})", rows)
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, ctx) from exc

    def _rows(self, table: Table) -> list[tuple[Any, ...]]:
        return list(self.db.execute(f"SELECT * FROM {_sqlite_ident(table.sqlite)} ORDER BY rowid"))

    def _commit(
        self,
        table: Table,
        operation: str,
        parameters: dict[str, str],
        metrics: dict[str, str] | None = None,
        *,
        blind_append: bool = False,
        first: bool = False,
    ) -> Version:
        """Record the table's current rows and columns as its next Delta version."""
        now = time.time()
        if table.history and now <= table.history[-1].timestamp:
            now = table.history[-1].timestamp + 0.001
        version = Version(
            version=0 if first or not table.history else table.latest + 1,
            timestamp=now,
            operation=operation,
            parameters=parameters,
            metrics=metrics or {},
            columns=[Column(c.name, c.type, c.comment, c.nullable) for c in table.columns],
            rows=self._rows(table),
            read_version=None if first or not table.history else table.latest,
            user=self.user,
            blind_append=blind_append,
        )
        table.history.append(version)
        return version

    # ---------------------------------------------------------------------------------- translation

    def _ref(self, parts: list[str], version: int | None, timestamp: str | None, alias: str | None, ctx: _Context) -> _Ref:
        key = self._table_key(parts, ctx)
        table = self._table(key)
        ctx.internal_names[table.sqlite] = table.display
        alias = alias or parts[-1]
        if version is None and timestamp is None:
            ref = _Ref(table.sqlite, alias, table.columns)
        else:
            snapshot = self._version(table, version, timestamp)
            cache_key = (table.sqlite, snapshot.version)
            if cache_key not in ctx.temp_tables:
                temp = f"{table.sqlite}_v{snapshot.version}"
                ctx.temp_tables[cache_key] = temp
                ddl = ", ".join(column.sqlite_ddl() for column in snapshot.columns)
                self.db.execute(f"CREATE TEMP TABLE {_sqlite_ident(temp)} ({ddl})")
                if snapshot.rows:
                    marks = ", ".join("?" for _ in snapshot.columns)
                    self.db.executemany(f"INSERT INTO temp.{_sqlite_ident(temp)} VALUES ({marks})", snapshot.rows)
                ctx.internal_names[temp] = f"{table.display} VERSION AS OF {snapshot.version}"
            ref = _Ref(ctx.temp_tables[cache_key], alias, snapshot.columns)
        ctx.note_columns(ref)
        return ref

    def _version(self, table: Table, version: int | None, timestamp: str | None) -> Version:
        if version is not None:
            for snapshot in table.history:
                if snapshot.version == version:
                    return snapshot
            available = f"[{table.history[0].version}, {table.latest}]"
            raise SqlError(
                "DELTA_CANNOT_RESTORE_TABLE_VERSION" if timestamp is None else "DELTA_VERSION_NOT_FOUND",
                f"Cannot time travel {table.display} to version {version}. Available versions: {available}.",
                "22003",
            )
        moment = _parse_timestamp(timestamp or "")
        candidates = [snapshot for snapshot in table.history if snapshot.timestamp <= moment]
        if not candidates:
            raise SqlError(
                "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION",
                f"The provided timestamp ({timestamp}) is before the earliest version available to {table.display}.",
                "42816",
            )
        return candidates[-1]

    def _table_ref(self, tokens: list[Token], i: int, ctx: _Context, ctes: set[str]) -> tuple[str, _Ref | None, int]:
        """A table reference in FROM/JOIN at tokens[i] -> (its SQLite text, the ref, the index after it)."""
        p = Parser(tokens)
        p.i = i
        parts = p.name()
        version: int | None = None
        timestamp: str | None = None
        if p.accept("FOR") and not (p.at("VERSION") or p.at("TIMESTAMP") or p.at("SYSTEM_VERSION") or p.at("SYSTEM_TIME")):
            raise p.error("VERSION AS OF")
        if p.accept("VERSION", "AS", "OF") or p.accept("SYSTEM_VERSION", "AS", "OF"):
            version = p.integer()
        elif p.accept("TIMESTAMP", "AS", "OF") or p.accept("SYSTEM_TIME", "AS", "OF"):
            timestamp = p.string()
        alias: str | None = None
        token = p.peek()
        if p.accept("AS") or (token is not None and (token.kind == "ident" or (token.kind == "word" and token.upper not in _ALIAS_STOP))):
            alias = p.ident()
        if len(parts) == 1 and parts[0].lower() in ctes and version is None and timestamp is None:
            text = _sqlite_ident(parts[0]) + (f" AS {_sqlite_ident(alias)}" if alias else "")
            return text, None, p.i
        ref = self._ref(parts, version, timestamp, alias, ctx)
        return f"{_sqlite_ident(ref.sqlite)} AS {_sqlite_ident(ref.alias)}", ref, p.i

    def _star_columns(self, tokens: list[Token], start: int, ctx: _Context, ctes: set[str]) -> list[str]:  # noqa: PLR0912
        """The columns `*` stands for in a call at tokens[start]: those of the FROM clause of the same SELECT."""
        depths: list[int] = []
        level = 0
        for token in tokens:
            level -= token.is_op(")")
            depths.append(level)
            level += token.is_op("(")
        # the SELECT holding the call: the innermost enclosing parenthesis that opens a subquery, else the top
        query_depth, level = 0, depths[start]
        for j in range(start - 1, -1, -1):
            if tokens[j].is_op("(") and depths[j] == level - 1:
                if tokens[j + 1].upper in ("SELECT", "WITH"):
                    query_depth = level
                    break
                level -= 1
        for i in range(start, len(tokens)):
            if depths[i] < query_depth:
                break
            if depths[i] != query_depth or tokens[i].upper != "FROM":
                continue
            refs: list[_Ref] = []
            j, inner, expect_ref = i + 1, 0, True
            while j < len(tokens):
                if expect_ref:
                    if tokens[j].is_op("("):
                        raise unsupported("xxhash64(*) over a subquery")
                    _, ref, j = self._table_ref(tokens, j, ctx, ctes)
                    if ref is None:
                        raise unsupported("xxhash64(*) over a common table expression")
                    refs.append(ref)
                    expect_ref = j < len(tokens) and tokens[j].is_op(",")
                    j += 1 if expect_ref else 0
                    continue
                current = tokens[j]
                if current.is_op("("):
                    inner += 1
                elif current.is_op(")"):
                    inner -= 1
                    if inner < 0:
                        break
                elif inner == 0 and current.upper == "JOIN":
                    expect_ref = True
                elif inner == 0 and current.upper in ("WHERE", "GROUP", "ORDER", "LIMIT", "UNION", "HAVING", "EXCEPT", "INTERSECT"):
                    break
                j += 1
            return [f"{_sqlite_ident(ref.alias)}.{_sqlite_ident(column.name)}" for ref in refs for column in ref.columns]
        raise SqlError("INVALID_USAGE_OF_STAR_OR_REGEX", "Invalid usage of '*' without a FROM clause.", "42000")

    def _translate(self, tokens: list[Token], ctx: _Context) -> str:  # noqa: PLR0912, PLR0915 - one token loop for all of the dialect
        """Databricks SQL (an expression, a query, the tail of a DML statement) -> SQLite SQL."""
        ctes = {
            tokens[i].text.lower()
            for i in range(len(tokens) - 2)
            if tokens[i].kind in ("word", "ident") and tokens[i + 1].upper == "AS" and tokens[i + 2].is_op("(")
        }
        out: list[str] = []
        stack: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if token.kind == "word":
                word = token.upper
                if word in ("FROM", "JOIN"):
                    out.append(word)
                    i += 1
                    if i < len(tokens) and tokens[i].is_op("("):
                        continue
                    if word == "FROM" and (i >= len(tokens) or tokens[i].kind not in ("word", "ident")):
                        raise Parser(tokens[i:]).error("a table name")
                    while True:
                        text, _, i = self._table_ref(tokens, i, ctx, ctes)
                        out.append(text)
                        if (
                            word == "FROM"
                            and i < len(tokens)
                            and tokens[i].is_op(",")
                            and i + 1 < len(tokens)
                            and not tokens[i + 1].is_op("(")
                        ):
                            out.append(",")
                            i += 1
                            continue
                        break
                    continue
                if nxt is not None and nxt.is_op("("):
                    name = token.text.lower()
                    constant = self._constant_function(name, ctx)
                    if constant is not None and i + 2 < len(tokens) and tokens[i + 2].is_op(")"):
                        out.append(constant)
                        i += 3
                        continue
                    if name in ("cast", "try_cast"):
                        out.append("CAST(")
                        stack.append("cast")
                        i += 2
                        continue
                    if name in ("xxhash64", "hash") and i + 3 < len(tokens) and tokens[i + 2].is_op("*") and tokens[i + 3].is_op(")"):
                        columns = self._star_columns(tokens, i, ctx, ctes)
                        out.append(f"{_FUNCTION_NAMES[name]}({', '.join(columns)})")
                        i += 4
                        continue
                    out.append(_FUNCTION_NAMES.get(name, token.text))
                    i += 1
                    continue
                if word == "AS" and stack and stack[-1] == "cast":
                    p = Parser(tokens)
                    p.i = i + 1
                    out.append(f"AS {sqlite_type(parse_type(p))}")
                    i = p.i
                    continue
                if word in ("DATE", "TIMESTAMP", "TIMESTAMP_NTZ") and nxt is not None and nxt.kind == "string":
                    i += 1
                    continue
                if word in ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_USER"):
                    out.append(self._constant_function(word.lower(), ctx) or word)
                    i += 1
                    continue
                if word in {"ILIKE", "RLIKE", "REGEXP"}:
                    raise unsupported(word)
                if word == "INTERVAL":
                    i = self._interval(tokens, i, out)
                    continue
                out.append(token.text)
            elif token.kind == "ident":
                out.append(_sqlite_ident(token.text))
            elif token.kind == "string":
                out.append(_sqlite_string(token.text))
            elif token.kind == "number":
                out.append(token.text)
            elif token.kind == "param":
                if token.text not in ctx.params:
                    raise SqlError("UNBOUND_SQL_PARAMETER", f"Found the unbound parameter: {token.text}.", "42P02")
                out.append(f":{token.text}")
            else:
                op = token.text
                if op == "(":
                    stack.append("group")
                    out.append("(")
                elif op == ")":
                    if stack:
                        stack.pop()
                    out.append(")")
                elif op == "<=>":
                    out.append(" IS ")
                elif op == "==":
                    out.append("=")
                elif op == "/":
                    out.append("* 1.0 /")
                elif op in ("::", "?", "[", "]", "{", "}"):
                    raise unsupported(f"The operator {op!r}")
                else:
                    out.append(op)
            i += 1
        return " ".join(out)

    @staticmethod
    def _interval(tokens: list[Token], i: int, out: list[str]) -> int:
        """`<operand> - INTERVAL 7 DAYS` -> `datetime(<operand>, '-7 days')`; only after a simple operand (one
        emitted piece: a constant, a column), which is what date arithmetic in monitoring queries uses."""
        amount, unit = (tokens[i + 1] if i + 1 < len(tokens) else None), (tokens[i + 2] if i + 2 < len(tokens) else None)
        units = {"DAY": "days", "DAYS": "days", "HOUR": "hours", "HOURS": "hours", "MINUTE": "minutes", "MINUTES": "minutes"}
        if amount is None or amount.kind != "number" or unit is None or unit.upper not in units:
            raise unsupported("INTERVAL other than `INTERVAL <n> DAYS|HOURS|MINUTES`")
        if len(out) < 2 or out[-1] not in ("-", "+") or out[-2] in (")", "(", ",") or out[-2].upper() in {"AND", "OR", "WHERE", "SELECT"}:
            raise unsupported("INTERVAL arithmetic on anything but a column or a constant")
        sign, operand = out.pop(), out.pop()
        out.append(f"strftime('%Y-%m-%d %H:%M:%f', {operand}, '{sign}{amount.text} {units[unit.upper]}')")
        return i + 3

    def _constant_function(self, name: str, ctx: _Context) -> str | None:
        now = time.time()
        values = {
            "current_catalog": ctx.catalog,
            "current_schema": ctx.schema,
            "current_database": ctx.schema,
            "current_user": ctx.user,
            "user": ctx.user,
            "session_user": ctx.user,
            "current_timestamp": _iso(now).replace("T", " ").rstrip("Z"),
            "now": _iso(now).replace("T", " ").rstrip("Z"),
            "current_date": time.strftime("%Y-%m-%d", time.gmtime(now)),
        }
        return _sqlite_string(values[name]) if name in values else None

    def _select(self, tokens: list[Token], ctx: _Context) -> Result:
        if not tokens or not (tokens[0].upper in ("SELECT", "WITH", "VALUES") or tokens[0].is_op("(")):
            raise Parser(tokens).error("a query (SELECT ...)")
        sql = self._translate(tokens, ctx)
        cursor = self._run(sql, ctx)
        rows = [list(row) for row in cursor.fetchall()]
        names = [_clean_name(d[0]) for d in cursor.description or []]
        columns: list[tuple[str, str]] = []
        for index, name in enumerate(names):
            known = ctx.column_types.get(name.lower())
            if name.lower().startswith(("count(", "count_if(")):
                known = "bigint"
            columns.append((name, known or _infer_type([row[index] for row in rows])))
        return Result(columns=columns, rows=rows)

    def _query(self, tokens: list[Token], ctx: _Context) -> Result:
        return self._select(tokens, ctx)

    # ----------------------------------------------------------------------------------- statements

    def _create(self, p: Parser, ctx: _Context) -> Result:  # noqa: PLR0911, PLR0912 - catalogs, schemas and four kinds of table
        p.expect("CREATE")
        replace = p.accept("OR", "REPLACE")
        if p.accept("CATALOG"):
            if_not_exists = p.accept("IF", "NOT", "EXISTS")
            name = p.ident().lower()
            comment = self._object_clauses(p)
            if name in self.catalogs:
                if if_not_exists:
                    return EMPTY
                raise SqlError("CATALOG_ALREADY_EXISTS", f"Cannot create catalog `{name}` because it already exists.", "42P04")
            self.catalogs[name] = comment
            return EMPTY
        if p.accept("SCHEMA") or p.accept("DATABASE"):
            if_not_exists = p.accept("IF", "NOT", "EXISTS")
            schema = self._schema_key(p.name(), ctx)
            comment = self._object_clauses(p)
            self._need_catalog(schema[0])
            if schema in self.schemas:
                if if_not_exists:
                    return EMPTY
                raise SqlError("SCHEMA_ALREADY_EXISTS", f"Cannot create schema {quote_name(*schema)} because it already exists.", "42P06")
            self.schemas[schema] = comment
            return EMPTY
        p.accept("EXTERNAL")
        if not p.accept("TABLE"):
            raise unsupported("CREATE " + " ".join(t.text.upper() for t in p.tokens[p.i : p.i + 2]))
        if_not_exists = p.accept("IF", "NOT", "EXISTS")
        if replace and if_not_exists:
            raise SqlError("PARSE_SYNTAX_ERROR", "OR REPLACE and IF NOT EXISTS cannot both be given.", "42601")
        key = self._table_key(p.name(), ctx)
        self._need_schema((key[0], key[1]))
        existing = self.tables.get(key)
        if existing is not None and if_not_exists:
            return EMPTY
        if existing is not None and not replace:
            raise SqlError(
                "TABLE_OR_VIEW_ALREADY_EXISTS", f"Cannot create table or view {quote_name(*key)} because it already exists.", "42P07"
            )
        columns: list[Column] | None = None
        if p.at_op("("):
            columns = self._column_defs(Parser(p.balanced()))
        if p.at("SHALLOW") or p.at("DEEP") or p.at("CLONE"):
            return self._clone(p, key, existing, replace, ctx)
        comment, properties = self._table_clauses(p)
        if p.accept("AS"):
            if columns is not None:
                raise unsupported("A column list together with AS SELECT")
            return self._ctas(query=p.rest(), key=key, existing=existing, replace=replace, comment=comment, properties=properties, ctx=ctx)
        p.end()
        if columns is None:
            raise SqlError("PARSE_SYNTAX_ERROR", "CREATE TABLE needs a column list, AS <query> or CLONE.", "42601")
        operation = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        with self._transaction():
            table = self._fresh_table(key=key, existing=existing, columns=columns, rows=[], comment=comment, properties=properties, ctx=ctx)
            self._commit(table, operation, self._create_parameters(table), first=existing is None)
        self.tables[key] = table
        return EMPTY

    def _fresh_table(
        self,
        *,
        key: tuple[str, str, str],
        existing: Table | None,
        columns: list[Column],
        rows: list[tuple[Any, ...]],
        comment: str | None,
        properties: dict[str, str],
        ctx: _Context,
    ) -> Table:
        """A table as created or replaced: a replaced table keeps its identity and history (Delta's REPLACE)."""
        if len({c.name.lower() for c in columns}) != len(columns):
            raise SqlError("COLUMN_ALREADY_EXISTS", "The column list has a duplicate column name.", "42711")
        if existing is not None:
            table = Table(key, existing.sqlite, columns, existing.table_id, existing.created, comment, properties, existing.history)
        else:
            table = Table(key, self._new_sqlite_name(), columns, str(uuid.uuid4()), time.time(), comment, properties, [])
        self._load(table.sqlite, columns, rows, ctx)
        return table

    @staticmethod
    def _create_parameters(table: Table) -> dict[str, str]:
        return {
            "isManaged": "true",
            "description": table.comment or "null",
            "partitionBy": "[]",
            "properties": json.dumps(table.properties, separators=(",", ":")),
        }

    def _object_clauses(self, p: Parser) -> str | None:
        comment: str | None = None
        while not p.done():
            if p.accept("COMMENT"):
                comment = p.string()
            elif p.accept("MANAGED", "LOCATION") or p.accept("LOCATION"):
                p.string()
            elif p.accept("WITH", "DBPROPERTIES") or p.accept("OPTIONS"):
                p.balanced()
            else:
                raise p.error("COMMENT, MANAGED LOCATION or end of statement")
        return comment

    def _table_clauses(self, p: Parser) -> tuple[str | None, dict[str, str]]:
        comment: str | None = None
        properties: dict[str, str] = {}
        while not p.done() and not p.at("AS"):
            if p.accept("USING"):
                provider = p.ident().lower()
                if provider != "delta":
                    raise unsupported(f"USING {provider.upper()} (tables are Delta tables)")
            elif p.accept("COMMENT"):
                comment = p.string()
            elif p.accept("TBLPROPERTIES"):
                properties.update(_properties(Parser(p.balanced())))
            elif p.accept("PARTITIONED", "BY") or p.accept("CLUSTER", "BY"):
                if p.accept("AUTO") or p.accept("NONE"):
                    continue
                p.balanced()
            elif p.accept("LOCATION"):
                raise unsupported("LOCATION (external tables)")
            else:
                raise p.error("USING DELTA, COMMENT, TBLPROPERTIES, PARTITIONED BY, CLUSTER BY or AS")
        return comment, properties

    def _column_defs(self, p: Parser) -> list[Column]:
        columns: list[Column] = []
        while True:
            name = p.ident()
            spark_type = parse_type(p)
            column = Column(name, spark_type)
            while not p.done() and not p.at_op(","):
                if p.accept("NOT", "NULL"):
                    column.nullable = False
                elif p.accept("NULL"):
                    column.nullable = True
                elif p.accept("COMMENT"):
                    column.comment = p.string()
                else:
                    raise unsupported(f"The column option {p.peek().text.upper()!r}" if p.peek() else "A column option")  # type: ignore[union-attr]
            columns.append(column)
            if not p.accept_op(","):
                break
        p.end()
        return columns

    def _ctas(
        self,
        *,
        query: list[Token],
        key: tuple[str, str, str],
        existing: Table | None,
        replace: bool,
        comment: str | None,
        properties: dict[str, str],
        ctx: _Context,
    ) -> Result:
        result = self._select(query, ctx)
        columns = [Column(name, spark_type) for name, spark_type in result.columns]
        operation = "CREATE OR REPLACE TABLE AS SELECT" if replace else "CREATE TABLE AS SELECT"
        with self._transaction():
            rows = [tuple(row) for row in result.rows]
            table = self._fresh_table(
                key=key, existing=existing, columns=columns, rows=rows, comment=comment, properties=properties, ctx=ctx
            )
            count = str(len(result.rows))
            self._commit(
                table, operation, self._create_parameters(table), {"numFiles": "1", "numOutputRows": count}, first=existing is None
            )
        self.tables[key] = table
        return _affected(len(result.rows), inserted=True)

    def _clone(self, p: Parser, key: tuple[str, str, str], existing: Table | None, replace: bool, ctx: _Context) -> Result:
        shallow = p.accept("SHALLOW")
        p.accept("DEEP")
        p.expect("CLONE")
        source_parts = p.name()
        source = self._table(self._table_key(source_parts, ctx))
        version: int | None = None
        timestamp: str | None = None
        if p.accept("VERSION", "AS", "OF"):
            version = p.integer()
        elif p.accept("TIMESTAMP", "AS", "OF"):
            timestamp = p.string()
        comment, properties = self._table_clauses(p)
        p.end()
        snapshot = self._version(source, version, timestamp) if version is not None or timestamp is not None else source.history[-1]
        columns = [Column(c.name, c.type, c.comment, c.nullable) for c in snapshot.columns]
        with self._transaction():
            table = self._fresh_table(
                key=key,
                existing=existing,
                columns=columns,
                rows=list(snapshot.rows),
                comment=comment or source.comment,
                properties=properties,
                ctx=ctx,
            )
            self._commit(
                table,
                "CLONE",
                {"source": ".".join(source.key), "sourceVersion": str(snapshot.version), "isShallow": str(shallow).lower()},
                {"numCopiedFiles": "1", "numRemovedFiles": "0"},
                first=existing is None,
            )
        self.tables[key] = table
        return Result(
            columns=[
                ("source_table_size", "bigint"),
                ("source_num_of_files", "bigint"),
                ("num_removed_files", "bigint"),
                ("num_copied_files", "bigint"),
                ("removed_files_size", "bigint"),
                ("copied_files_size", "bigint"),
            ],
            rows=[[len(snapshot.rows), 1, 0, 0 if shallow else 1, 0, 0 if shallow else len(snapshot.rows)]],
        )

    def _target(self, p: Parser, ctx: _Context) -> Table:
        key = self._table_key(p.name(), ctx)
        table = self._table(key)
        ctx.internal_names[table.sqlite] = table.display
        ctx.note_columns(_Ref(table.sqlite, key[2], table.columns))
        return table

    def _insert(self, p: Parser, ctx: _Context) -> Result:
        p.expect("INSERT")
        overwrite = p.accept("OVERWRITE")
        if not overwrite:
            p.expect("INTO")
        p.accept("TABLE")
        table = self._target(p, ctx)
        columns = ""
        if p.at_op("(") and not (p.peek(1) is not None and p.peek(1).upper in ("SELECT", "WITH", "VALUES")):  # type: ignore[union-attr]
            names = Parser(p.balanced())
            listed = [names.ident()]
            while names.accept_op(","):
                listed.append(names.ident())
            names.end()
            known = {c.name.lower(): c.name for c in table.columns}
            for name in listed:
                if name.lower() not in known:
                    raise SqlError("UNRESOLVED_COLUMN.WITHOUT_SUGGESTION", f"A column with name `{name}` cannot be resolved.", "42703")
            columns = "(" + ", ".join(_sqlite_ident(known[n.lower()]) for n in listed) + ") "
        if p.at("REPLACE") or p.at("BY"):
            raise unsupported(f"INSERT ... {p.peek().text.upper()}")  # type: ignore[union-attr]
        rest = p.rest()
        if not rest or not (rest[0].upper in ("VALUES", "SELECT", "WITH") or rest[0].is_op("(")):
            raise Parser(rest).error("VALUES or a query")
        source = self._translate(rest, ctx)
        with self._transaction():
            if overwrite:  # the source is read before the table is emptied (it may be the table itself)
                self._run(f"CREATE TEMP TABLE overwrite_source AS {source}", ctx)
                self._run(f"DELETE FROM {_sqlite_ident(table.sqlite)}", ctx, {})
                source = "SELECT * FROM temp.overwrite_source"
            try:
                count = self._run(f"INSERT INTO {_sqlite_ident(table.sqlite)} {columns}{source}", ctx).rowcount
            finally:
                if overwrite:
                    self.db.execute("DROP TABLE IF EXISTS temp.overwrite_source")
            self._commit(
                table,
                "WRITE",
                {"mode": "Overwrite" if overwrite else "Append", "statsOnLoad": "false", "partitionBy": "[]"},
                {"numFiles": "1", "numOutputRows": str(count), "numOutputBytes": str(64 * max(count, 1))},
                blind_append=not overwrite,
            )
        return _affected(count, inserted=True)

    def _update(self, p: Parser, ctx: _Context) -> Result:
        p.expect("UPDATE")
        table = self._target(p, ctx)
        alias = table.key[2]
        if p.accept("AS") or not p.at("SET"):
            alias = p.ident()
        if not p.at("SET"):
            raise p.error("SET")
        rest = p.rest()
        predicate = _predicate(rest)
        sql = f"UPDATE {_sqlite_ident(table.sqlite)} AS {_sqlite_ident(alias)} " + self._translate(rest, ctx)
        with self._transaction():
            count = self._run(sql, ctx).rowcount
            self._commit(table, "UPDATE", {"predicate": predicate}, {"numUpdatedRows": str(count), "numCopiedRows": "0"})
        return _affected(count)

    def _delete(self, p: Parser, ctx: _Context) -> Result:
        p.expect("DELETE")
        p.expect("FROM")
        table = self._target(p, ctx)
        alias = table.key[2]
        if p.accept("AS") or (not p.done() and not p.at("WHERE")):
            alias = p.ident()
        rest = p.rest()
        if rest and rest[0].upper != "WHERE":
            raise Parser(rest).error("WHERE or end of statement")
        sql = f"DELETE FROM {_sqlite_ident(table.sqlite)} AS {_sqlite_ident(alias)} " + self._translate(rest, ctx)
        with self._transaction():
            count = self._run(sql, ctx).rowcount
            self._commit(table, "DELETE", {"predicate": _predicate(rest)}, {"numDeletedRows": str(count), "numRemovedFiles": "1"})
        return _affected(count)

    def _truncate(self, p: Parser, ctx: _Context) -> Result:
        p.expect("TRUNCATE")
        p.expect("TABLE")
        table = self._target(p, ctx)
        p.end()
        with self._transaction():
            self._run(f"DELETE FROM {_sqlite_ident(table.sqlite)}", ctx, {})
            self._commit(table, "TRUNCATE", {}, {"numRemovedFiles": "1"})
        return EMPTY

    def _alter(self, p: Parser, ctx: _Context) -> Result:
        p.expect("ALTER")
        if not p.accept("TABLE"):
            raise unsupported("ALTER " + (p.peek().text.upper() if p.peek() else ""))  # type: ignore[union-attr]
        table = self._target(p, ctx)
        if p.accept("ADD"):
            if not (p.accept("COLUMNS") or p.accept("COLUMN")):
                raise unsupported("ALTER TABLE ... ADD " + (p.peek().text.upper() if p.peek() else ""))  # type: ignore[union-attr]
            added = self._column_defs(Parser(p.balanced())) if p.at_op("(") else self._column_defs(Parser(p.rest()))
            p.end()
            existing = {c.name.lower() for c in table.columns}
            for column in added:
                if column.name.lower() in existing:
                    raise SqlError(
                        "FIELD_ALREADY_EXISTS", f"Cannot add column, because `{column.name}` already exists in {table.display}.", "42710"
                    )
                if not column.nullable:
                    raise SqlError(
                        "DELTA_NOT_NULL_COLUMN_NOT_FOUND_IN_STRUCT", "Columns added to an existing table must be nullable.", "42K09"
                    )
            with self._transaction():
                for column in added:
                    self._run(f"ALTER TABLE {_sqlite_ident(table.sqlite)} ADD COLUMN {column.sqlite_ddl()}", ctx, {})
                table.columns = table.columns + added
                try:
                    self._commit(table, "ADD COLUMNS", {"columns": json.dumps([{"column": c.as_json()} for c in added])})
                except BaseException:
                    table.columns = table.columns[: len(table.columns) - len(added)]
                    raise
            return EMPTY
        if p.accept("SET", "TBLPROPERTIES"):
            properties = _properties(Parser(p.balanced()))
            p.end()
            table.properties.update(properties)
            self._commit(table, "SET TBLPROPERTIES", {"properties": json.dumps(properties, separators=(",", ":"))})
            return EMPTY
        if p.accept("CLUSTER", "BY"):
            keys = [] if p.accept("NONE") else [t.text.strip("`") for t in p.balanced() if not t.is_op(",")]
            p.end()
            known = {c.name.lower(): c.name for c in table.columns}
            if unknown := [k for k in keys if k.lower() not in known]:
                raise SqlError("DELTA_COLUMN_NOT_FOUND", f"Column {unknown[0]} not found in {table.display}.", "42703")
            table.clustering_columns = [known[k.lower()] for k in keys]
            self._commit(table, "CLUSTER BY", {"newClusteringColumns": ",".join(table.clustering_columns)})
            return EMPTY
        raise unsupported("ALTER TABLE " + " ".join(t.text.upper() for t in p.tokens[p.i : p.i + 2]))

    def _drop(self, p: Parser, ctx: _Context) -> Result:  # noqa: PLR0912
        p.expect("DROP")
        if p.accept("TABLE"):
            if_exists = p.accept("IF", "EXISTS")
            key = self._table_key(p.name(), ctx)
            p.accept("PURGE")
            p.end()
            if key not in self.tables:
                if if_exists:
                    return EMPTY
                self._table(key)
            self._drop_table(key)
            return EMPTY
        if p.accept("SCHEMA") or p.accept("DATABASE"):
            if_exists = p.accept("IF", "EXISTS")
            schema = self._schema_key(p.name(), ctx)
            cascade = p.accept("CASCADE")
            p.accept("RESTRICT")
            p.end()
            if schema not in self.schemas:
                if if_exists:
                    return EMPTY
                self._need_schema(schema)
            inside = [key for key in self.tables if key[:2] == schema]
            if inside and not cascade:
                raise SqlError("SCHEMA_NOT_EMPTY", f"Cannot drop a schema {quote_name(*schema)} because it contains objects.", "2BP01")
            for key in inside:
                self._drop_table(key)
            del self.schemas[schema]
            self.grants.pop(("SCHEMA", ".".join(schema)), None)
            return EMPTY
        if p.accept("CATALOG"):
            if_exists = p.accept("IF", "EXISTS")
            catalog = p.ident().lower()
            cascade = p.accept("CASCADE")
            p.accept("RESTRICT")
            p.end()
            if catalog not in self.catalogs:
                if if_exists:
                    return EMPTY
                self._need_catalog(catalog)
            schemas = [key for key in self.schemas if key[0] == catalog]
            if schemas and not cascade:
                raise SqlError("CATALOG_NOT_EMPTY", f"Cannot drop catalog `{catalog}` because it contains schemas.", "2BP01")
            for key in [k for k in self.tables if k[0] == catalog]:
                self._drop_table(key)
            for schema in schemas:
                del self.schemas[schema]
                self.grants.pop(("SCHEMA", ".".join(schema)), None)
            del self.catalogs[catalog]
            self.grants.pop(("CATALOG", catalog), None)
            return EMPTY
        raise unsupported("DROP " + (p.peek().text.upper() if p.peek() else ""))  # type: ignore[union-attr]

    def _drop_table(self, key: tuple[str, str, str]) -> None:
        table = self.tables.pop(key)
        self.db.execute(f"DROP TABLE IF EXISTS {_sqlite_ident(table.sqlite)}")
        self.grants.pop(("TABLE", ".".join(key)), None)

    def _show(self, p: Parser, ctx: _Context) -> Result:
        p.expect("SHOW")
        if p.accept("CATALOGS"):
            pattern = self._like(p)
            return Result([("catalog", "string")], [[name] for name in sorted(self.catalogs) if _matches(name, pattern)])
        if p.accept("SCHEMAS") or p.accept("DATABASES"):
            catalog = ctx.catalog
            if p.accept("IN") or p.accept("FROM"):
                catalog = p.ident().lower()
            pattern = self._like(p)
            self._need_catalog(catalog)
            names = sorted(schema for cat, schema in self.schemas if cat == catalog)
            return Result([("databaseName", "string")], [[name] for name in names if _matches(name, pattern)])
        if p.accept("TABLES"):
            schema = (ctx.catalog, ctx.schema)
            if p.accept("IN") or p.accept("FROM"):
                schema = self._schema_key(p.name(), ctx)
            pattern = self._like(p)
            self._need_schema(schema)
            names = sorted(key[2] for key in self.tables if key[:2] == schema)
            rows: list[list[Any]] = [[schema[1], name, False] for name in names if _matches(name, pattern)]
            return Result([("database", "string"), ("tableName", "string"), ("isTemporary", "boolean")], rows)
        if p.accept("GRANTS") or p.accept("GRANT"):
            principal: str | None = None
            if not p.at("ON"):
                principal = self._principal(p)
            p.expect("ON")
            kind, key = self._securable(p, ctx)
            p.end()
            rows = []
            for object_type, object_key in self._lineage(kind, key):
                for who, privileges in self.grants.get((object_type, object_key), {}).items():
                    if principal is None or who == principal:
                        rows.extend([who, privilege, object_type, object_key] for privilege in privileges)
            columns = [("principal", "string"), ("actionType", "string"), ("objectType", "string"), ("objectKey", "string")]
            return Result(columns, rows)
        if p.accept("TBLPROPERTIES"):
            table = self._target(p, ctx)
            p.end()
            properties = {"delta.minReaderVersion": "1", "delta.minWriterVersion": "2", **table.properties}
            return Result([("key", "string"), ("value", "string")], [[k, v] for k, v in properties.items()])
        raise unsupported("SHOW " + (p.peek().text.upper() if p.peek() else ""))  # type: ignore[union-attr]

    @staticmethod
    def _like(p: Parser) -> str | None:
        if p.accept("LIKE") or (not p.done() and p.peek() is not None and p.peek().kind == "string"):  # type: ignore[union-attr]
            pattern = p.string()
            p.end()
            return pattern
        p.end()
        return None

    def _describe(self, p: Parser, ctx: _Context) -> Result:
        p.i += 1  # DESCRIBE | DESC
        if p.accept("HISTORY"):
            table = self._target(p, ctx)
            limit: int | None = None
            if p.accept("LIMIT"):
                limit = p.integer()
            p.end()
            versions = list(reversed(table.history))[:limit]
            return Result(
                [
                    ("version", "bigint"),
                    ("timestamp", "timestamp"),
                    ("userId", "string"),
                    ("userName", "string"),
                    ("operation", "string"),
                    ("operationParameters", "map<string,string>"),
                    ("job", "struct"),
                    ("notebook", "struct"),
                    ("clusterId", "string"),
                    ("readVersion", "bigint"),
                    ("isolationLevel", "string"),
                    ("isBlindAppend", "boolean"),
                    ("operationMetrics", "map<string,string>"),
                    ("userMetadata", "string"),
                    ("engineInfo", "string"),
                ],
                [
                    [
                        v.version,
                        _iso(v.timestamp),
                        "1000",
                        v.user,
                        v.operation,
                        v.parameters,
                        None,
                        None,
                        None,
                        v.read_version,
                        "WriteSerializable",
                        v.blind_append,
                        v.metrics,
                        None,
                        "Databricks-Runtime/stand-in",
                    ]
                    for v in versions
                ],
            )
        if p.accept("DETAIL"):
            table = self._target(p, ctx)
            p.end()
            rows = self.db.execute(f"SELECT count(*) FROM {_sqlite_ident(table.sqlite)}").fetchone()[0]
            return Result(
                [
                    ("format", "string"),
                    ("id", "string"),
                    ("name", "string"),
                    ("description", "string"),
                    ("location", "string"),
                    ("createdAt", "timestamp"),
                    ("lastModified", "timestamp"),
                    ("partitionColumns", "string"),
                    ("clusteringColumns", "array<string>"),
                    ("numFiles", "bigint"),
                    ("sizeInBytes", "bigint"),
                    ("properties", "map<string,string>"),
                    ("minReaderVersion", "int"),
                    ("minWriterVersion", "int"),
                ],
                [
                    [
                        "delta",
                        table.table_id,
                        ".".join(table.key),
                        table.comment,
                        f"s3://stand-in/tables/{table.table_id}",
                        _iso(table.created),
                        _iso(table.history[-1].timestamp),
                        "[]",
                        json.dumps(table.clustering_columns),
                        1 if rows else 0,
                        64 * rows,
                        table.properties,
                        1,
                        2,
                    ]
                ],
            )
        if p.at("EXTENDED") or p.at("FORMATTED") or p.at("SCHEMA") or p.at("CATALOG") or p.at("DATABASE") or p.at("QUERY"):
            raise unsupported("DESCRIBE " + p.peek().text.upper())  # type: ignore[union-attr]
        p.accept("TABLE")
        table = self._target(p, ctx)
        p.end()
        return Result(
            [("col_name", "string"), ("data_type", "string"), ("comment", "string")],
            [[c.name, c.type, c.comment] for c in table.columns],
        )

    def _restore(self, p: Parser, ctx: _Context) -> Result:
        p.expect("RESTORE")
        p.accept("TABLE")
        table = self._target(p, ctx)
        p.accept("TO")
        version: int | None = None
        timestamp: str | None = None
        if p.accept("VERSION", "AS", "OF"):
            version = p.integer()
        elif p.accept("TIMESTAMP", "AS", "OF"):
            timestamp = p.string()
        else:
            raise p.error("VERSION AS OF n or TIMESTAMP AS OF 'timestamp'")
        p.end()
        snapshot = self._version(table, version, timestamp)
        before = len(self._rows(table))
        columns = [Column(c.name, c.type, c.comment, c.nullable) for c in snapshot.columns]
        previous = table.columns
        with self._transaction():
            self._load(table.sqlite, columns, list(snapshot.rows), ctx)
            table.columns = columns
            try:
                self._commit(
                    table,
                    "RESTORE",
                    {"version": str(snapshot.version), "timestamp": timestamp or "null"},
                    {"numRestoredFiles": "1", "numRemovedFiles": "1", "numOfFilesAfterRestore": "1"},
                )
            except BaseException:
                table.columns = previous
                raise
        return Result(
            [
                ("table_size_after_restore", "bigint"),
                ("num_of_files_after_restore", "bigint"),
                ("num_removed_files", "bigint"),
                ("num_restored_files", "bigint"),
                ("removed_files_size", "bigint"),
                ("restored_files_size", "bigint"),
            ],
            [[64 * len(snapshot.rows), 1, 1 if before else 0, 1, 64 * before, 64 * len(snapshot.rows)]],
        )

    @staticmethod
    def _principal(p: Parser) -> str:
        token = p.peek()
        if token is None or token.kind not in ("word", "ident", "string"):
            raise p.error("a principal")
        p.i += 1
        return token.text

    def _securable(self, p: Parser, ctx: _Context) -> tuple[str, str]:
        if p.accept("CATALOG"):
            name = p.ident().lower()
            self._need_catalog(name)
            return "CATALOG", name
        if p.accept("SCHEMA") or p.accept("DATABASE"):
            schema = self._schema_key(p.name(), ctx)
            self._need_schema(schema)
            return "SCHEMA", ".".join(schema)
        if p.at("VOLUME") or p.at("FUNCTION") or p.at("MODEL") or p.at("EXTERNAL") or p.at("CONNECTION") or p.at("SHARE"):
            raise unsupported(f"Grants on {p.peek().text.upper()}")  # type: ignore[union-attr]
        p.accept("TABLE") or p.accept("VIEW")
        key = self._table_key(p.name(), ctx)
        self._table(key)
        return "TABLE", ".".join(key)

    @staticmethod
    def _lineage(kind: str, key: str) -> list[tuple[str, str]]:
        parts = key.split(".")
        lineage = [("CATALOG", parts[0])]
        if kind in ("SCHEMA", "TABLE"):
            lineage.append(("SCHEMA", ".".join(parts[:2])))
        if kind == "TABLE":
            lineage.append(("TABLE", key))
        return lineage

    def _grant(self, p: Parser, ctx: _Context) -> Result:
        revoke = p.at("REVOKE")
        p.i += 1
        privileges: list[str] = []
        words: list[str] = []
        while not p.done() and not p.at("ON"):
            if p.accept_op(","):
                privileges.append(" ".join(words))
                words = []
            else:
                words.append(p.ident().upper())
        privileges.append(" ".join(words))
        for privilege in privileges:
            if privilege == "ALL":
                privileges[privileges.index(privilege)] = "ALL PRIVILEGES"
            elif privilege not in PRIVILEGES:
                raise SqlError("INVALID_PRIVILEGE", f"Privilege {privilege or '(none)'} is not valid.", "42501")
        p.expect("ON")
        kind, key = self._securable(p, ctx)
        p.expect("FROM" if revoke else "TO")
        principal = self._principal(p)
        p.end()
        held = self.grants.setdefault((kind, key), {}).setdefault(principal, [])
        for privilege in privileges:
            if revoke and privilege in held:
                held.remove(privilege)
            elif not revoke and privilege not in held:
                held.append(privilege)
        if not held:
            del self.grants[(kind, key)][principal]
        return EMPTY

    def _vacuum(self, p: Parser, ctx: _Context) -> Result:
        p.expect("VACUUM")
        table = self._target(p, ctx)
        hours: int | None = None
        if p.accept("RETAIN"):
            hours = p.integer()
            p.expect("HOURS")
        dry_run = p.accept("DRY", "RUN")
        p.end()
        if hours is not None and hours < 168:
            raise SqlError(
                "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT",
                "Are you sure you would like to vacuum files with such a low retention period? (set "
                "spark.databricks.delta.retentionDurationCheck.enabled = false; not possible on the stand-in)",
                "42K0E",
            )
        if not dry_run:
            retention = str((hours or 168) * 3600 * 1000)
            self._commit(
                table,
                "VACUUM START",
                {"retentionCheckEnabled": "true", "defaultRetentionMillis": "604800000", "specifiedRetentionMillis": retention},
                {"numFilesToDelete": "0", "sizeOfDataToDelete": "0"},
            )
            self._commit(table, "VACUUM END", {"status": "COMPLETED"}, {"numDeletedFiles": "0", "numVacuumedDirectories": "1"})
        return Result([("path", "string")], [[f"s3://stand-in/tables/{table.table_id}"]])

    def _optimize(self, p: Parser, ctx: _Context) -> Result:
        p.expect("OPTIMIZE")
        table = self._target(p, ctx)
        if p.accept("WHERE"):
            raise unsupported("OPTIMIZE ... WHERE")
        if p.accept("ZORDER", "BY"):
            p.balanced()
        p.end()
        return Result([("path", "string"), ("metrics", "string")], [[f"s3://stand-in/tables/{table.table_id}", "{}"]])


def _affected(count: int, *, inserted: bool = False) -> Result:
    if inserted:
        return Result([("num_affected_rows", "bigint"), ("num_inserted_rows", "bigint")], [[count, count]])
    return Result([("num_affected_rows", "bigint")], [[count]])


def _predicate(tokens: list[Token]) -> str:
    for index, token in enumerate(tokens):
        if token.upper == "WHERE":
            return json.dumps([" ".join(t.text for t in tokens[index + 1 :])])
    return "[]"


def _properties(p: Parser) -> dict[str, str]:
    properties: dict[str, str] = {}
    while not p.done():
        token = p.peek()
        key = p.string() if token is not None and token.kind == "string" else ".".join(p.name())
        p.accept_op("=")
        value_token = p.peek()
        if value_token is None or value_token.kind not in ("string", "number", "word"):
            raise p.error("a property value")
        p.i += 1
        properties[key] = value_token.text
        if not p.accept_op(","):
            break
    p.end()
    return properties


def _matches(name: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    alternatives = [re.escape(alt.strip()).replace(r"\*", ".*") for alt in pattern.split("|")]
    return re.fullmatch("|".join(alternatives), name, re.IGNORECASE) is not None


def _clean_name(name: str) -> str:
    """SQLite's name of an unaliased result column (the translated text) in Spark's spelling."""
    name = name.replace('"', "").replace("* 1.0 /", "/")
    name = re.sub(r"\s*\(\s*", "(", name)
    name = re.sub(r"\s*\)", ")", name)
    name = re.sub(r"\s*,\s*", ", ", name)
    name = re.sub(r"\bspark_(sum|xxhash64|hash)\(", r"\1(", name)
    return re.sub(r"(?i)\bcount\(\*\)", "count(1)", name)


def _parse_timestamp(text: str) -> float:
    from datetime import UTC, datetime

    value = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SqlError("INVALID_TIMESTAMP", f"The timestamp {text!r} cannot be parsed.", "22007") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
