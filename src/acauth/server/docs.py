"""A readable page of the OpenAPI document, rendered without external assets."""

from __future__ import annotations

import html
from typing import Any

import orjson

from acauth.errors import code_table


def _error_rows() -> str:
    rows = ["<tr><td>0</td><td>success</td><td></td></tr>"]
    for info in code_table():
        causes = ", ".join(info.causes)
        rows.append(
            f"<tr><td>{info.code}</td><td>{html.escape(info.meaning)}</td>"
            f"<td>{html.escape(causes)}</td></tr>"
        )
    return "".join(rows)


def render_docs(openapi: bytes) -> str:
    spec: dict[str, Any] = orjson.loads(openapi)
    info = spec["info"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(info['title'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .25rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
        ".m{font-weight:bold;color:#fff;background:#336;padding:0 .4rem;border-radius:3px}</style>",
        f"</head><body><h1>{html.escape(info['title'])}</h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
    ]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            parts.append(
                f"<h2><span class='m'>{method.upper()}</span> <code>{html.escape(path)}</code> "
                f"— {html.escape(op.get('summary', ''))}</h2>"
            )
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            rows = "".join(
                f"<tr><td><code>{html.escape(p['name'])}</code></td>"
                f"<td>{html.escape(p.get('description', ''))}</td>"
                f"<td><code>{html.escape(str(p.get('example', '')))}</code></td></tr>"
                for p in op.get("parameters", [])
            )
            parts.append(
                f"<table><tr><th>header</th><th>meaning</th><th>example</th></tr>{rows}</table>"
            )
    parts.append(
        "<h2>Error codes</h2><table><tr><th>code</th><th>meaning</th><th>messages</th></tr>"
        f"{_error_rows()}</table>"
    )
    parts.append("</body></html>")
    return "".join(parts)
