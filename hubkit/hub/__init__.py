"""Everything hubkit says to a Hub goes through here: endpoint choice, the `HfApi` factory, uploads, seeding.

Nothing in this package imports `huggingface_hub` at import time, so that the endpoint can be settled first.
"""

from .client import (
    EMBEDDED_USER,
    LocalHub,
    choose_endpoint,
    default_token,
    embedded_root,
    ensure_endpoint,
    get_api,
    hub_kwargs,
    is_local_endpoint,
    running_hub,
    start_local_hub,
    use_embedded_hub,
)
from .errors import check_repo_id, hub_errors, retrying
from .transfer import PushResult, push_folder

__all__ = [
    "EMBEDDED_USER", "LocalHub", "PushResult", "check_repo_id", "choose_endpoint", "default_token", "embedded_root",
    "ensure_endpoint", "get_api", "hub_errors", "hub_kwargs", "is_local_endpoint", "push_folder", "retrying",
    "running_hub", "start_local_hub", "use_embedded_hub",
]
