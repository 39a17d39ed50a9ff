"""Shared fixtures: a real local Hub server (HTTP on 127.0.0.1) with users, and clients for each user.

The environment is set here, at import, before anything imports huggingface_hub: it reads HF_ENDPOINT once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hubkit-tests-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HUB_PORT = _free_port()
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_ENDPOINT"] = HUB_URL
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf_home")
os.environ["HUBKIT_HOME"] = str(_SESSION_DIR / "hubkit_home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_HUB_DISABLE_XET", None)  # the stock client, default settings: hf_xet installed and enabled
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # a runner started in the background ignores Ctrl-C, and so would the commands the tests stop with it
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

PAGE_SIZE = 20  # small pages, so that every list endpoint's pagination is exercised


@dataclass
class HubFixture:
    url: str
    root: Path
    tokens: dict[str, str]

    def api(self, user: str | None):
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.url, token=self.tokens[user] if user else False)


@pytest.fixture(scope="session")
def hub() -> HubFixture:
    root = _SESSION_DIR / "hub"
    tokens = {
        "alice": Users(root).add_user("alice", orgs=["acme"]),
        "bob": Users(root).add_user("bob"),
        "hubkit": Users(root).add_user("hubkit", orgs=["hubkit-data"]),
    }
    server = start_local_hub(root, port=HUB_PORT, page_size=PAGE_SIZE, detach=False)
    yield HubFixture(url=server.url, root=root, tokens=tokens)
    server.stop()


@pytest.fixture(scope="session")
def alice(hub):
    return hub.api("alice")


@pytest.fixture(scope="session")
def bob(hub):
    return hub.api("bob")


@pytest.fixture(scope="session")
def anon(hub):
    return hub.api(None)


@pytest.fixture(scope="session")
def seeded(hub):
    """The seed datasets hubkit's stages read (a subset: the seeding code is the same for all)."""
    from hubkit.hub.seed import seed

    return seed(["gsm8k", "mmlu", "lima", "hellaswag", "flan_cot"], api=hub.api("hubkit"), progress=False)


@pytest.fixture(scope="session")
def seeded_benchmarks(seeded, hub):
    """Every benchmark repo the evaluation suites read."""
    from hubkit.hub.seed import seed

    more = seed(["math500", "humaneval", "mbpp", "boolq", "truthfulqa", "nq_open"], api=hub.api("hubkit"),
                progress=False)
    return {**seeded, **more}


_counter = [0]


@pytest.fixture
def repo_name(request) -> str:
    _counter[0] += 1
    import re

    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    return f"{name}-{_counter[0]}"


@pytest.fixture(scope="session")
def seeded_training(seeded, hub):
    """Every seed repo that the training-set registry reads offline (the `seeded` ones plus the rest)."""
    from hubkit.hub.seed import seed

    more = seed(["alpaca_gpt4_demo", "code_alpaca", "fastchat_dummy_conversation"], api=hub.api("hubkit"),
                progress=False)
    return {**seeded, **more}


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """A tiny random Llama with a byte-level BPE tokenizer and a ChatML template, saved once per session."""
    from hubkit.models import build_tiny_model

    folder = _SESSION_DIR / "tiny-llama"
    if not folder.exists():
        build_tiny_model(folder, seed=0)
    return folder


@pytest.fixture(scope="session")
def tiny_base(hub, tiny_model) -> str:
    """The tiny model on the Hub, as the base model runs train from: `alice/tiny-base`."""
    from hubkit.hub import push_folder

    alice = hub.api("alice")
    alice.create_repo("alice/tiny-base", exist_ok=True)
    push_folder("alice/tiny-base", tiny_model, commit_message="base", api=alice)
    return "alice/tiny-base"


@pytest.fixture
def own_hub(tmp_path):
    """A Hub of its own (user carol) for tests that stop, kill or restart the server."""
    from huggingface_hub import HfApi

    from hubkit.hub.client import TRANSFER_HEADER

    root = tmp_path / "hub"
    token = Users(root).add_user("carol")
    servers = [start_local_hub(root, detach=False)]

    class Own:
        def __init__(self):
            self.root, self.token = root, token

        @property
        def server(self):
            return servers[-1]

        def api(self, lfs: bool = False):
            return HfApi(endpoint=self.server.url, token=token, headers={TRANSFER_HEADER: "lfs"} if lfs else None)

        def restart(self, port: int | None = None):
            servers.append(start_local_hub(root, port=port or 0, detach=False))

    yield Own()
    for s in servers:
        s.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ServingCommand:
    """A `hubkit` command that ends by serving the leaderboard, in a subprocess read line by line; `serving`
    is set once it prints its URL (or once it has ended without one)."""

    def __init__(self, *args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None):
        self.lines: list[str] = []
        self.url: str | None = None
        self.serving = threading.Event()
        self.proc = subprocess.Popen([sys.executable, "-m", "hubkit", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait(self, timeout: float) -> int:
        """The exit status, once the command has ended and all its output is read."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return code

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Leaderboard running on " in line:
                self.url = line.split("Leaderboard running on ", 1)[1].split()[0]
                self.serving.set()
        self.serving.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def chromium_page():
    """A page in Debian's chromium driven by Playwright (never a downloaded browser), or None where chromium
    is missing; with HUBKIT_REQUIRE_BROWSER set (CI), a missing chromium fails the test instead."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("HUBKIT_REQUIRE_BROWSER"):
            pytest.fail(f"chromium is required for the browser tests and is missing at {CHROMIUM}")
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
