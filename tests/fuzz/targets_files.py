"""Files the gate reads at start: the face / thumb matchers' descriptors, the PAD model,
its own audit journal and the referral store's times. Each is fuzzed as it lies on disk
(a bad block, a hand edit, a torn write): a model file is loaded or refused with the
device's ``DeviceError``, and what it loads can never weaken a check (a threshold in
the score's range, a PAD score that is a number); the journal and the referral store
never stop the start, whatever they hold.

A structure-aware mutator puts hostile JSON values (NaN, Infinity, true, huge numbers,
lists where objects belong) at random places of the shipped files.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from autogate.vault import ReferralStore
from drivers.errors import DeviceError
from drivers.face.match import Descriptor as FaceDescriptor
from drivers.face.pad import PadModel
from drivers.finger.matcher import Descriptor as FingerDescriptor
from gate.journal import Journal, iter_records
from tests.fuzz.harness import Target

ROOT = Path(__file__).resolve().parents[2]
_WORK = Path(tempfile.mkdtemp(prefix="fuzz-files-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)

HOSTILE: tuple[Any, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    None,
    0,
    -1,
    1e308,
    10**30,
    "x",
    "",
    [],
    [1.0],
    {},
    {"a": 1},
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list) and node:
        i = len(node) // 2  # one element stands for the rest (vectors of 216)
        out += _paths(node[i], (*prefix, i))
    return out


def json_mutator(data: bytes, rng: random.Random) -> bytes:
    """One to three values of the document replaced by hostile ones (or whole vectors)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(doc))
        value = copy.deepcopy(rng.choice(HOSTILE))  # never one object in two places
        if not path:
            doc = value
            break
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent[path[-1]], list) and rng.random() < 0.5:
            parent[path[-1]] = [copy.deepcopy(value) for _ in parent[path[-1]]]
        else:
            parent[path[-1]] = value
    return json.dumps(doc).encode()


def _file(name: str, data: bytes) -> Path:
    path = _WORK / name
    path.write_bytes(data)
    return path


# --- model files ---------------------------------------------------------------------


def _face(data: bytes) -> object:
    desc = FaceDescriptor.load(_file("face.json", data))
    thr = desc.data["threshold"]
    assert thr is None or 0 < desc.threshold <= 1, thr  # never a threshold that matches all
    assert isinstance(desc.data["weights"], dict)
    return desc


def _finger(data: bytes) -> object:
    desc = FingerDescriptor.load(_file("finger.json", data))
    assert 0 < desc.threshold < math.inf and desc.min_minutiae >= 0
    return desc


def _pad(data: bytes) -> object:
    model = PadModel.load(_file("pad.json", data))
    assert 0 < model.threshold < 1
    score = model.logit(np.zeros(len(model.mean)))
    assert np.all(np.isfinite(score)), score  # a NaN score is never an attack: PAD off
    return model


def _read(rel: str) -> list[bytes]:
    return [(ROOT / rel).read_bytes()]


# --- the journal ---------------------------------------------------------------------


def _journal_seed() -> list[bytes]:
    path = _WORK / "seed.jsonl"
    path.unlink(missing_ok=True)
    j = Journal(path, fsync=False)
    for n in range(4):
        j.append("event", {"n": n, "type": "crossing.accepted"}, f"2026-11-25T10:00:0{n}Z")
    j.close()
    return [path.read_bytes()]


def _journal(data: bytes) -> object:
    """Open what is on disk, append, and the new record is whole on its own line."""
    path = _file("journal.jsonl", data)
    j = Journal(path, fsync=False)
    record = j.append("event", {"after": "start"}, "2026-11-25T10:01:00Z")
    j.close()
    *_, last = iter_records(path)
    assert last == record, "the record written after the start was not kept whole"
    return record


# --- the referral store's times ------------------------------------------------------


def _store(data: bytes) -> object:
    folder = _WORK / "referrals"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    (folder / "b1-000001.bin").write_bytes(b"AGV1" + os.urandom(40))
    (folder / "b1-000001.json").write_bytes(data)
    store = ReferralStore(folder, b"k" * 32, 60, 3600)
    store.resolve_all(1_790_000_000.0)  # what the next boot does first
    store.purge(1_790_000_000.0)
    return store


STORE_SEED = json.dumps({"txn_id": "b1-000001", "referred_at": 1_789_999_000.0}).encode()

TARGETS = [
    Target(
        "model_face_descriptor",
        lambda: _read("models/face/dlib_resnet_v1.json") + _read("models/face/arcface_mbf.json"),
        _face,
        (DeviceError,),
        json_mutator,
    ),
    Target(
        "model_finger_descriptor",
        lambda: _read("models/finger/nbis_bozorth3.json"),
        _finger,
        (DeviceError,),
        json_mutator,
    ),
    Target(
        "model_pad",
        lambda: _read("models/face/pad_texture.json"),
        _pad,
        (DeviceError,),
        json_mutator,
    ),
    Target("journal_open", _journal_seed, _journal),
    Target("referral_store_start", lambda: [STORE_SEED], _store, (), json_mutator),
]
