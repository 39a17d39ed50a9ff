"""Tokens, namespaces and privacy, through the stock client."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def test_writes_need_a_token_with_rights(alice, bob, anon, repo_name):
    with pytest.raises(HfHubHTTPError) as e:
        anon.create_repo(f"alice/{repo_name}")
    assert e.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as e:
        bob.create_repo(f"alice/{repo_name}")
    assert e.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as e:
        bob.create_repo(f"acme/{repo_name}")
    assert e.value.response.status_code == 403
    alice.create_repo(f"acme/{repo_name}")  # a member of the org may
    with pytest.raises(HfHubHTTPError) as e:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"acme/{repo_name}")
    assert e.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError):
        bob.delete_repo(f"acme/{repo_name}")
    assert alice.repo_exists(f"acme/{repo_name}")


def test_invalid_token_is_rejected(hub):
    api = HfApi(endpoint=hub.url, token="hf_not_a_real_token_at_all_000000")
    with pytest.raises(HfHubHTTPError) as e:
        api.whoami()
    assert e.value.response.status_code == 401


def test_private_repos_are_invisible_to_others(alice, bob, anon, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid, private=True)
    alice.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=rid)
    assert alice.repo_exists(rid)
    assert not bob.repo_exists(rid) and not anon.repo_exists(rid)
    with pytest.raises(RepositoryNotFoundError):
        bob.model_info(rid)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(rid, "s.txt", token=bob.token)
    assert rid not in [m.id for m in bob.list_models(author="alice")]
    assert rid in [m.id for m in alice.list_models(author="alice")]
    alice.update_repo_settings(rid, private=False)
    assert anon.repo_exists(rid)


def test_public_repos_are_readable_anonymously(alice, anon, repo_name, tmp_path):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    alice.upload_file(path_or_fileobj=b"open", path_in_repo="o.txt", repo_id=rid)
    path = hf_hub_download(rid, "o.txt", token=False, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"open"
    assert anon.model_info(rid).id == rid
