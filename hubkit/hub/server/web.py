"""A minimal read-only web view of the local Hub: `/<repo>`, `/datasets/<repo>` and `/spaces/<repo>` render the
repo's card and its files, so that every URL hubkit prints opens a page instead of 404 JSON.

Cards are other users' text: the Markdown is rendered with raw HTML disabled (it shows as text), links go
through markdown-it's URL check (no `javascript:` or `data:` links), every other value is escaped, and the page
is served with a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from .records import PLURALS, Commit, Repo

CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'self'; form-action 'none'"
MAX_CARD_BYTES = 1 << 20
_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.meta{color:#555;font-size:.9rem}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;font-size:.9rem;text-align:left}code,pre{background:#f6f6f6}
pre{padding:.5rem;overflow:auto}.badge{background:#eee;border-radius:4px;padding:0 .4rem;font-size:.8rem}
.card img{max-width:100%}"""


def _prefix(repo_type: str) -> str:
    return "" if repo_type == "model" else f"{PLURALS[repo_type]}/"


def _split_card(text: str) -> tuple[str, str]:
    """(YAML front matter, Markdown body) of a card."""
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[4:end], text[end + 4:].lstrip("\n")
    return "", text


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML shown as text and unsafe link schemes dropped."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").render(text)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def repo_page(repo: Repo, commit: Commit, card_text: str | None) -> str:
    """The HTML page of one repo at one commit."""
    e = html.escape
    files_base = f"/{_prefix(repo.type)}{quote(repo.id)}/resolve/{commit.id}/"
    meta, body = _split_card(card_text or "")
    rows = "".join(f"<tr><td><a href=\"{e(files_base + quote(path))}\">{e(path)}</a></td><td>{_size(entry.size)}</td>"
                   f"<td>{'LFS' if entry.lfs else ''}</td></tr>" for path, entry in sorted(commit.tree.items()))
    card = render_markdown(body) if body.strip() else "<p><em>This repo has no card (README.md).</em></p>"
    front = f"<details><summary>Card metadata</summary><pre>{e(meta)}</pre></details>" if meta.strip() else ""
    kind = {"model": "model", "dataset": "dataset", "space": "Space"}[repo.type]
    private = ' <span class="badge">private</span>' if repo.private else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(repo.id)} · local Hub</title>
<base href="{e(files_base)}"><style>{_STYLE}</style></head>
<body><h1>{e(repo.id)}{private}</h1>
<p class="meta">{e(kind)} on the local Hub · commit <code>{e(commit.id[:10])}</code> ({e(commit.date)}) ·
{e(commit.title)}</p>
{front}
<div class="card">{card}</div>
<h2>Files</h2><table><tr><th>file</th><th>size</th><th></th></tr>{rows}</table>
</body></html>"""


def namespace_page(namespace: str, repos: dict[str, list[Repo]]) -> str:
    """The HTML page of a user or organization: its models, datasets and Spaces, each a link to its repo page."""
    e = html.escape
    sections = []
    for repo_type, title in (("model", "Models"), ("dataset", "Datasets"), ("space", "Spaces")):
        listed = sorted(repos.get(repo_type, []), key=lambda r: r.id)
        badge = ' <span class="badge">private</span>'
        items = "".join(f'<li><a href="/{_prefix(repo_type)}{e(quote(r.id))}">{e(r.id)}</a>'
                        f"{badge if r.private else ''}</li>" for r in listed)
        sections.append(f"<h2>{title} ({len(listed):,})</h2>" + (f"<ul>{items}</ul>" if items else "<p>None.</p>"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(namespace)} · local Hub</title><style>{_STYLE}</style></head>
<body><h1>{e(namespace)}</h1><p class="meta">user or organization on the local Hub</p>
{"".join(sections)}
</body></html>"""


def not_found_page(message: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found · local Hub</title>"
            f"<style>{_STYLE}</style></head><body><h1>Not found</h1><p>{html.escape(message)}</p></body></html>")


def page_headers() -> dict[str, Any]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
