"""Small-request latency of the local Hub on a kept-alive connection, against the same server on a socket
created without IPPROTO_TCP (asyncio then leaves Nagle's algorithm on, and each small response waits for the
client's delayed ACK). Interleaved rounds, one process per server.

    python scripts/bench/hub_latency.py            # 3 rounds x 30 model_info calls per server
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from _isolated import isolate  # the script's folder is on sys.path

work, _ = isolate("hub-latency")

from huggingface_hub import HfApi  # noqa: E402

from hubkit.hub.server.auth import Users  # noqa: E402

SERVER = r'''
import socket, sys, uvicorn
from pathlib import Path
from hubkit.hub.server import listening_socket
from hubkit.hub.server.app import create_app
root, port, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if mode == "hubkit":
    sock = listening_socket("127.0.0.1", port)
else:  # what the server created before: proto 0, so asyncio never sets TCP_NODELAY
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
uvicorn.Server(uvicorn.Config(create_app(root), log_level="warning", http="h11", lifespan="off")).run(sockets=[sock])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    root = work / "hub"
    token = Users(root).add_user("bench")
    servers = {}
    for mode in ("hubkit", "no IPPROTO_TCP"):
        port = free_port()
        servers[mode] = (subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port),
                                           "hubkit" if mode == "hubkit" else "plain"]), port)
    try:
        apis = {m: HfApi(endpoint=f"http://127.0.0.1:{p}", token=token) for m, (_, p) in servers.items()}
        for api in apis.values():
            for _ in range(100):
                try:
                    api.whoami()
                    break
                except Exception:
                    time.sleep(0.1)
        apis["hubkit"].create_repo("bench/small")
        times: dict[str, list[float]] = {m: [] for m in apis}
        for _ in range(args.rounds):  # interleaved: this machine is noisy
            for mode, api in apis.items():
                api.model_info("bench/small")
                for _ in range(args.calls):
                    t = time.perf_counter()
                    api.model_info("bench/small")
                    times[mode].append(time.perf_counter() - t)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
    ours, peer = statistics.median(times["hubkit"]), statistics.median(times["no IPPROTO_TCP"])
    print("| measure | hubkit | same server, socket without IPPROTO_TCP | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| model_info on a kept-alive connection, median of {len(times['hubkit'])} | {ours * 1000:.1f} ms | "
          f"{peer * 1000:.1f} ms | {ours / peer:.2f}x | <= 10 ms |")


if __name__ == "__main__":
    sys.exit(main())
