"""A small PromQL parser for the tests: enough of the grammar (selectors, matchers, ranges
and subqueries, functions, aggregations with by/without, binary operators with bool,
on/ignoring and group_left/right, offset) to refuse a malformed expression and to list the
series an expression selects. Grafana's `$variables` stand where a string or a duration is
expected."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGGREGATIONS = _words(
    "sum avg min max count group stddev stdvar topk bottomk quantile count_values limitk "
    "limit_ratio"
)
FUNCTIONS = _words(
    "abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min "
    "count_over_time day_of_month day_of_week day_of_year days_in_month delta deriv exp "
    "floor histogram_avg histogram_count histogram_fraction histogram_quantile "
    "histogram_sum holt_winters hour idelta increase irate label_join label_replace "
    "last_over_time ln log10 log2 max_over_time min_over_time minute month predict_linear "
    "present_over_time quantile_over_time rate resets round scalar sgn sort sort_desc sqrt "
    "stddev_over_time stdvar_over_time sum_over_time time timestamp vector year"
)
SET_OPERATORS = frozenset({"and", "or", "unless"})
OPERATORS = frozenset({"+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="})
MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<variable>\$\{\w+\}|\$\w+)
      | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?:[iI]nf|NaN)(?![a-zA-Z0-9_:]))
      | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
      | (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=(){}\[\],:@])
    )""",
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass
class Selector:
    metric: str
    matcher_labels: set[str] = field(default_factory=set)


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise PromQLError(f"unexpected {text[position : position + 10]!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse(text: str) -> Parsed:
    """Parse one expression; PromQLError says where it is malformed."""
    parser = _Parser(tokenize(text))
    parser.expression()
    if parser.position != len(parser.tokens):
        raise PromQLError(f"unexpected {parser.peek()[1]!r} after a complete expression")
    return parser.parsed


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.parsed = Parsed()

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        index = self.position + ahead
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise PromQLError(f"expected {value or kind}, got {token or 'the end'!r}")
        self.position += 1
        return token

    def expression(self) -> None:
        self.unary()
        while True:
            kind, token = self.peek()
            if (kind == "op" and token in OPERATORS) or (kind == "name" and token in SET_OPERATORS):
                self.position += 1
                if self.peek()[1] == "bool":
                    self.position += 1
                if self.peek()[1] in ("on", "ignoring"):
                    self.position += 1
                    self.labels()
                    if self.peek()[1] in ("group_left", "group_right"):
                        self.position += 1
                        if self.peek()[1] == "(":
                            self.labels()
                self.unary()
            else:
                return

    def unary(self) -> None:
        if self.peek()[1] in ("-", "+"):
            self.position += 1
        self.primary()
        self.suffixes()

    def primary(self) -> None:
        kind, token = self.peek()
        if kind in ("number", "string", "variable"):
            self.position += 1
        elif token == "(":
            self.position += 1
            self.expression()
            self.take(")")
        elif kind == "name" and token in AGGREGATIONS:
            self.position += 1
            self.parsed.functions.add(token)
            if self.peek()[1] in ("by", "without"):
                self.position += 1
                self.parsed.grouping_labels |= self.labels()
            self.arguments()
            if self.peek()[1] in ("by", "without"):
                self.position += 1
                self.parsed.grouping_labels |= self.labels()
        elif kind == "name" and self.peek(1)[1] == "(":
            if token not in FUNCTIONS:
                raise PromQLError(f"unknown function {token!r}")
            self.position += 1
            self.parsed.functions.add(token)
            self.arguments()
        elif kind == "name":
            self.position += 1
            selector = Selector(token)
            if self.peek()[1] == "{":
                selector.matcher_labels = self.matchers()
            self.parsed.selectors.append(selector)
        elif token == "{":
            raise PromQLError("a selector without a metric name")
        else:
            raise PromQLError(f"unexpected {token or 'end'!r}")

    def suffixes(self) -> None:
        while True:
            token = self.peek()[1]
            if token == "[":
                self.position += 1
                self.duration()
                if self.peek()[1] == ":":
                    self.position += 1
                    if self.peek()[1] != "]":
                        self.duration()
                self.take("]")
            elif token == "offset":
                self.position += 1
                if self.peek()[1] == "-":
                    self.position += 1
                self.duration()
            elif token == "@":
                self.position += 1
                self.position += 1  # a timestamp, start() or end()
                if self.peek()[1] == "(":
                    self.take("(")
                    self.take(")")
            else:
                return

    def duration(self) -> None:
        kind, token = self.peek()
        if kind not in ("duration", "variable"):
            raise PromQLError(f"expected a duration, got {token!r}")
        self.position += 1

    def arguments(self) -> None:
        self.take("(")
        if self.peek()[1] != ")":
            self.expression()
            while self.peek()[1] == ",":
                self.position += 1
                self.expression()
        self.take(")")

    def labels(self) -> set[str]:
        self.take("(")
        names: set[str] = set()
        while self.peek()[1] != ")":
            names.add(self.take(kind="name"))
            if self.peek()[1] == ",":
                self.position += 1
            elif self.peek()[1] != ")":
                raise PromQLError(f"expected , or ) in a label list, got {self.peek()[1]!r}")
        self.take(")")
        return names

    def matchers(self) -> set[str]:
        self.take("{")
        names: set[str] = set()
        while self.peek()[1] != "}":
            names.add(self.take(kind="name"))
            operator = self.take(kind="op")
            if operator not in MATCH_OPERATORS:
                raise PromQLError(f"{operator!r} is not a label matcher")
            if self.peek()[0] not in ("string", "variable"):
                raise PromQLError(f"a matcher's value must be a string, got {self.peek()[1]!r}")
            self.position += 1
            if self.peek()[1] == ",":
                self.position += 1
            elif self.peek()[1] != "}":
                raise PromQLError(f"expected , or }} in matchers, got {self.peek()[1]!r}")
        self.take("}")
        return names
