"""Local Hub throughput and footprint, side by side with their floors, in one run.

    python scripts/bench/hub.py                # full sizes (500 MB, 1 GB, 2,000 repos; ~5 GB of disk)
    python scripts/bench/hub.py --scale 0.1    # a quick look

Measures:
  1. download of a 500 MB file through the stock client (hf_hub_download) vs `cp` of the same file (target >= 0.5x)
  2. upload of a 500 MB file, interleaved rounds against `curl -T` into a trivial h11 receiver (the floor of one
     HTTP upload on loopback): `curl -T` into the Hub's signed LFS URL (the server alone), hubkit's push_folder
     and the stock client's upload_file (inline base64), end to end; the server's bytes written and read per
     payload byte from /proc/PID/io (targets: >= 0.8x where the client is not the bottleneck; written <= 1.05x,
     read <= 0.05x)
  3. list_models(author, cardData=True) over 2,000 and 20,000 repos with cards, against a trivial server (uvicorn, a
     dict of the same pages) serving the same JSON bytes and Link headers, interleaved rounds (target <= 1.3x)
  4. peak server RSS while receiving a 1 GB file through hubkit's upload path (target <= 200 MB)
  5. small-request latency: model_info 50 times on one kept-alive connection (target <= 10 ms median)
  6. adversarial requests, anonymous: the whole commit list of a repo with a long history of large trees
     (200 commits of 5,000 files), and a YAML alias bomb sent to validate-yaml; server RSS over idle (target
     <= 100 MB: the commit cache is bounded by bytes) and the time of a small request made meanwhile
  7. fair service under attack: one client (127.0.0.2, its own process) holds 1,000 hostile connections
     (idle, slowloris headers, trickled bodies, 1 MB YAML cards in a loop) while another (127.0.0.1) makes
     model_info, download and commit calls; their p99 against the same calls with no attack (target: p99
     under 1 s, 0 errors)
  8. revisions on a repo of ~4,150 files and 162 commits: every revision by hash, an unknown hash, a tree at an
     old hash (beside the tree at main), the second commit page; server RSS before and after (targets: any
     revision <= 50 ms, commits?p=1 <= 100 ms, memory flat)

    python scripts/bench/hub.py --rows attack,revisions   # only rows 7 and 8 (a few minutes, little disk)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from _isolated import isolate  # the script's folder is on sys.path

work, PORT = isolate("hub")

import psutil  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download  # noqa: E402

from hubkit.hub import push_folder, start_local_hub  # noqa: E402
from hubkit.hub.client import TRANSFER_HEADER  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402
from hubkit.hub.server.records import FileEntry, Operation  # noqa: E402
from hubkit.hub.server.storage import Store  # noqa: E402

MB = 1024 * 1024


def write_file(path: Path, size: int) -> None:
    block = os.urandom(4 * MB)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())


def drop_caches_if_possible() -> None:
    subprocess.run(["sync"], check=False)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.01)

    def stop(self) -> int:
        self.stop_flag.set()
        self.join()
        return self.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    ap.add_argument("--rows", default="upload,listing,transfer,attack,revisions",
                    help="comma-separated: upload (row 2), listing (row 3), transfer (rows 1, 4-6), attack (row 7), "
                         "revisions (row 8)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the upload rows")
    args = ap.parse_args()
    wanted = set(args.rows.split(","))

    root = work / "hub"
    token = Users(root).add_user("bench")
    server = start_local_hub(root, port=PORT, detach=False)
    rows: list[tuple[str, str, str, str]] = []
    try:
        if "attack" in wanted:
            rows += attack_rows(server, token, seconds=30 * max(args.scale, 0.34))
        if "revisions" in wanted:
            rows += revision_rows(server, root)
        if "listing" in wanted:
            rows += listing_rows(server, token, root, args)
        if "upload" in wanted:
            rows += upload_rows(server, token, args)
        if "transfer" in wanted:
            transfer_rows(server, token, root, args, rows)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)


RECEIVER = r"""
import asyncio, sys, h11

class Receiver(asyncio.Protocol):  # reads one upload, discards it, answers 200
    def connection_made(self, transport):
        self.transport, self.conn = transport, h11.Connection(h11.SERVER)

    def data_received(self, data):
        self.conn.receive_data(data)
        while (event := self.conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
            if isinstance(event, h11.EndOfMessage):
                self.transport.write(self.conn.send(h11.Response(status_code=200, headers=[("content-length", "0")])))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
                self.transport.close()
                return

async def main():
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def _io(pid: int) -> dict[str, int]:
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {k: int(v) for k, v in fields.items()}


def _curl_put(path: Path, url: str, *extra: str) -> float:
    """Seconds `curl -T` takes to send `path` to `url` (no `Expect: 100-continue` round trip)."""
    t = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", "Expect:", *extra, "-T", str(path), url], check=True)
    return time.perf_counter() - t


def _inline_body(src: Path, dest: Path, path_in_repo: str) -> None:
    """The NDJSON body the stock client sends for `src` (a header line, then the file inline as base64)."""
    import base64
    import json

    with open(dest, "wb") as f:
        f.write(json.dumps({"key": "header", "value": {"summary": "inline", "description": ""}}).encode() + b"\n")
        f.write(b'{"key": "file", "value": {"content": "')
        f.write(base64.b64encode(src.read_bytes()))
        f.write(f'", "path": "{path_in_repo}", "encoding": "base64"}}}}'.encode())


def upload_rows(server, token: str, args) -> list[tuple[str, str, str, str]]:
    """Row 2: uploads against `curl -T` into a trivial h11 receiver, interleaved rounds, with server I/O."""
    import hashlib

    import httpx
    from _isolated import free_port

    size = int(500 * MB * args.scale)
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)], stdout=subprocess.PIPE, text=True)
    assert receiver.stdout.readline().strip() == "ready"
    stock = HfApi(endpoint=server.url, token=token)
    hubkit_api = HfApi(endpoint=server.url, token=token, headers={TRANSFER_HEADER: "lfs"})
    for name in ("curl", "push", "stock"):
        stock.create_repo(f"bench/up-{name}")
    kinds = ("curl", "inline", "push", "stock")
    times: dict[str, list[float]] = {k: [] for k in ("floor", "floor-inline", "hash", *kinds)}
    io: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    stock.create_repo("bench/up-inline")

    def measured(kind: str, fn) -> None:
        drop_caches_if_possible()  # no writeback left over from setting up the round competes with the upload
        before = _io(server.pid)
        times[kind].append(timed(fn))
        after = _io(server.pid)
        io[kind].append(((after["wchar"] - before["wchar"]) / size, (after["rchar"] - before["rchar"]) / size))

    try:
        for r in range(args.rounds):
            folder = work / f"up-{r}"
            folder.mkdir()
            files = {}
            for name in kinds:  # new bytes each time: the same content would be deduplicated
                files[name] = folder / name / "model.safetensors"
                files[name].parent.mkdir()
                write_file(files[name], size)
            body = folder / "inline.ndjson"
            _inline_body(files["inline"], body, f"model-{r}.safetensors")
            oid = hashlib.sha256(files["curl"].read_bytes()).hexdigest()
            batch = httpx.post(f"{server.url}/bench/up-curl.git/info/lfs/objects/batch",
                               headers={"Authorization": f"Bearer {token}"},
                               json={"operation": "upload", "objects": [{"oid": oid, "size": size}]}).json()
            href = batch["objects"][0]["actions"]["upload"]["href"]
            if r == 0:  # warm-up: the server's worker threads and first connection, not timed
                warm = folder / "warm.bin"
                write_file(warm, 8 * MB)
                wh = hashlib.sha256(warm.read_bytes()).hexdigest()
                wb = httpx.post(f"{server.url}/bench/up-curl.git/info/lfs/objects/batch",
                                headers={"Authorization": f"Bearer {token}"},
                                json={"operation": "upload", "objects": [{"oid": wh, "size": 8 * MB}]}).json()
                _curl_put(warm, wb["objects"][0]["actions"]["upload"]["href"])
            drop_caches_if_possible()
            times["floor"].append(_curl_put(files["curl"], f"http://127.0.0.1:{port}/upload"))
            measured("curl", lambda f=files["curl"], u=href: _curl_put(f, u))
            drop_caches_if_possible()
            times["floor-inline"].append(_curl_put(body, f"http://127.0.0.1:{port}/upload"))
            commit_url = f"{server.url}/api/models/bench/up-inline/commit/main"
            measured("inline", lambda b=body, u=commit_url: _curl_put(
                b, u, "-X", "POST", "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/x-ndjson"))
            times["hash"].append(timed(lambda f=files["push"]: hashlib.sha256(f.read_bytes())))
            measured("push", lambda f=files["push"]: push_folder("bench/up-push", f.parent, api=hubkit_api))
            measured("stock", lambda f=files["stock"], r=r: stock.upload_file(
                path_or_fileobj=str(f), path_in_repo=f"model-{r}.safetensors", repo_id="bench/up-stock"))
            shutil.rmtree(folder)
    finally:
        receiver.kill()
    mbs = size / MB
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    rows = [(f"upload {mbs:.0f} MB: curl -T into a trivial h11 receiver (floor)", f"{mbs / med['floor']:.0f} MB/s",
             f"median of {args.rounds} interleaved rounds", "-")]
    names = {"curl": "curl -T into the Hub's LFS URL (server alone)",
             "inline": "curl -T the stock client's inline commit body (server alone)",
             "push": "hubkit push_folder (LFS, end to end)",
             "stock": "stock upload_file (inline base64, end to end)"}
    for kind, label in names.items():
        written = sorted(w for w, _ in io[kind])[len(io[kind]) // 2]
        read = sorted(r for _, r in io[kind])[len(io[kind]) // 2]
        floor = med["floor-inline" if kind == "inline" else "floor"]
        note = {"inline": " (floor: the same body into the receiver)",
                "push": f"; {floor / (med['push'] - med['hash']):.2f}x without the client's sha256 pass "
                        f"({med['hash']:.2f} s: LFS needs the oid before the upload)",
                "stock": " (the client base64-encodes the file in memory first)"}.get(kind, "")
        rows.append((f"upload {mbs:.0f} MB: {label}", f"{mbs / med[kind]:.0f} MB/s",
                     f"{floor / med[kind]:.2f}x of the floor{note}; server wrote {written:.2f}x, read {read:.2f}x "
                     "the payload", "-" if kind == "stock" else ">= 0.8x; <= 1.05x, <= 0.05x"))
    return rows


TRIVIAL_PAGES = r"""
import json, socket, sys, uvicorn
from urllib.parse import parse_qs
pages = json.load(open(sys.argv[1]))  # cursor ("" for the first page) -> [body, link or ""]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, link = pages[parse_qs(scope["query_string"].decode()).get("cursor", [""])[0]]
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if link:
        headers.append((b"link", link.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})

# the socket made as the Hub makes its own (IPPROTO_TCP named, so asyncio sets TCP_NODELAY): no delayed-ACK waits
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", int(sys.argv[2])))
sock.listen(128)
uvicorn.Server(uvicorn.Config(app, log_level="warning", http="h11")).run(sockets=[sock])
"""


def listing_rows(server, token: str, root: Path, args) -> list[tuple[str, str, str, str]]:
    """Row 3: list_models(author, cardData=True) against a trivial server of the same pages, at two sizes."""
    import json

    import httpx
    from _isolated import free_port

    store = Store(root)
    rows = []
    made = 0
    for n_repos in (max(20, int(2000 * args.scale)), max(200, int(20000 * args.scale))):
        for i in range(made, n_repos):  # populated through the store directly: the listing is what is timed
            rid = f"sweep/run-{i:05d}"
            store.create_repo("model", rid)
            card = (f"---\nlicense: apache-2.0\ntags: [hubkit, sft, epoch-{i % 10}]\nbase_model: base/m{i % 12}\n"
                    f"hubkit:\n  dataset: d{i % 10}\n  epoch: {i % 10}\n  lora: {str(i % 2 == 0).lower()}\n---\n"
                    f"# run {i}\n")
            sha, n, oid = store.put_bytes(card.encode())
            store.commit("model", rid, "main", [Operation("add", "README.md", FileEntry(sha, n, oid, False))],
                         title="card", author="sweep")
        made = n_repos
        port = free_port()
        pages: dict[str, list[str]] = {}
        url = f"{server.url}/api/models?author=sweep&cardData=true"
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
            while url:
                r = client.get(url)
                cursor = httpx.URL(url).params.get("cursor", "")
                pages[cursor] = [r.text, r.headers.get("link", "").replace(server.url, f"http://127.0.0.1:{port}")]
                url = r.links.get("next", {}).get("url")
        page_file = work / "pages.json"
        page_file.write_text(json.dumps(pages))
        trivial = subprocess.Popen([sys.executable, "-c", TRIVIAL_PAGES, str(page_file), str(port)])
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/api/models?author=sweep&cardData=True", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            apis = {"hub": HfApi(endpoint=server.url, token=token),
                    "trivial": HfApi(endpoint=f"http://127.0.0.1:{port}", token=token)}
            times: dict[str, list[float]] = {"hub": [], "trivial": []}
            for _ in range(max(args.rounds, 5)):
                for name, api in apis.items():
                    t0 = time.perf_counter()
                    models = list(api.list_models(author="sweep", cardData=True))
                    times[name].append(time.perf_counter() - t0)
                    assert len(models) == n_repos and models[0].card_data is not None
        finally:
            trivial.kill()
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        rows.append((f"list_models(author, cardData) over {n_repos:,} repos", f"{med['hub']:.2f} s",
                     f"{med['hub'] / med['trivial']:.2f}x a trivial server of the same {len(pages)} page(s) "
                     f"({med['trivial']:.2f} s); median of {len(times['hub'])} interleaved rounds", "<= 1.3x"))
    return rows


def transfer_rows(server, token: str, root: Path, args, rows: list) -> None:
    """Rows 1-6 (see the module docstring), appended to `rows`."""
    size = int(500 * MB * args.scale)
    big = int(1024 * MB * args.scale)
    stock = HfApi(endpoint=server.url, token=token)
    hubkit_api = HfApi(endpoint=server.url, token=token, headers={TRANSFER_HEADER: "lfs"})
    src = work / "src"
    src.mkdir()
    write_file(src / "model.safetensors", size)

    # cp floor, same disk: timed three times, interleaved with the transfers (this machine is noisy)
    cp_times: list[float] = []

    def time_cp() -> None:
        cp_times.append(timed(lambda: shutil.copyfile(src / "model.safetensors", work / "copy.bin")))
        (work / "copy.bin").unlink()

    time_cp()

    stock.create_repo("bench/stock")
    stock.upload_file(path_or_fileobj=str(src / "model.safetensors"), path_in_repo="model.safetensors",
                      repo_id="bench/stock")
    # download: stock client
    drop_caches_if_possible()
    down = timed(lambda: hf_hub_download("bench/stock", "model.safetensors", endpoint=server.url, token=token,
                                         cache_dir=work / "dl"))
    time_cp()
    cp_s = sorted(cp_times)[1]  # the median of three
    mbs = size / MB
    rows.append((f"download {mbs:.0f} MB (hf_hub_download)", f"{mbs / down:.0f} MB/s",
                 f"{cp_s / down:.2f}x of cp ({mbs / cp_s:.0f} MB/s)", ">= 0.5x"))
    shutil.rmtree(work / "dl", ignore_errors=True)

    # small requests on one kept-alive connection (the stock client's session): each must not wait for a
    # delayed ACK (TCP_NODELAY), so a metadata call costs a few ms, not ~40
    stock.model_info("bench/stock")
    small = sorted(timed(lambda: stock.model_info("bench/stock")) for _ in range(50))
    rows.append(("small request (model_info, kept-alive), 50 calls", f"{small[25] * 1000:.1f} ms median",
                 f"p90 {small[45] * 1000:.1f} ms; cp times {', '.join(f'{t:.2f}' for t in cp_times)} s",
                 "<= 10 ms"))

    # peak server RSS while receiving a 1 GB file through hubkit's path
    big_dir = work / "big"
    big_dir.mkdir()
    write_file(big_dir / "model.safetensors", big)
    hubkit_api.create_repo("bench/big")
    base_rss = psutil.Process(server.pid).memory_info().rss
    sampler = RssSampler(server.pid)
    sampler.start()
    t_big = timed(lambda: push_folder("bench/big", big_dir, api=hubkit_api))
    peak = sampler.stop()
    rows.append((f"server peak RSS, {big / MB:.0f} MB via hubkit push", f"{peak / MB:.0f} MB",
                 f"{(peak - base_rss) / MB:+.0f} MB over idle; {big / MB / t_big:.0f} MB/s", "<= 200 MB"))
    shutil.rmtree(big_dir)

    store = Store(root)
    # adversarial: an anonymous client walks a huge history, another sends parser bombs
    import httpx

    store.create_repo("model", "sweep/long-history")
    files = [Operation("add", f"shard-{i:05d}.txt", FileEntry("a" * 64, 1, "b" * 40, False)) for i in range(5000)]
    n_commits = max(20, int(200 * args.scale))
    for c in range(n_commits):
        store.commit("model", "sweep/long-history", "main", files[: 4000 + c % 1000], title=f"c{c}", author="x")
    idle = psutil.Process(server.pid).memory_info().rss
    sampler = RssSampler(server.pid)
    sampler.start()
    bomb = "---\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "---\n"
    t_walk = timed(lambda: list(HfApi(endpoint=server.url, token=False).list_repo_commits("sweep/long-history")))
    during = []
    for _ in range(20):
        threading.Thread(target=lambda: httpx.post(f"{server.url}/api/validate-yaml", json={"content": bomb},
                                                   timeout=60), daemon=True).start()
        during.append(timed(lambda: httpx.get(f"{server.url}/api/models", params={"limit": 1})))
    peak = sampler.stop()
    rows.append((f"server RSS, anonymous walk of {n_commits} commits x 5,000 files + 20 YAML bombs",
                 f"{(peak - idle) / MB:+.0f} MB over idle",
                 f"walk {t_walk:.1f} s; small request meanwhile median {sorted(during)[10] * 1000:.0f} ms",
                 "<= 100 MB"))


ATTACKER = r"""
import asyncio, json, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
card = "---\n" + "".join(f"key{i}: value number {i}\n" for i in range(40000)) + "---\n"
yaml_body = json.dumps({"content": card}).encode()
stats = {"opened": 0, "refused": 0}

async def dribble(r, w, first, each, every):
    w.write(first)
    while not r.at_eof():
        w.write(each)
        await w.drain()
        try:
            await asyncio.wait_for(r.read(1), every)
        except asyncio.TimeoutError:
            pass

async def connection(mode):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            r, w = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
            stats["opened"] += 1
            if mode == "idle":
                await r.read(1)
            elif mode == "slowloris":  # headers that never end
                await dribble(r, w, b"GET /api/models HTTP/1.1\r\nHost: x\r\n", b"X-a: b\r\n", 2)
            elif mode == "trickle":  # a body that never ends
                await dribble(r, w, b"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", b" ", 1)
            else:  # a 1 MB card to validate-yaml, again and again on the same connection
                while time.monotonic() < end:
                    w.write(b"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            + f"Content-Length: {len(yaml_body)}\r\n\r\n".encode() + yaml_body)
                    await w.drain()
                    head = await r.readuntil(b"\r\n\r\n")
                    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                    await r.readexactly(n)
            w.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            stats["refused"] += 1
            await asyncio.sleep(0.05)

async def main():
    modes = ["idle"] * 400 + ["slowloris"] * 300 + ["trickle"] * 200 + ["yaml"] * 100
    await asyncio.gather(*(connection(m) for m in modes))
    print(json.dumps(stats))

asyncio.run(main())
"""


def honest_calls(api: HfApi, seconds: float, cache: Path) -> tuple[list[float], list[str]]:
    """model_info, a 1 MB download and a one-file commit, in turn, for `seconds`; (latencies, errors)."""
    latencies: list[float] = []
    errors: list[str] = []
    calls = [lambda: api.model_info("bench/fair"),
             lambda: hf_hub_download("bench/fair", "weights.bin", endpoint=api.endpoint, token=api.token,
                                     cache_dir=cache, force_download=True),
             lambda: api.upload_file(path_or_fileobj=os.urandom(64), path_in_repo="note.txt", repo_id="bench/fair")]
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            calls[n % 3]()
        except Exception as e:  # every failure counts, whatever its kind
            errors.append(f"{type(e).__name__}: {str(e)[:80]}")
        latencies.append(time.perf_counter() - t)
        n += 1
    return latencies, errors


def attack_rows(server, token: str, seconds: float) -> list[tuple[str, str, str, str]]:
    """Row 7: honest calls with no attack, then the same calls while one address attacks (its own process)."""
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo("bench/fair")
    api.upload_file(path_or_fileobj=os.urandom(MB), path_in_repo="weights.bin", repo_id="bench/fair")
    cache = work / "fair-cache"
    quiet, quiet_errors = honest_calls(api, seconds / 3, cache)
    host, port = server.url.rsplit("//", 1)[1].rsplit(":", 1)
    attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, host, port, str(seconds + 5)],
                                stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # let it open its connections
    loud, loud_errors = honest_calls(api, seconds, cache)
    attack_stats = attacker.communicate()[0].strip()
    p99 = lambda xs: sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000  # noqa: E731
    return [("honest calls (info, 1 MB download, commit), no attack",
             f"p99 {p99(quiet):.0f} ms, {len(quiet_errors)} errors",
             f"{len(quiet)} calls; median {sorted(quiet)[len(quiet) // 2] * 1000:.0f} ms", "-"),
            ("the same calls while 1,000 hostile connections from one address",
             f"p99 {p99(loud):.0f} ms, {len(loud_errors)} errors",
             f"{len(loud)} calls; {p99(loud) / p99(quiet):.1f}x the quiet p99; attacker {attack_stats}"
             + (f"; first error: {loud_errors[0]}" if loud_errors else ""), "p99 < 1 s, 0 errors")]


def revision_rows(server, root: Path) -> list[tuple[str, str, str, str]]:
    """Row 8: a repo of ~4,150 files and 162 commits, read at every revision by an anonymous client."""
    import httpx

    store = Store(root)
    store.create_repo("model", "bench/history")
    ops = [Operation("add", f"data/shard-{i:05d}.json", FileEntry("a" * 64, 1, "b" * 40, False)) for i in range(4150)]
    shas = [store.commit("model", "bench/history", "main", ops[: 4150 - 161 + c], title=f"c{c}", author="bench")[0].id
            for c in range(162)]
    base = f"{server.url}/api/models/bench/history"
    proc = psutil.Process(server.pid)
    with httpx.Client(timeout=120) as http:
        http.get(f"{server.url}/api/models/bench/history")
        rss_before = proc.memory_info().rss
        every = []
        for n, sha in enumerate(shas):
            t = time.perf_counter()
            assert http.get(f"{base}/revision/{sha}").status_code == 200
            every.append(time.perf_counter() - t)
            if n == 40:
                rss_40 = proc.memory_info().rss
        rss_after = proc.memory_info().rss
        print("slowest revisions (ms):", [round(x * 1000) for x in sorted(every)[-8:]], file=sys.stderr)
        again = []
        for sha in shas:
            t = time.perf_counter()
            assert http.get(f"{base}/revision/{sha[:7]}").status_code == 200
            again.append(time.perf_counter() - t)
        unknown = [timed(lambda: http.get(f"{base}/revision/0000000")) for _ in range(5)]
        tree_old = [timed(lambda: http.get(f"{base}/tree/{shas[2]}/data")) for _ in range(5)]
        tree_main = [timed(lambda: http.get(f"{base}/tree/main/data")) for _ in range(5)]
        page = [timed(lambda: http.get(f"{base}/commits/main", params={"p": 1})) for _ in range(5)]
        listing = timed(lambda: http.get(f"{base}/commits/main"))
    med = lambda xs: sorted(xs)[len(xs) // 2] * 1000  # noqa: E731
    return [
        ("model_info at each of 162 revisions (full hash), 4,150 files",
         f"median {med(every):.0f} ms, max {max(every) * 1000:.0f} ms",
         f"short hash: median {med(again):.0f} ms; revision/0000000 (404) {med(unknown):.1f} ms", "<= 50 ms"),
        ("tree at an old hash vs at main (4,150 files)", f"{med(tree_old):.0f} ms",
         f"main {med(tree_main):.0f} ms ({med(tree_old) / med(tree_main):.2f}x)", "-"),
        ("commits/main?p=1 (162 commits)", f"{med(page):.1f} ms", f"whole first page {listing * 1000:.0f} ms",
         "<= 100 ms"),
        ("server RSS, walking all 162 revisions", f"{(rss_after - rss_40) / MB:+.0f} MB after the 41st",
         f"{rss_before / MB:.0f} MB before, {rss_40 / MB:.0f} MB after 41 (the commit cache's bound), "
         f"{rss_after / MB:.0f} MB after 162", "flat"),
    ]


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows + [("measure", "value", "comparison", "target")]) for i in range(4)]
    header = ("measure", "value", "comparison", "target")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    sys.exit(main())
