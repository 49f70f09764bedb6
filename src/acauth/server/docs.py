"""A readable page of the OpenAPI document, rendered without external assets.

Operations are grouped by tag (the AC API, the admin API); the AC error codes and
the admin API's problem types follow, each problem type under the anchor its
``type`` URI names (``/docs#problem-not-found``).
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from acauth.errors import code_table
from acauth.server.problems import TYPES

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .25rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
    "h3{font-size:1.05rem;margin-top:1.75rem}"
    ".m{font-weight:bold;color:#fff;background:#336;padding:0 .4rem;border-radius:3px}</style>"
)


def _e(value: object) -> str:
    return html.escape(str(value))


def _error_rows() -> str:
    rows = ["<tr><td>0</td><td>success</td><td></td></tr>"]
    for info in code_table():
        causes = ", ".join(info.causes)
        rows.append(
            f"<tr><td>{info.code}</td><td>{_e(info.meaning)}</td><td>{_e(causes)}</td></tr>"
        )
    return "".join(rows)


def _problem_rows() -> str:
    return "".join(
        f"<tr id='problem-{t.slug}'><td><code>{_e(t.uri)}</code></td><td>{t.status}</td>"
        f"<td>{_e(t.title)}</td><td>{_e(t.meaning)}</td></tr>"
        for t in TYPES
    )


def _ref(schema: dict[str, Any]) -> str:
    """The name of the schema ``schema`` refers to (``""`` if it is not a reference)."""
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def _shape(content: dict[str, Any]) -> str:
    """A link to the shape of a body (the admin API's shapes are listed on the page)."""
    for media in content.values():
        name = _ref(media.get("schema", {}))
        if name.startswith("Admin"):
            return f"<a href='#schema-{_e(name)}'><code>{_e(name)}</code></a>"
    return ""


def _field(name: str, schema: dict[str, Any], required: bool) -> str:
    of = _ref(schema.get("items", {})) or _ref(schema)
    kind = f" ({_e(of)}{'[]' if 'items' in schema else ''})" if of else ""
    return f"<code>{_e(name)}</code>{'' if required else '?'}{kind}"


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    parts = [
        f"<h3><span class='m'>{_e(method.upper())}</span> <code>{_e(path)}</code> "
        f"— {_e(op.get('summary', ''))}</h3>"
    ]
    if op.get("description"):
        parts.append(f"<p>{_e(op['description'])}</p>")
    params = op.get("parameters", [])
    if params:
        examples = any("example" in p for p in params)
        rows = "".join(
            f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
            f"<td>{_e(p.get('description', ''))}</td>"
            + (f"<td><code>{_e(p.get('example', ''))}</code></td>" if examples else "")
            + "</tr>"
            for p in params
        )
        head = "<th>example</th>" if examples else ""
        parts.append(
            f"<table><tr><th>parameter</th><th>in</th><th>meaning</th>{head}</tr>{rows}</table>"
        )
    body = op.get("requestBody")
    if body:
        need = "required" if body.get("required") else "optional"
        parts.append(f"<p>Body ({need}): JSON, {_shape(body.get('content', {}))}.</p>")
    answers = []
    for status, response in op.get("responses", {}).items():
        if status == "default" or not status.startswith("2"):
            continue
        shape = _shape(response.get("content", {}))
        answers.append(f"{_e(status)} {_e(response.get('description', ''))} {shape}".rstrip())
    if answers:
        tail = "; else a problem" if op.get("security") else ""
        parts.append(f"<p>Answers: {'; '.join(answers)}{tail}.</p>")
    return parts


def _schemas(spec: dict[str, Any], prefix: str) -> list[str]:
    parts = []
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        if not name.startswith(prefix):
            continue
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = ", ".join(_field(p, props[p], p in required) for p in props)
        parts.append(
            f"<tr id='schema-{_e(name)}'><td><code>{_e(name)}</code></td><td>{fields}</td></tr>"
        )
    if not parts:
        return []
    return [
        "<h3>Shapes</h3><p>A field marked ? may be left out.</p>",
        f"<table><tr><th>name</th><th>fields</th></tr>{''.join(parts)}</table>",
    ]


def render_docs(openapi: bytes) -> str:
    spec: dict[str, Any] = orjson.loads(openapi)
    info = spec["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(info['title'])}</title>{_STYLE}",
        f"</head><body><h1>{_e(info['title'])}</h1>",
        f"<p>{_e(info.get('description', ''))}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
    ]
    tags = spec.get("tags") or [{"name": ""}]
    for tag in tags:
        name = tag["name"]
        if name:
            heading = tag.get("x-displayName", name)
            parts.append(f"<h2 id='tag-{_e(name)}'>{_e(heading)}</h2>")
            parts.append(f"<p>{_e(tag.get('description', ''))}</p>")
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                if not name or name in op.get("tags", []):
                    parts.extend(_operation(path, method, op))
        if name == "admin":
            parts.extend(_schemas(spec, "Admin"))
    parts.append(
        "<h2 id='ac-codes'>AC error codes</h2>"
        "<table><tr><th>code</th><th>meaning</th><th>messages</th></tr>"
        f"{_error_rows()}</table>"
    )
    parts.append(
        "<h2 id='problems'>Admin API problem types</h2>"
        "<p>Every refusal of the admin API is <code>application/problem+json</code> "
        "(RFC 9457): <code>type</code> (below), <code>title</code>, <code>status</code>, "
        "<code>detail</code>.</p>"
        "<table><tr><th>type</th><th>status</th><th>title</th><th>meaning</th></tr>"
        f"{_problem_rows()}</table>"
    )
    parts.append("</body></html>")
    return "".join(parts)
