"""Collections: create, list, read, update and delete, and their items; stored by `Store` like repos.

A caller sees a private collection only when they may write to its owner, and sees only the items they could
read themselves: a private repo in a public collection stays hidden from everyone else.
"""

from __future__ import annotations

import html
import secrets
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from .errors import BadRequest, HubError, NotFound, Unauthorized
from .http import MAX_JSON_BODY, Ctx, JSONResponse, int_param
from .records import Collection, now_iso
from .routing import Route

if TYPE_CHECKING:
    from .app import HubApp

ITEM_TYPES = ("model", "dataset", "space", "paper", "collection")


def _item_visible(app: HubApp, ctx: Ctx, item: dict) -> bool:
    """Whether the caller may see a collection item: a repo they can read, or a collection they can."""
    try:
        if item.get("type") in ("model", "dataset", "space"):
            app.repo(ctx, item["type"], str(item.get("id")))
        elif item.get("type") == "collection":
            _readable(app, ctx, str(item.get("slug") or item.get("id")))
        return True
    except HubError:
        return False


def _visible(app: HubApp, ctx: Ctx, coll: Collection) -> list[dict]:
    """The items the caller may see, in the collection's order."""
    return [i for i in coll.items if _item_visible(app, ctx, i)]


def _shown(app: HubApp, ctx: Ctx, coll: Collection) -> dict[str, Any]:
    """The collection as the caller may see it: items they cannot read are left out (private repos), and
    positions count only the items shown (0, 1, 2, ...), so no gap betrays a hidden one."""
    out = coll.to_json()
    out["items"] = [{**item, "position": n} for n, item in enumerate(_visible(app, ctx, coll))]
    return out


def _renumber(coll: Collection) -> None:
    for n, item in enumerate(coll.items):
        item["position"] = n


def _find(app: HubApp, ctx: Ctx, coll: Collection, item_id: str) -> dict:
    """An item the caller may see, by `_id`.

    Raises:
        NotFound: no such item, or one the caller may not see (the same answer for both).
    """
    for item in coll.items:
        if item.get("_id") == item_id and _item_visible(app, ctx, item):
            return item
    raise NotFound(f"Item {item_id[:40]} not found in collection {coll.slug}")


def _may_see(ctx: Ctx, coll: Collection) -> bool:
    return ctx.may_see(coll.namespace, coll.private)


def _readable(app: HubApp, ctx: Ctx, slug: str) -> Collection:
    coll = app.store.get_collection(slug)
    if not _may_see(ctx, coll):
        raise NotFound(f"Collection {slug} not found")
    return coll


def _note(text: Any) -> dict[str, str]:
    return {"text": str(text), "html": html.escape(str(text))}


def create_collection(app: HubApp, ctx: Ctx) -> Response:
    body = ctx.json()
    ns = body.get("namespace") or (ctx.user.name if ctx.user else None)
    if ns is None:
        raise Unauthorized("You must be authenticated to create a collection")
    user = app.require_write(ctx, ns)
    title = str(body.get("title") or "").strip()
    if not title:
        raise BadRequest("Missing collection title")
    coll, created = app.store.create_collection(ns, "user" if ns == user.name else "org", title,
                                                str(body.get("description") or ""), bool(body.get("private")))
    if not created:
        return JSONResponse({"slug": coll.slug, "error": "Collection already exists"}, status_code=409)
    return JSONResponse(coll.to_json())


def list_collections(app: HubApp, ctx: Ctx) -> Response:
    owner, item = ctx.q("owner"), ctx.q("item")
    out = []
    for coll in app.store.iter_collections():
        if (owner and coll.namespace != owner) or not _may_see(ctx, coll):
            continue
        listed = _shown(app, ctx, coll)
        if item and not any(f"{i['type']}s/{i['id']}" == item for i in listed["items"]):
            continue
        listed.pop("position", None)
        out.append(listed)
    limit = int_param(ctx, "limit", default=len(out) or 1, minimum=1)
    return JSONResponse(out[:limit])


def get_collection(app: HubApp, ctx: Ctx, ns: str, name: str) -> Response:
    return JSONResponse(_shown(app, ctx, _readable(app, ctx, f"{ns}/{name}")))


def delete_collection(app: HubApp, ctx: Ctx, ns: str, name: str) -> Response:
    slug = f"{ns}/{name}"
    with app.store.lock(f"collection:{slug}"):
        coll = _readable(app, ctx, slug)
        app.require_write(ctx, coll.namespace)
        app.store.delete_collection(slug)
    return JSONResponse({})


def _change(app: HubApp, ctx: Ctx, slug: str, edit) -> Collection | Response:
    """Apply `edit(collection)` under the collection's lock and save it; `edit` may answer instead (a 409)."""
    with app.store.lock(f"collection:{slug}"):
        coll = _readable(app, ctx, slug)
        app.require_write(ctx, coll.namespace)
        answer = edit(coll)
        if isinstance(answer, Response):
            return answer
        coll.last_updated = now_iso()
        app.store.save_collection(coll)
        return coll


def update_collection(app: HubApp, ctx: Ctx, ns: str, name: str) -> Response:
    body = ctx.json()

    def edit(coll: Collection) -> None:
        for key in ("title", "description", "private", "theme", "position"):
            if key in body:
                setattr(coll, key, body[key])

    coll = _change(app, ctx, f"{ns}/{name}", edit)
    return coll if isinstance(coll, Response) else JSONResponse({"data": _shown(app, ctx, coll)})


def add_item(app: HubApp, ctx: Ctx, ns: str, name: str) -> Response:
    body = ctx.json()
    item = body.get("item")
    if not isinstance(item, dict):
        raise BadRequest("Invalid item: expected an object {'type': ..., 'id': ...}")
    if item.get("type") not in ITEM_TYPES:
        raise BadRequest(f"Invalid item type: expected one of {', '.join(ITEM_TYPES)}")
    if not isinstance(item.get("id"), str) or not item["id"] or len(item["id"]) > 250:
        raise BadRequest("Invalid item id: expected a non-empty string")

    def edit(coll: Collection) -> Response | None:
        if item["type"] in ("model", "dataset", "space"):
            app.repo(ctx, item["type"], item["id"])  # only a repo the caller can read (checked before any 409)
        if any(i["id"] == item["id"] and i["type"] == item["type"] for i in coll.items):
            return JSONResponse({"error": "Item already exists"}, status_code=409)
        entry = {"_id": secrets.token_hex(12), "id": item["id"], "type": item["type"], "position": len(coll.items)}
        if body.get("note"):
            entry["note"] = _note(body["note"])
        coll.items.append(entry)
        return None

    coll = _change(app, ctx, f"{ns}/{name}", edit)
    return coll if isinstance(coll, Response) else JSONResponse(_shown(app, ctx, coll))


def update_item(app: HubApp, ctx: Ctx, ns: str, name: str, item_id: str) -> Response:
    body = ctx.json()

    position = body.get("position")
    if "position" in body and (not isinstance(position, int) or isinstance(position, bool) or position < 0):
        raise BadRequest("Invalid position: expected a non-negative integer")

    def edit(coll: Collection) -> None:
        item = _find(app, ctx, coll, item_id)
        if "note" in body:
            item["note"] = _note(body["note"])
        if position is not None:  # a position among the items the caller sees: put it before the one there now
            coll.items.remove(item)
            shown = _visible(app, ctx, coll)
            at = coll.items.index(shown[position]) if position < len(shown) else len(coll.items)
            coll.items.insert(at, item)
            _renumber(coll)

    coll = _change(app, ctx, f"{ns}/{name}", edit)
    return coll if isinstance(coll, Response) else JSONResponse(_shown(app, ctx, coll))


def delete_item(app: HubApp, ctx: Ctx, ns: str, name: str, item_id: str) -> Response:
    def edit(coll: Collection) -> None:
        coll.items.remove(_find(app, ctx, coll, item_id))
        _renumber(coll)

    coll = _change(app, ctx, f"{ns}/{name}", edit)
    return coll if isinstance(coll, Response) else JSONResponse(_shown(app, ctx, coll))


ROUTES = [
    Route(("POST",), "api/collections", create_collection, body=MAX_JSON_BODY),
    Route(("GET",), "api/collections", list_collections),
    Route(("GET",), "api/collections/{ns}/{name}", get_collection),
    Route(("DELETE",), "api/collections/{ns}/{name}", delete_collection, body=MAX_JSON_BODY),
    Route(("PATCH",), "api/collections/{ns}/{name}", update_collection, body=MAX_JSON_BODY),
    Route(("POST",), "api/collections/{ns}/{name}/items", add_item, body=MAX_JSON_BODY),
    Route(("PATCH",), "api/collections/{ns}/{name}/items/{item_id}", update_item, body=MAX_JSON_BODY),
    Route(("DELETE",), "api/collections/{ns}/{name}/items/{item_id}", delete_item, body=MAX_JSON_BODY),
]
