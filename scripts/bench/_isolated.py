"""Give a benchmark its own temp folder, Hub port and caches; import this before huggingface_hub."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolate(name: str) -> tuple[Path, int]:
    """Point HF_ENDPOINT at a free loopback port and HF_HOME / HUBKIT_HOME into a fresh temp folder."""
    work = Path(tempfile.mkdtemp(prefix=f"hubkit-bench-{name}-"))
    port = free_port()
    os.environ.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(work / "hf_home"),
                      HUBKIT_HOME=str(work / "hubkit_home"), HF_HUB_DISABLE_TELEMETRY="1",
                      HF_HUB_DISABLE_PROGRESS_BARS="1")
    return work, port
