#!/usr/bin/env python3
"""Check the Grafana dashboards and Prometheus alert rules of ssl-train.

Each deploy/grafana/dashboards/*.json must be valid JSON with unique panel ids,
panels nested in rows included. Every panel with targets, and every target, must name
its data source through a datasource variable, and every PromQL expression must parse
in a real Prometheus. The script also runs `promtool check rules` and `promtool test
rules` on deploy/prometheus/. Finally, every metric name that the dashboards and alert
rules use must appear as a series in the scrape files (Prometheus text format, as
`GET /metrics` serves it).

The Prometheus that parses the expressions listens on 127.0.0.1 with a temporary
storage folder and no scrape targets, and is stopped before the script exits.

Exit status: 0 when every check passes, 1 when a check fails, 2 for usage errors
(a missing scrape file, no prometheus or promtool binary, Prometheus failing to start).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
DEFAULT_RULES = REPO_ROOT / "deploy" / "prometheus"
INSTALL_COMMAND = "apt-get install -y --no-install-recommends prometheus"
READY_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 10.0
PROMTOOL_TIMEOUT_SECONDS = 120.0
START_ATTEMPTS = 3

# Values for Grafana's built-in variables, chosen so that every place where Grafana
# allows them (range selectors, arithmetic, label values) still parses.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__interval_ms": "60000",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__from": "1700000000000",
    "__to": "1700003600000",
}
# Value for a dashboard variable whose value comes from a query or the user. It is a
# valid label value and a valid regular expression.
PLACEHOLDER_VALUE = "placeholder"

VARIABLE_REFERENCE = re.compile(
    r"\$\{(?P<braced>\w+)(?::[^}]*)?\}"  # ${name} and ${name:format}
    r"|\[\[(?P<bracketed>\w+)(?::\w+)?\]\]"  # [[name]] and [[name:format]], deprecated
    r"|\$(?P<plain>\w+)"  # $name
)
# A data source uid that names a dashboard variable, such as `${datasource}`.
DATASOURCE_VARIABLE = re.compile(r"^\$\{?(\w+)(?::\w+)?\}?$")

# fmt: off
# PromQL words that are never metric names. PromQL matches them without regard to case.
PROMQL_KEYWORDS = frozenset({
    "and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "start", "end",
})
PROMQL_AGGREGATIONS = frozenset({
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile", "limitk", "limit_ratio",
})
# Keywords followed by a list of label names in parentheses.
PROMQL_LABEL_LIST_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right",
})
# fmt: on

TOKEN_PATTERNS = [
    ("space", re.compile(r"\s+")),
    ("comment", re.compile(r"#[^\n]*")),
    (
        "string",
        re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.DOTALL),
    ),
    # Range and subquery brackets hold only durations, such as [5m] or [1h:30s].
    ("range", re.compile(r"\[[^\]]*\]")),
    ("duration", re.compile(r"(?:\d+(?:ms|[smhdwy]))+(?![\w:])")),
    ("number", re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")),
    ("identifier", re.compile(r"[A-Za-z_:][\w:]*")),
    ("punctuation", re.compile(r"[(){},@]")),
    ("operator", re.compile(r"==|!=|=~|!~|>=|<=|[-+*/%^=<>!]")),
]


class UsageError(Exception):
    """A problem with the arguments or the environment, reported with exit status 2."""


class PortTakenError(Exception):
    """Prometheus exited because another process took its port first."""


@dataclass
class Expression:
    """A PromQL expression to check, with where it comes from for the failure messages."""

    source: str
    # The expression with Grafana variables replaced, as Prometheus receives it.
    text: str
    # The expression as the file writes it, for the failure messages.
    original: str = ""
    # Whether to send it to Prometheus. Alert expressions were loaded by Prometheus
    # already, so only their metric names are checked.
    parse: bool = True

    def shown(self) -> str:
        return self.original or self.text


@dataclass
class CheckResult:
    failures: list[str] = field(default_factory=list)
    expressions: list[Expression] = field(default_factory=list)
    dashboards: int = 0
    panels: int = 0
    rule_files: list[Path] = field(default_factory=list)
    rule_test_files: list[Path] = field(default_factory=list)
    rules: int = 0
    # Series names that recording rules define, which no scrape contains.
    recorded_names: set[str] = field(default_factory=set)


# --- PromQL ----------------------------------------------------------------------


def tokenize_promql(expression: str) -> list[tuple[str, str]]:
    """Split a PromQL expression into (kind, text) tokens, without spaces and comments.

    Raises ValueError on a character that starts no PromQL token.
    """
    tokens = []
    position = 0
    while position < len(expression):
        for kind, pattern in TOKEN_PATTERNS:
            match = pattern.match(expression, position)
            if match:
                if kind not in ("space", "comment"):
                    tokens.append((kind, match.group()))
                position = match.end()
                break
        else:
            raise ValueError(
                f"unexpected character {expression[position]!r} at offset {position}"
            )
    return tokens


def skip_group(
    tokens: list[tuple[str, str]], start: int, opening: str, closing: str
) -> int:
    """Return the index after the bracket that closes the one at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index] == ("punctuation", opening):
            depth += 1
        elif tokens[index] == ("punctuation", closing):
            depth -= 1
            if depth == 0:
                return index + 1
    return len(tokens)


def names_in_matchers(tokens: list[tuple[str, str]]) -> set[str]:
    """Return the metric names that `__name__="..."` matchers in a `{...}` block select."""
    names = set()
    for index in range(len(tokens) - 2):
        identifier, operator, value = tokens[index : index + 3]
        if (
            identifier == ("identifier", "__name__")
            and operator == ("operator", "=")
            and value[0] == "string"
        ):
            names.add(value[1][1:-1])
    return names


def metric_names(expression: str) -> set[str]:
    """Return the metric names that a PromQL expression selects.

    Skips string literals, label matchers, range and subquery brackets, label lists
    after by/without/on/ignoring/group_left/group_right, function and aggregation
    names, keywords, durations and numbers. Raises ValueError on a tokenizing error.
    """
    tokens = tokenize_promql(expression)
    names = set()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        next_token = tokens[index + 1] if index + 1 < len(tokens) else ("", "")

        if (kind, text) == ("punctuation", "{"):
            end = skip_group(tokens, index, "{", "}")
            names |= names_in_matchers(tokens[index + 1 : end - 1])
            index = end
            continue
        if kind != "identifier":
            index += 1
            continue

        word = text.lower()
        if word in PROMQL_LABEL_LIST_KEYWORDS and next_token == ("punctuation", "("):
            index = skip_group(tokens, index + 1, "(", ")")
            continue
        is_call = next_token == ("punctuation", "(")
        is_grouped_aggregation = word in PROMQL_AGGREGATIONS and next_token[
            1
        ].lower() in ("by", "without")
        if not (is_call or is_grouped_aggregation or word in PROMQL_KEYWORDS):
            names.add(text)
        index += 1
    return names


def substitute_variables(expression: str, variable_values: dict[str, str]) -> str:
    """Replace Grafana variable references with values under which the expression parses."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        return variable_values.get(name, PLACEHOLDER_VALUE)

    return VARIABLE_REFERENCE.sub(value_of, expression)


# --- Dashboards ------------------------------------------------------------------


def iter_panels(panels: list):
    """Yield every panel, including the panels nested in rows."""
    for panel in panels:
        yield panel
        if isinstance(panel, dict):
            yield from iter_panels(panel.get("panels") or [])


def variable_values(templating: list[dict]) -> dict[str, str]:
    """Return a parseable value for each dashboard variable that is not filled by a query.

    Interval, custom, constant and text box variables keep their own value, because
    they can stand where a placeholder word would not parse, such as in `[$window]`.
    """
    values = {}
    for variable in templating:
        name = variable.get("name")
        if not name or variable.get("type") in ("query", "datasource", "adhoc"):
            continue
        current = (variable.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else None
        # "$__all" and "$__auto_interval_..." are Grafana's own values, not the variable's.
        if not current or str(current).startswith("$"):
            options = variable.get("options") or []
            current = options[0].get("value") if options else None
        if not current and isinstance(variable.get("query"), str):
            current = variable["query"].split(",")[0].strip()
        if current:
            values[name] = str(current)
    return values


def datasource_problem(datasource, datasource_variables: set[str]) -> str | None:
    """Return why a panel's or target's data source is unusable, or None when it is fine."""
    if not datasource:
        return "has no datasource"
    uid = datasource.get("uid") if isinstance(datasource, dict) else datasource
    if not isinstance(uid, str) or not uid:
        return "has a datasource without uid"
    match = DATASOURCE_VARIABLE.match(uid)
    if not match:
        return f"names the data source uid {uid!r}; use a datasource variable such as ${{datasource}} so that the dashboard imports into any Grafana"
    if match.group(1) not in datasource_variables:
        return f"names the datasource variable {uid!r}, which the dashboard does not define"
    return None


def is_mixed_datasource(datasource) -> bool:
    """Return whether a panel uses Grafana's mixed data source, where each target names its own."""
    uid = datasource.get("uid") if isinstance(datasource, dict) else datasource
    return uid == "-- Mixed --"


def variable_query_text(variable: dict) -> str:
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) else ""


def check_variable_query(
    dashboard_name: str, variable: dict, values: dict[str, str], result: CheckResult
) -> None:
    """Queue the PromQL inside a query variable: label_values(), query_result() or a bare expression."""
    query = variable_query_text(variable).strip()
    source = f"{dashboard_name}: variable {variable.get('name')!r}"
    if not query:
        result.failures.append(f"{source}: query variable has no query")
        return
    label_values = re.fullmatch(
        r"label_values\s*\((.*),\s*(\w+)\s*\)", query, re.DOTALL
    )
    if label_values:
        result.expressions.append(
            Expression(
                source,
                substitute_variables(label_values.group(1), values),
                label_values.group(1),
            )
        )
        return
    query_result = re.fullmatch(r"query_result\s*\((.*)\)", query, re.DOTALL)
    if query_result:
        result.expressions.append(
            Expression(
                source,
                substitute_variables(query_result.group(1), values),
                query_result.group(1),
            )
        )
        return
    if re.fullmatch(r"(label_values|label_names|metrics)\s*\(.*\)", query, re.DOTALL):
        return  # label_values(label), label_names() and metrics(regex) name no metric
    result.expressions.append(
        Expression(source, substitute_variables(query, values), query)
    )


def check_dashboard(
    path: Path, seen_uids: dict[str, Path], result: CheckResult
) -> None:
    """Check one dashboard file and queue its expressions for Prometheus."""
    name = path.name
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        result.failures.append(f"{name}: invalid JSON: {error}")
        return
    if not isinstance(dashboard, dict):
        result.failures.append(f"{name}: the top level is not a JSON object")
        return
    result.dashboards += 1

    uid = dashboard.get("uid")
    if not uid:
        result.failures.append(f"{name}: no dashboard uid")
    elif uid in seen_uids:
        result.failures.append(
            f"{name}: dashboard uid {uid!r} is also used by {seen_uids[uid].name}"
        )
    else:
        seen_uids[uid] = path

    templating = [
        variable
        for variable in (dashboard.get("templating") or {}).get("list") or []
        if isinstance(variable, dict)
    ]
    datasource_variables = {
        variable.get("name")
        for variable in templating
        if variable.get("type") == "datasource"
    }
    if not datasource_variables:
        result.failures.append(f"{name}: no variable of type datasource")
    values = variable_values(templating)

    for variable in templating:
        if variable.get("type") != "query":
            continue
        problem = datasource_problem(variable.get("datasource"), datasource_variables)
        if problem:
            result.failures.append(
                f"{name}: variable {variable.get('name')!r} {problem}"
            )
        check_variable_query(name, variable, values, result)

    panel_ids: dict[int, str] = {}
    for panel in iter_panels(dashboard.get("panels") or []):
        result.panels += 1
        if not isinstance(panel, dict):
            result.failures.append(
                f"{name}: a panel is not a JSON object: {panel!r:.80}"
            )
            continue
        title = panel.get("title") or "(untitled)"
        panel_id = panel.get("id")
        if not isinstance(panel_id, int):
            result.failures.append(f"{name}: panel {title!r} has no integer id")
        elif panel_id in panel_ids:
            result.failures.append(
                f"{name}: panel id {panel_id} is used by {panel_ids[panel_id]!r} and {title!r}"
            )
        else:
            panel_ids[panel_id] = title

        targets = panel.get("targets") or []
        if not targets:
            continue
        problem = datasource_problem(panel.get("datasource"), datasource_variables)
        if problem and not is_mixed_datasource(panel.get("datasource")):
            result.failures.append(f"{name}: panel {title!r} {problem}")
        for target in targets:
            if not isinstance(target, dict):
                result.failures.append(
                    f"{name}: panel {title!r} has a target that is not a JSON object"
                )
                continue
            source = f"{name}: panel {title!r}, target {target.get('refId', '?')}"
            problem = datasource_problem(target.get("datasource"), datasource_variables)
            if problem:
                result.failures.append(f"{source} {problem}")
            expression = target.get("expr")
            if not isinstance(expression, str) or not expression.strip():
                result.failures.append(f"{source} has no PromQL expression (expr)")
                continue
            result.expressions.append(
                Expression(source, substitute_variables(expression, values), expression)
            )


# --- Scrapes ---------------------------------------------------------------------


def read_scrapes(paths: list[Path]) -> tuple[set[str], set[str]]:
    """Return the series names with samples and the metric names declared by `# TYPE`.

    Raises UsageError when a file is missing, unreadable or not in the text format.
    """
    series = set()
    declared = set()
    sample_line = re.compile(r"([A-Za-z_:][\w:]*)(?:\{|\s)")
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"scrape file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read scrape file {path}: {error}") from None
        samples_in_file = 0
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                fields = line.split()
                if len(fields) >= 4 and fields[1] == "TYPE":
                    declared.add(fields[2])
                continue
            match = sample_line.match(line + " ")
            if not match:
                raise UsageError(
                    f"{path}:{number}: not a line of the Prometheus text format: {line[:80]!r}"
                )
            series.add(match.group(1))
            samples_in_file += 1
        if samples_in_file == 0:
            raise UsageError(f"scrape file {path} contains no samples")
    return series, declared


def check_metric_names(
    result: CheckResult, series: set[str], declared: set[str]
) -> None:
    known = series | result.recorded_names
    for expression in result.expressions:
        try:
            names = metric_names(expression.text)
        except ValueError as error:
            result.failures.append(
                f"{expression.source}: cannot read the metric names: {error}\n"
                f"    expression: {expression.shown()}"
            )
            continue
        for name in sorted(names - known):
            hint = ""
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name in declared or base in declared:
                hint = (
                    " (declared by # TYPE, but the scrape has no sample of this series)"
                )
            result.failures.append(
                f"{expression.source}: metric {name} is not in the scrape files{hint}\n"
                f"    expression: {expression.shown()}"
            )


# --- Prometheus and promtool -----------------------------------------------------


def local_opener() -> urllib.request.OpenerDirector:
    """Return a URL opener that ignores proxy settings, so requests stay on 127.0.0.1."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalPrometheus:
    """A Prometheus on 127.0.0.1 with temporary storage and no scrape targets.

    Use it as a context manager: leaving the block stops the process and removes
    its folder, also after an error or an interrupt.
    """

    def __init__(self, binary: str, rule_files: list[Path]):
        self.binary = binary
        self.rule_files = rule_files
        self.process: subprocess.Popen | None = None
        self.folder = tempfile.TemporaryDirectory(prefix="ssl-dashboard-check-")
        self.base_url = ""
        self.opener = local_opener()

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.folder.cleanup()

    def _start(self) -> None:
        # Another process can take the free port before Prometheus binds it.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except PortTakenError:
                if attempt == START_ATTEMPTS:
                    raise UsageError(
                        f"prometheus could not listen on a free port of 127.0.0.1 "
                        f"in {START_ATTEMPTS} attempts"
                    ) from None

    def _start_once(self) -> None:
        folder = Path(self.folder.name)
        config = folder / "prometheus.yml"
        rule_lines = "".join(
            f"  - {json.dumps(str(path.resolve()))}\n" for path in self.rule_files
        )
        config.write_text(
            "# No scrape targets: this Prometheus only parses queries and loads rules.\n"
            "global:\n  evaluation_interval: 1h\n"
            + ("rule_files:\n" + rule_lines if rule_lines else "")
            + "scrape_configs: []\n",
            encoding="utf-8",
        )
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        log_path = folder / "prometheus.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in tail(log_path):
                    raise PortTakenError()
                raise UsageError(
                    f"prometheus exited with status {self.process.returncode} at start:\n{tail(log_path)}"
                )
            try:
                with self.opener.open(
                    f"{self.base_url}/-/ready", timeout=1
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise UsageError(
            f"prometheus was not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{tail(log_path)}"
        )

    def get(self, path: str, parameters: dict[str, str] | None = None) -> dict:
        """Send a GET to the HTTP API and return the decoded JSON, also for error responses."""
        url = f"{self.base_url}{path}"
        if parameters:
            url += "?" + urllib.parse.urlencode(parameters)
        try:
            with self.opener.open(url, timeout=QUERY_TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return json.loads(body)
            except json.JSONDecodeError:
                return {
                    "status": "error",
                    "errorType": f"http {error.code}",
                    "error": body.decode(errors="replace")[:200],
                }
        except (urllib.error.URLError, OSError) as error:
            raise UsageError(
                f"request to prometheus at {url} failed: {error}"
            ) from None

    def query_error(self, expression: str) -> str | None:
        """Return Prometheus's error for an instant query of `expression`, or None."""
        answer = self.get("/api/v1/query", {"query": expression, "time": "1700000000"})
        if answer.get("status") == "success":
            return None
        return f"{answer.get('errorType', 'error')}: {answer.get('error', answer)}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(
            path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        )
    except OSError:
        return "(no log)"


def run_promtool(promtool: str, arguments: list[str]) -> tuple[bool, str]:
    try:
        completed = subprocess.run(
            [promtool, *arguments],
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=PROMTOOL_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {PROMTOOL_TIMEOUT_SECONDS:.0f} s"
    return completed.returncode == 0, (completed.stdout + completed.stderr).strip()


def check_rule_files(promtool: str, result: CheckResult) -> list[Path]:
    """Run promtool on the rule files and their tests, and return the rule files that pass."""
    loadable = []
    for path in result.rule_files:
        passed, output = run_promtool(promtool, ["check", "rules", str(path)])
        if passed:
            loadable.append(path)
        else:
            result.failures.append(
                f"promtool check rules {path.name} failed:\n{indent(output)}"
            )
    for path in result.rule_test_files:
        passed, output = run_promtool(promtool, ["test", "rules", str(path)])
        if not passed:
            result.failures.append(
                f"promtool test rules {path.name} failed:\n{indent(output)}"
            )
    return loadable


def collect_rule_expressions(prometheus: LocalPrometheus, result: CheckResult) -> None:
    """Read the loaded rules back from Prometheus, so the YAML needs no parser here."""
    answer = prometheus.get("/api/v1/rules")
    if answer.get("status") != "success":
        result.failures.append(
            f"cannot list the loaded rules: {answer.get('error', answer)}"
        )
        return
    for group in answer["data"]["groups"]:
        file_name = Path(group.get("file", "?")).name
        for rule in group.get("rules", []):
            result.rules += 1
            if rule.get("type") == "recording":
                result.recorded_names.add(rule["name"])
            kind = "alert" if rule.get("type") == "alerting" else "record"
            source = f"{file_name}: {kind} {rule.get('name')}"
            result.expressions.append(
                Expression(source, rule.get("query", ""), parse=False)
            )


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# --- Command line ----------------------------------------------------------------


def find_binary(option: str | None, name: str, sibling_of: str | None = None) -> str:
    """Return the `name` binary from the option, next to `sibling_of`, or on PATH."""
    hint = f"install it with `{INSTALL_COMMAND}` or pass --{name}-bin PATH"
    if option:
        if not Path(option).is_file():
            raise UsageError(f"{name} binary not found at {option}: {hint}")
        return option
    if sibling_of:
        sibling = Path(sibling_of).with_name(name)
        if sibling.is_file():
            return str(sibling)
    found = shutil.which(name)
    if not found:
        raise UsageError(f"no {name} binary on PATH: {hint}")
    return found


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check the ssl-train Grafana dashboards and Prometheus alert rules against a real "
        "Prometheus and against metric scrapes of the coordinator and workers.",
    )
    parser.add_argument(
        "--scrape",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="a /metrics response in the Prometheus text format; repeat it for the coordinator and each worker",
    )
    parser.add_argument(
        "--prometheus-bin",
        metavar="PATH",
        help="prometheus binary (default: prometheus on PATH)",
    )
    parser.add_argument(
        "--promtool-bin",
        metavar="PATH",
        help="promtool binary (default: next to the prometheus binary, then promtool on PATH)",
    )
    parser.add_argument(
        "--dashboards",
        type=Path,
        default=DEFAULT_DASHBOARDS,
        metavar="DIR",
        help="folder of dashboard JSON files (default: %(default)s)",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=DEFAULT_RULES,
        metavar="DIR",
        help="folder of rule files (*.yaml) and promtool rule tests (*_test.yaml) (default: %(default)s)",
    )
    return parser.parse_args(argv)


def run_checks(arguments: argparse.Namespace) -> CheckResult:
    """Run every check. Raises UsageError for problems that stop the checks from running."""
    series, declared = read_scrapes(arguments.scrape)
    prometheus_binary = find_binary(arguments.prometheus_bin, "prometheus")
    promtool = find_binary(
        arguments.promtool_bin, "promtool", sibling_of=prometheus_binary
    )
    if not arguments.dashboards.is_dir():
        raise UsageError(f"dashboard folder not found: {arguments.dashboards}")
    if not arguments.rules.is_dir():
        raise UsageError(f"rule folder not found: {arguments.rules}")

    result = CheckResult()
    dashboard_files = sorted(arguments.dashboards.glob("*.json"))
    if not dashboard_files:
        result.failures.append(f"no dashboard files (*.json) in {arguments.dashboards}")
    seen_uids: dict[str, Path] = {}
    for path in dashboard_files:
        check_dashboard(path, seen_uids, result)

    rule_paths = sorted(
        [*arguments.rules.glob("*.yaml"), *arguments.rules.glob("*.yml")]
    )
    result.rule_test_files = [
        path for path in rule_paths if path.stem.endswith("_test")
    ]
    result.rule_files = [path for path in rule_paths if not path.stem.endswith("_test")]
    loadable_rules = check_rule_files(promtool, result)

    with LocalPrometheus(prometheus_binary, loadable_rules) as prometheus:
        for expression in result.expressions:
            if not expression.parse:
                continue
            error = prometheus.query_error(expression.text)
            if error:
                result.failures.append(
                    f"{expression.source}: Prometheus rejected the expression: {error}\n"
                    f"    expression: {expression.shown()}\n"
                    f"    sent as:    {expression.text}"
                )
        collect_rule_expressions(prometheus, result)

    check_metric_names(result, series, declared)
    return result


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    # SIGTERM ends the script through the same cleanup as Ctrl-C, which stops Prometheus.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        result = run_checks(arguments)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    if result.failures:
        print(f"{len(result.failures)} check(s) failed:", file=sys.stderr)
        for failure in result.failures:
            print(f"- {failure}", file=sys.stderr)
        return 1
    print(
        f"ok: {result.dashboards} dashboards ({result.panels} panels), {len(result.rule_files)} rule files "
        f"({result.rules} rules), {len(result.rule_test_files)} rule test files; "
        f"{len(result.expressions)} expressions parse and use only metrics from {len(arguments.scrape)} scrape files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
