"""Atomic writes and safe loads: nothing half-written is ever left behind."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a function needs it: the reporting jobs never do
    import torch


class CheckpointError(RuntimeError):
    """A checkpoint or weights file could not be read."""


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (where the platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path`` (``write`` flushes and fsyncs it), then rename it
    over ``path`` and fsync the directory: after a crash, ``path`` is the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync it, then rename over it."""
    import torch


    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())

    return _atomic(path, write)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    return _atomic(path, write)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", path)


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(..., weights_only=True)`` with an error that says what to do."""
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train first")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with advice
        raise CheckpointError(f"could not load {path}: {_unreadable_reason(exc)}") from exc


def _unreadable_reason(exc: BaseException) -> str:
    """Why a weights-only load failed and what to do, in words of our own: PyTorch's message advises
    ``weights_only=False`` (unsafe, and no help for a file that is not a checkpoint)."""
    forbidden = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if forbidden:
        return (f"it holds a Python object ({forbidden[1]}), not only tensors and plain values, so it was not "
                "written by darc and is not loaded; re-create it with darc")
    return ("it is not a readable checkpoint (corrupt, truncated, or not a torch file); delete it and re-create "
            "it by rerunning the step that writes it (training resumes from the last good checkpoint if one exists)")


def load_weights(model: torch.nn.Module, state: dict[str, Any], source: str | os.PathLike) -> torch.nn.Module:
    """``model.load_state_dict(state)`` (strict), with a :class:`CheckpointError` that summarises a mismatch in
    one line (how many keys are missing, unexpected or of another shape, with an example of each) instead of
    listing every key."""
    own = model.state_dict()
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds a {type(state).__name__}, not a state dict of weights")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and hasattr(state[k], "shape") and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {what} (e.g. {v[0]!r})" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)) if v]
        raise CheckpointError(
            f"the weights in {source} do not fit this {type(model).__name__} ({len(own)} tensors), keys: "
            f"{', '.join(parts)}. They belong to another network: use the weights written with it."
        )
    model.load_state_dict(state, strict=True)
    return model


def fingerprint(*parts: Any) -> str:
    """A short SHA-1 of JSON-able values, tensors and modules (their state dicts): what a run was made from.

    Training runs store it in their checkpoint, so a run whose inputs changed starts afresh instead of
    resuming a checkpoint made from other inputs.
    """
    import torch

    digest = hashlib.sha1()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.nn.Module):
            obj = obj.state_dict()
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                digest.update(str(k).encode())
                feed(obj[k])
        elif isinstance(obj, list | tuple):
            for item in obj:
                feed(item)
        else:
            digest.update(json.dumps(obj, sort_keys=True, default=str).encode())

    for part in parts:
        feed(part)
    return digest.hexdigest()[:16]
