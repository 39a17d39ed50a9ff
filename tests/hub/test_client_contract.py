"""Contract tests: the stock huggingface_hub / datasets / transformers / peft clients against the local Hub.

One test per operation the foundation promises; everything goes over real HTTP, nothing is mocked.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfFileSystem,
    ModelCard,
    ModelCardData,
    hf_hub_download,
    metadata_update,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def _safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file with zero-filled tensors (dtype, shape)."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        blobs.append(bytes(n))
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def test_whoami(alice, bob):
    me = alice.whoami()
    assert me["name"] == "alice"
    assert [o["name"] for o in me["orgs"]] == ["acme"]
    assert bob.whoami()["name"] == "bob"


def test_create_repo_types_and_conflicts(alice, repo_name):
    url = alice.create_repo(f"alice/{repo_name}")
    assert url.repo_id == f"alice/{repo_name}" and url.repo_type == "model"
    ds = alice.create_repo(f"acme/{repo_name}", repo_type="dataset", private=True)
    assert ds.repo_type == "dataset" and ds.namespace == "acme"
    space = alice.create_repo(f"alice/{repo_name}", repo_type="space", space_sdk="gradio")
    assert space.repo_type == "space"
    assert alice.space_info(f"alice/{repo_name}").sdk == "gradio"
    with pytest.raises(HfHubHTTPError) as e:
        alice.create_repo(f"alice/{repo_name}")
    assert e.value.response.status_code == 409
    assert alice.create_repo(f"alice/{repo_name}", exist_ok=True).repo_id == f"alice/{repo_name}"
    assert alice.dataset_info(f"acme/{repo_name}").private is True


def test_delete_repo(alice, repo_name):
    alice.create_repo(f"alice/{repo_name}")
    assert alice.repo_exists(f"alice/{repo_name}")
    alice.delete_repo(f"alice/{repo_name}")
    assert not alice.repo_exists(f"alice/{repo_name}")
    alice.delete_repo(f"alice/{repo_name}", missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        alice.delete_repo(f"alice/{repo_name}")


def test_repo_info_fields_and_revisions(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    card = "---\nlicense: mit\ntags: [demo, hubkit]\ndatasets: [hubkit-data/gsm8k]\nlibrary_name: transformers\n---\n# Demo\n"
    first = alice.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
    alice.upload_file(path_or_fileobj=_safetensors_bytes({"w": ("F32", [4, 8]), "b": ("F16", [8])}),
                      path_in_repo="model.safetensors", repo_id=rid)
    info = alice.model_info(rid, files_metadata=True)
    assert len(info.sha) == 40 and info.last_modified is not None and info.created_at is not None
    assert {s.rfilename for s in info.siblings} == {".gitattributes", "README.md", "model.safetensors"}
    st = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert st.size == len(_safetensors_bytes({"w": ("F32", [4, 8]), "b": ("F16", [8])})) and st.lfs is not None
    assert info.card_data["license"] == "mit"
    assert {"demo", "hubkit", "license:mit", "dataset:hubkit-data/gsm8k", "safetensors"} <= set(info.tags)
    assert info.safetensors.parameters == {"F32": 32, "F16": 8} and info.safetensors.total == 40
    old = alice.model_info(rid, revision=first.oid)
    assert old.sha == first.oid
    assert "model.safetensors" not in {s.rfilename for s in old.siblings}
    with pytest.raises(RevisionNotFoundError):
        alice.model_info(rid, revision="no-such-branch")
    assert alice.revision_exists(rid, first.oid)


def test_list_models_filters_sort_limit_and_pagination(alice, hub):
    from tests.conftest import PAGE_SIZE

    n = PAGE_SIZE + 5
    for i in range(n):
        rid = f"acme/listing-{i:03d}"
        alice.create_repo(rid, exist_ok=True)
        tags = ["listing", "even" if i % 2 == 0 else "odd"]
        card = f"---\ntags: {json.dumps(tags)}\nlicense: apache-2.0\nhubkit:\n  epoch: {i}\n---\n"
        alice.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
    everything = list(alice.list_models(author="acme", search="listing-"))
    assert len(everything) == n  # more than one page: the Link header was followed
    evens = list(alice.list_models(author="acme", filter=["listing", "even"], cardData=True))
    assert len(evens) == (n + 1) // 2
    assert all(m.card_data is not None and m.card_data["hubkit"]["epoch"] % 2 == 0 for m in evens)
    assert not list(alice.list_models(author="acme", filter=["listing", "even", "odd"]))
    newest = list(alice.list_models(author="acme", search="listing-", sort="lastModified", limit=3))
    assert [m.id for m in newest] == [f"acme/listing-{i:03d}" for i in (n - 1, n - 2, n - 3)]
    expanded = list(alice.list_models(author="acme", search="listing-001", expand=["cardData", "sha"]))
    assert expanded[0].sha and expanded[0].card_data["hubkit"]["epoch"] == 1
    assert list(alice.list_models(author="acme", filter="license:apache-2.0", limit=2)).__len__() == 2


def test_list_datasets(alice, repo_name):
    alice.create_repo(f"acme/{repo_name}", repo_type="dataset")
    alice.upload_file(path_or_fileobj=b"---\nlicense: mit\ntask_categories: [text-generation]\n---\n",
                      path_in_repo="README.md", repo_id=f"acme/{repo_name}", repo_type="dataset")
    found = list(alice.list_datasets(author="acme", search=repo_name, filter="task_categories:text-generation"))
    assert [d.id for d in found] == [f"acme/{repo_name}"]


def test_commits_upload_folder_deletions_and_noop(alice, repo_name, tmp_path):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub" / "b.json").write_text('{"b": 1}')
    (tmp_path / "sub" / "deep" / "c.bin").write_bytes(b"\x00\x01" * 1000)
    alice.upload_folder(folder_path=tmp_path, repo_id=rid)
    assert set(alice.list_repo_files(rid)) == {".gitattributes", "a.txt", "sub/b.json", "sub/deep/c.bin"}
    head = alice.model_info(rid).sha
    # unchanged: the client skips every file and makes no commit
    again = alice.upload_folder(folder_path=tmp_path, repo_id=rid)
    assert again.oid == head and len(alice.list_repo_commits(rid)) == 2
    info = alice.create_commit(rid, [
        CommitOperationDelete("a.txt"),
        CommitOperationDelete("sub/deep/"),
        CommitOperationAdd("new.txt", b"new"),
        CommitOperationCopy("sub/b.json", "copied/b.json"),
    ], commit_message="mixed")
    assert set(alice.list_repo_files(rid)) == {".gitattributes", "sub/b.json", "new.txt", "copied/b.json"}
    assert alice.list_repo_commits(rid)[0].commit_id == info.oid
    with pytest.raises(EntryNotFoundError):
        alice.delete_file("missing.txt", rid)


def test_parent_commit_conflict_is_412(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    base = alice.model_info(rid).sha
    alice.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=rid, parent_commit=base)
    for stale in (base, base[:7]):  # a full sha or a short prefix of it
        with pytest.raises(HfHubHTTPError) as e:
            alice.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=rid, parent_commit=stale)
        assert e.value.response.status_code == 412
    assert "two.txt" not in alice.list_repo_files(rid)


def test_downloads_and_snapshot_patterns(alice, repo_name, tmp_path):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    (tmp_path / "config.json").write_text('{"x": 1}')
    (tmp_path / "weights.safetensors").write_bytes(_safetensors_bytes({"w": ("F32", [16])}))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "train.log").write_text("loss 1.0\n")
    alice.upload_folder(folder_path=tmp_path, repo_id=rid)
    path = hf_hub_download(rid, "config.json", token=alice.token)
    assert json.loads(Path(path).read_text()) == {"x": 1}
    only_json = Path(snapshot_download(rid, allow_patterns=["*.json"], token=alice.token,
                                       cache_dir=tmp_path / "c1"))
    assert sorted(p.name for p in only_json.rglob("*") if p.is_file()) == ["config.json"]
    no_logs = Path(snapshot_download(rid, ignore_patterns=["logs/*"], local_dir=tmp_path / "out", token=alice.token))
    files = sorted(p.relative_to(no_logs).as_posix() for p in no_logs.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert files == [".gitattributes", "config.json", "weights.safetensors"]
    assert (no_logs / "weights.safetensors").read_bytes() == (tmp_path / "weights.safetensors").read_bytes()
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(rid, "nope.txt", token=alice.token, cache_dir=tmp_path / "c2")
    assert alice.file_exists(rid, "config.json") and not alice.file_exists(rid, "nope.txt")


def test_range_reads_through_hffilesystem(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    data = bytes(range(256)) * 4000  # ~1 MB
    alice.upload_file(path_or_fileobj=data, path_in_repo="data/blob.bin", repo_id=rid)
    fs = HfFileSystem(endpoint=alice.endpoint, token=alice.token)
    with fs.open(f"{rid}/data/blob.bin", "rb", block_size=4096) as f:
        f.seek(300_000)
        assert f.read(1000) == data[300_000:301_000]
        f.seek(len(data) - 10)
        assert f.read(100) == data[-10:]
    assert fs.info(f"{rid}/data/blob.bin")["size"] == len(data)
    assert fs.ls(f"{rid}/data", detail=False) == [f"{rid}/data/blob.bin"]


def test_safetensors_metadata_single_and_sharded(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    alice.upload_file(path_or_fileobj=_safetensors_bytes({"a": ("F32", [2, 3])}), path_in_repo="model.safetensors",
                      repo_id=rid)
    meta = alice.get_safetensors_metadata(rid)
    assert meta.sharded is False and meta.parameter_count == {"F32": 6}
    sharded = f"alice/{repo_name}-sharded"
    alice.create_repo(sharded)
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    alice.create_commit(sharded, [
        CommitOperationAdd("model-00001-of-00002.safetensors", _safetensors_bytes({"a": ("F32", [4])})),
        CommitOperationAdd("model-00002-of-00002.safetensors", _safetensors_bytes({"b": ("BF16", [10])})),
        CommitOperationAdd("model.safetensors.index.json", json.dumps(index).encode()),
    ], commit_message="shards")
    meta = alice.get_safetensors_metadata(sharded)
    assert meta.sharded is True and meta.parameter_count == {"F32": 4, "BF16": 10}


def test_tree_and_paths_info(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    alice.create_commit(rid, [CommitOperationAdd(f"d{i}/f{j}.txt", f"{i}{j}".encode()) for i in range(3) for j in range(9)],
                        commit_message="many")
    top = list(alice.list_repo_tree(rid))
    assert sorted(e.path for e in top) == [".gitattributes", "d0", "d1", "d2"]
    everything = list(alice.list_repo_tree(rid, recursive=True))  # 31 entries: more than a page
    assert len([e for e in everything if e.__class__.__name__ == "RepoFile"]) == 28
    assert {e.path for e in everything if e.__class__.__name__ == "RepoFolder"} == {"d0", "d1", "d2"}
    sub = list(alice.list_repo_tree(rid, path_in_repo="d1", expand=True))
    assert all(e.path.startswith("d1/") and e.last_commit is not None for e in sub)
    infos = alice.get_paths_info(rid, ["d0/f1.txt", "d2", "missing"])
    assert sorted(i.path for i in infos) == ["d0/f1.txt", "d2"]
    with pytest.raises(EntryNotFoundError):
        list(alice.list_repo_tree(rid, path_in_repo="nope"))


def test_refs_branches_tags_and_commits(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    alice.upload_file(path_or_fileobj=b"v1", path_in_repo="v.txt", repo_id=rid)
    alice.create_branch(rid, branch="dev")
    alice.create_branch(rid, branch="dev", exist_ok=True)
    alice.upload_file(path_or_fileobj=b"v2", path_in_repo="v.txt", repo_id=rid, revision="dev")
    alice.create_tag(rid, tag="v1.0", tag_message="first")
    refs = alice.list_repo_refs(rid)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1.0"]
    assert Path(hf_hub_download(rid, "v.txt", revision="dev", token=alice.token)).read_bytes() == b"v2"
    assert Path(hf_hub_download(rid, "v.txt", revision="v1.0", token=alice.token)).read_bytes() == b"v1"
    commits = alice.list_repo_commits(rid, revision="dev", formatted=True)
    assert [c.title for c in commits][-1] == "initial commit" and len(commits) == 3
    alice.delete_tag(rid, tag="v1.0")
    alice.delete_branch(rid, branch="dev")
    assert {b.name for b in alice.list_repo_refs(rid).branches} == {"main"}


def test_pull_request_commit(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    info = alice.upload_file(path_or_fileobj=b"proposal", path_in_repo="p.txt", repo_id=rid, create_pr=True)
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    assert "p.txt" not in alice.list_repo_files(rid)
    assert "p.txt" in alice.list_repo_files(rid, revision="refs/pr/1")
    refs = alice.list_repo_refs(rid, include_pull_requests=True)
    assert [p.ref for p in refs.pull_requests] == ["refs/pr/1"]


def test_collections(alice, repo_name):
    alice.create_repo(f"alice/{repo_name}")
    coll = alice.create_collection(title=f"Sweep {repo_name}", namespace="acme", description="runs")
    assert coll.slug.startswith("acme/")
    coll = alice.add_collection_item(coll.slug, item_id=f"alice/{repo_name}", item_type="model", note="best run")
    again = alice.get_collection(coll.slug)
    assert [(i.item_id, i.item_type, i.note) for i in again.items] == [(f"alice/{repo_name}", "model", "best run")]
    same = alice.create_collection(title=f"Sweep {repo_name}", namespace="acme", exists_ok=True)
    assert same.slug == coll.slug
    alice.add_collection_item(coll.slug, item_id=f"alice/{repo_name}", item_type="model", exists_ok=True)
    assert len(alice.get_collection(coll.slug).items) == 1


def test_model_card_push_load_and_metadata_update(alice, hub, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    data = ModelCardData(license="apache-2.0", library_name="transformers", tags=["sft"], datasets=["hubkit-data/lima"])
    card = ModelCard.from_template(data, model_id=repo_name)
    card.push_to_hub(rid, token=alice.token)
    loaded = ModelCard.load(rid, token=alice.token)
    assert loaded.data.license == "apache-2.0" and loaded.data.tags == ["sft"]
    metadata_update(rid, {"tags": ["sft", "lora"], "hubkit": {"epoch": 3}}, overwrite=True, token=alice.token)
    info = alice.model_info(rid)
    assert info.card_data["hubkit"] == {"epoch": 3} and "lora" in info.tags
    # a card without one: metadata_update starts from the default template (needs 404 EntryNotFound)
    bare = f"alice/{repo_name}-bare"
    alice.create_repo(bare)
    metadata_update(bare, {"license": "mit"}, token=alice.token)
    assert alice.model_info(bare).card_data["license"] == "mit"


def test_validate_yaml_rejects_broken_metadata(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    with pytest.raises(ValueError):
        alice.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n", path_in_repo="README.md", repo_id=rid)
    with pytest.raises(ValueError):
        alice.upload_file(path_or_fileobj=b"---\nmodel-index: {name: x}\n---\n", path_in_repo="README.md", repo_id=rid)
    assert "README.md" not in alice.list_repo_files(rid)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_load_dataset_formats(alice, repo_name, fmt, tmp_path):
    import datasets
    import pandas as pd

    rid = f"acme/{repo_name}"
    alice.create_repo(rid, repo_type="dataset")
    rows = pd.DataFrame({"question": [f"q{i}" for i in range(30)], "answer": list(range(30))})
    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    for split, part in (("train", rows[:20]), ("test", rows[20:])):
        target = folder / f"{split}.{fmt}"
        if fmt == "jsonl":
            part.to_json(target, orient="records", lines=True)
        elif fmt == "json":
            part.to_json(target, orient="records")
        elif fmt == "csv":
            part.to_csv(target, index=False)
        else:
            part.to_parquet(target, index=False)
    alice.upload_folder(folder_path=tmp_path / "ds", repo_id=rid, repo_type="dataset")
    ds = datasets.load_dataset(rid, token=alice.token, cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 20 and ds["test"].num_rows == 10
    assert ds["test"][0] == {"question": "q20", "answer": 20}


def test_seeded_datasets_load(seeded, hub, tmp_path):
    import datasets

    assert seeded["gsm8k"] == "hubkit-data/gsm8k"
    gsm = datasets.load_dataset("hubkit-data/gsm8k", cache_dir=str(tmp_path))
    assert gsm["train"].num_rows == 7473 and gsm["test"].num_rows == 1319
    assert gsm["test"][0]["answer"].split("####")[-1].strip() == "18"
    mmlu = datasets.load_dataset("hubkit-data/mmlu", split="validation", cache_dir=str(tmp_path))
    assert mmlu.num_rows == 285 and len(mmlu[0]["choices"]) == 4
    hs = datasets.load_dataset("hubkit-data/hellaswag", split="validation", cache_dir=str(tmp_path))
    assert hs.num_rows == 10042 and len(hs[0]["endings"]) == 4
    streamed = datasets.load_dataset("hubkit-data/lima", split="train", streaming=True)
    assert "instruction" in next(iter(streamed))


def test_transformers_and_peft_from_repo(alice, repo_name, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1)
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(tmp_path / "base")
    base_id = f"alice/{repo_name}-base"
    alice.create_repo(base_id)
    alice.upload_folder(folder_path=tmp_path / "base", repo_id=base_id)
    loaded = AutoModelForCausalLM.from_pretrained(base_id, token=alice.token)
    for (n, a), b in zip(base.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), n

    lora = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    adapter_id = f"alice/{repo_name}-adapter"
    alice.create_repo(adapter_id)
    alice.upload_folder(folder_path=tmp_path / "adapter", repo_id=adapter_id)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_id, token=alice.token),
                                           adapter_id, token=alice.token)
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_id, token=alice.token),
                                         str(tmp_path / "adapter"))
    assert torch.allclose(peft_model(ids).logits, expected(ids).logits)


def test_connections_are_served_with_tcp_nodelay():
    """asyncio (and so uvicorn) sets TCP_NODELAY only on sockets created with IPPROTO_TCP; the Hub's listening
    socket names it, so small responses on a kept-alive connection do not wait for a delayed ACK."""
    import asyncio
    import socket

    from hubkit.hub.server import listening_socket

    async def nodelay_of(sock: socket.socket) -> int:
        seen: list[int] = []

        async def handle(reader, writer):
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return seen[0]

    assert asyncio.run(nodelay_of(listening_socket("127.0.0.1", 0))) != 0
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # what the server used to create
    plain.bind(("127.0.0.1", 0))
    plain.listen(8)
    assert asyncio.run(nodelay_of(plain)) == 0
