"""Bounded fuzzing of the image and volume readers: executions, time, crashes found.

Every target takes the bytes of one file (a mutation of a valid seed file of its format),
writes them under the right suffix and calls the reader. The contract under test: a
reader returns an array of the documented layout, or raises
:class:`octvessel.errors.InputError` whose message is one line naming the file. Anything
else -- another exception type, a message without the file name, an array of the wrong
layout, a run longer than ``--timeout`` seconds -- is a *crash*; each distinct crash
(target, kind, place) is printed with a reproducer saved under ``--crash-dir``.

Targets: ``image`` (``read_image``), ``mask`` (``read_mask``, strict and thresholded),
for PNG, TIFF, BMP, GIF, JPEG, PPM/PGM seeds (8/16-bit, gray/RGB/RGBA/palette, float TIFF),
and ``volume`` (``read_volume``) for ``.npy``, ``.npz``, multi-page TIFF and raw Avanti
``.OCT`` seeds.

Engines: ``mutate`` (default, no extra packages): seeded random byte-level mutations --
bit flips, byte and 32-bit overwrites with boundary values, truncation, insertion,
deletion, block duplication, splicing of two seeds; PNG chunks get their CRC repaired
half of the time so mutations reach the decoder behind the checksum. ``atheris``
(``pip install atheris``): coverage-guided libFuzzer mutations of the same seeds.

    python benchmarks/fuzz_readers.py [--seconds 60] [--runs N] [--targets image,mask,volume]
                                      [--engine mutate|atheris] [--seed 0] [--crash-dir DIR]

A memory limit (``--max-memory-gb``, default 4) turns runaway allocations into
MemoryError, which counts as a crash unless the reader turned it into InputError.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octvessel.data.io import read_image, read_mask
from octvessel.errors import InputError
from octvessel.oct.readers import read_volume

# ------------------------------------------------------------------------------ seeds


def _pil(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    from PIL import Image

    im = Image.fromarray(array)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _tiff(array: np.ndarray, **kw: Any) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kw)
    return buf.getvalue()


def image_seeds() -> list[tuple[str, bytes]]:
    """(suffix, bytes) of small valid images in every format and pixel type read."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    mask = (gray > 128).astype(np.uint8) * 255
    return [
        (".png", _pil(rgb, "PNG")),
        (".png", _pil(gray, "PNG")),
        (".png", _pil(mask, "PNG")),
        (".png", _pil(np.dstack([rgb, gray]), "PNG")),
        (".png", _pil(rgb, "PNG", "P")),
        (".png", _pil(gray.astype(np.uint16) * 257, "PNG")),
        (".png", _pil(gray > 128, "PNG")),
        (".tif", _tiff(rgb)),
        (".tif", _tiff(gray.astype(np.uint16) * 257)),
        (".tif", _tiff((gray / 255).astype(np.float32))),
        (".tif", _tiff(mask, compression="zlib")),
        (".bmp", _pil(rgb, "BMP")),
        (".bmp", _pil(mask, "BMP", "1")),
        (".gif", _pil(rgb, "GIF", "P")),
        (".gif", _pil(mask, "GIF")),
        (".jpg", _pil(rgb, "JPEG")),
        (".jpg", _pil(gray, "JPEG")),
        (".ppm", _pil(rgb, "PPM")),
        (".pgm", _pil(gray, "PPM")),
        (".pgm", b"P5\n10 12\n65535\n" + (gray.astype(">u2") * 257).tobytes()),
    ]


def volume_seeds() -> list[tuple[str, bytes]]:
    """(suffix, bytes) of small valid volumes: .npy, .npz (with spacing/boundaries), TIFF, raw."""
    rng = np.random.default_rng(1)
    vol = rng.random((3, 16, 12), dtype=np.float32)
    seeds = []
    buf = io.BytesIO()
    np.save(buf, vol)
    seeds.append((".npy", buf.getvalue()))
    buf = io.BytesIO()
    np.save(buf, (vol * 255).astype(np.uint8))
    seeds.append((".npy", buf.getvalue()))
    for compress in (False, True):
        buf = io.BytesIO()
        (np.savez_compressed if compress else np.savez)(
            buf,
            data=vol,
            spacing=np.array([0.05, 0.0031, 0.018]),
            laterality=np.array("OD"),
            boundary_ILM=np.full((3, 12), 3.0, np.float32),
            boundary_RPE=np.full((3, 12), 9.0, np.float32),
        )
        seeds.append((".npz", buf.getvalue()))
    seeds.append((".tif", _tiff(vol, photometric="minisblack")))
    seeds.append((".OCT", rng.random((2, 8, 6), dtype=np.float32).astype("<f4").tobytes()))
    return seeds


# -------------------------------------------------------------------------- mutations

_INTERESTING_8 = (0x00, 0x01, 0x7F, 0x80, 0xFF)
_INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000, 65535 * 65535)


def _fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute every PNG chunk CRC, so mutations get past the checksum to the decoder."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        crc = zlib.crc32(bytes(data[pos + 4 : end])) & 0xFFFFFFFF
        data[end : end + 4] = struct.pack(">I", crc)
        pos = end + 4
    return data


def mutate(data: bytes, rnd: random.Random, other: bytes | None = None) -> bytes:
    """One to eight random byte-level mutations of ``data`` (``other``: a splice donor)."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randrange(9)
        n = len(b)
        if n == 0:
            b += bytes([rnd.randrange(256) for _ in range(rnd.randint(1, 16))])
            continue
        i = rnd.randrange(n)
        if op == 0:  # bit flip
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1:  # random byte
            b[i] = rnd.randrange(256)
        elif op == 2:  # boundary byte
            b[i] = rnd.choice(_INTERESTING_8)
        elif op == 3 and n >= 4:  # boundary 32-bit value, either byte order
            i = rnd.randrange(n - 3)
            b[i : i + 4] = struct.pack(rnd.choice("<>") + "I", rnd.choice(_INTERESTING_32))
        elif op == 4:  # truncate
            del b[rnd.randrange(n) :]
        elif op == 5:  # delete a block
            del b[i : i + rnd.randint(1, 32)]
        elif op == 6:  # insert random bytes
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 32)))
        elif op == 7:  # duplicate a block
            j = rnd.randrange(n)
            b[i:i] = b[j : j + rnd.randint(1, 64)]
        elif op == 8 and other:  # splice in part of another seed
            j = rnd.randrange(len(other))
            b[i:] = other[j:]
    if rnd.random() < 0.5:
        b = _fix_png_crcs(b)
    return bytes(b)


# ----------------------------------------------------------------------------- targets


class Crash(Exception):
    """A reader broke its contract (not an InputError crash of its own)."""


def _check_image(arr: Any, path: Path) -> None:
    ok = (
        isinstance(arr, np.ndarray)
        and arr.dtype == np.float32
        and arr.ndim == 3
        and arr.shape[2] in (1, 3)
        and arr.size > 0
        and bool(np.isfinite(arr).all())
        and float(arr.min()) >= 0.0
        and float(arr.max()) <= 1.0
    )
    if not ok:
        raise Crash(
            f"read_image returned {getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}"
        )


def _check_mask(arr: Any, path: Path) -> None:
    if not (isinstance(arr, np.ndarray) and arr.dtype == np.bool_ and arr.ndim == 2 and arr.size):
        raise Crash(
            f"read_mask returned {getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}"
        )


def _check_volume(vol: Any, path: Path) -> None:
    data = vol.data
    if not (data.dtype == np.float32 and data.ndim == 3 and data.size and np.isfinite(data).all()):
        raise Crash(f"read_volume returned {data.dtype} {data.shape}")


def target_image(path: Path) -> None:
    _check_image(read_image(path), path)


def target_mask(path: Path) -> None:
    _check_mask(read_mask(path), path)
    _check_mask(read_mask(path, threshold=0.5), path)


def target_volume(path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. an unusual raw B-scan count is a note, not an error
        _check_volume(read_volume(path), path)


TARGETS: dict[str, tuple[Callable[[Path], None], Callable[[], list[tuple[str, bytes]]]]] = {
    "image": (target_image, image_seeds),
    "mask": (target_mask, image_seeds),
    "volume": (target_volume, volume_seeds),
}


@dataclass
class Stats:
    """What a fuzzing run did."""

    executions: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    crashes: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    slowest: list[tuple[float, str, str, int]] = field(default_factory=list)

    def timed(self, seconds: float, target: str, suffix: str, size: int) -> None:
        """Keep the three slowest executions (seconds, target, suffix, input bytes)."""
        self.slowest = sorted([*self.slowest, (seconds, target, suffix, size)], reverse=True)[:3]


class _Timeout(BaseException):  # not swallowed by the readers' broad excepts
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def run_one(
    target: str, suffix: str, data: bytes, workdir: Path, timeout: float = 10.0
) -> tuple[str, str | None]:
    """Run one input; return (outcome, crash description or None).

    Outcomes: ``ok`` (a valid array), ``input-error`` (InputError, one line, names the
    file), ``crash`` (anything else).
    """
    fn = TARGETS[target][0]
    path = workdir / f"fuzz input{suffix}"
    path.write_bytes(data)
    use_alarm = timeout > 0 and hasattr(signal, "setitimer")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fn(path)
        return "ok", None
    except InputError as exc:
        text = str(exc)
        if "\n" in text or str(path) not in text:
            return "crash", f"InputError without one line naming the file: {text[:200]!r}"
        return "input-error", None
    except _Timeout:
        return "crash", f"timeout: no answer within {timeout:g} s"
    except Crash as exc:
        return "crash", f"contract: {exc}"
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        here = next(
            (
                f"{Path(f.filename).name}:{f.lineno}"
                for f in reversed(tb)
                if "octvessel" in f.filename
            ),
            f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?",
        )
        return "crash", f"{type(exc).__name__} at {here}: {' '.join(str(exc).split())[:160]}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def _record(
    stats: Stats, target: str, suffix: str, data: bytes, crash: str, crash_dir: Path | None
) -> None:
    key = (target, suffix, crash.split(":")[0] + crash.split(" at ")[-1].split(":")[0])
    if key in stats.crashes:
        stats.crashes[key]["count"] += 1
        return
    saved = None
    if crash_dir is not None:
        crash_dir.mkdir(parents=True, exist_ok=True)
        saved = crash_dir / f"crash-{target}-{len(stats.crashes)}{suffix}"
        saved.write_bytes(data)
    stats.crashes[key] = {
        "target": target,
        "suffix": suffix,
        "what": crash,
        "file": saved,
        "count": 1,
    }


def fuzz_mutate(
    targets: list[str],
    seconds: float,
    runs: int | None,
    seed: int,
    workdir: Path,
    crash_dir: Path | None,
    timeout: float,
    progress: bool = True,
    slow: float = 2.0,
) -> Stats:
    """The default engine: random mutations of the seeds, round-robin over the targets.

    Inputs slower than ``slow`` seconds are saved in ``crash_dir`` too (``slow-*``).
    """
    rnd = random.Random(seed)
    seeds = {t: TARGETS[t][1]() for t in targets}
    stats = Stats()
    start = time.perf_counter()
    last = start
    i = 0
    while True:
        elapsed = time.perf_counter() - start
        if (runs is not None and i >= runs) or (runs is None and elapsed >= seconds):
            break
        target = targets[i % len(targets)]
        suffix, data = rnd.choice(seeds[target])
        donor = rnd.choice(seeds[target])[1] if rnd.random() < 0.2 else None
        data = mutate(data, rnd, donor) if rnd.random() < 0.97 else data
        t0 = time.perf_counter()
        outcome, crash = run_one(target, suffix, data, workdir, timeout)
        took = time.perf_counter() - t0
        stats.timed(took, target, suffix, len(data))
        if crash_dir is not None and took > slow:
            crash_dir.mkdir(parents=True, exist_ok=True)
            (crash_dir / f"slow-{took:.1f}s-{target}-{i}{suffix}").write_bytes(data)
        stats.executions[target] += 1
        stats.outcomes[outcome] += 1
        if crash is not None:
            _record(stats, target, suffix, data, crash, crash_dir)
        i += 1
        if progress and time.perf_counter() - last > 10:
            last = time.perf_counter()
            print(
                f"  {i} executions, {len(stats.crashes)} distinct crashes, {last - start:.0f} s",
                flush=True,
            )
    stats.seconds = time.perf_counter() - start
    return stats


def fuzz_atheris(
    targets: list[str],
    seconds: float,
    runs: int | None,
    seed: int,
    workdir: Path,
    crash_dir: Path | None,
    timeout: float,
) -> Stats:
    """libFuzzer (atheris) mutations; the first input byte picks the target and seed."""
    import atheris

    seeds = [(t, s, d) for t in targets for s, d in TARGETS[t][1]()]
    stats = Stats()
    corpus = workdir / "corpus"
    corpus.mkdir(exist_ok=True)
    for k, (_, _, d) in enumerate(seeds):
        (corpus / f"seed{k}").write_bytes(bytes([k]) + d)

    start = time.perf_counter()

    def finish() -> None:
        # libFuzzer ends the process with C exit(), past Python: report and leave ourselves
        stats.seconds = time.perf_counter() - start
        print(report(stats, "atheris"), flush=True)
        shutil.rmtree(workdir, ignore_errors=True)  # os._exit skips the usual clean-up
        os._exit(1 if stats.crashes else 0)

    def one(data: bytes) -> None:
        done = sum(stats.executions.values())
        if (runs is not None and done >= runs) or (
            runs is None and time.perf_counter() - start >= seconds
        ):
            finish()
        if not data:
            return
        target, suffix, _ = seeds[data[0] % len(seeds)]
        t0 = time.perf_counter()
        outcome, crash = run_one(target, suffix, data[1:], workdir, timeout)
        stats.timed(time.perf_counter() - t0, target, suffix, len(data) - 1)
        stats.executions[target] += 1
        stats.outcomes[outcome] += 1
        if crash is not None:
            _record(stats, target, suffix, data[1:], crash, crash_dir)

    # a backstop only: one() reports and exits when the budget is spent
    argv = [sys.argv[0], str(corpus), f"-seed={seed + 1}", "-rss_limit_mb=0", "-timeout=0"]
    argv.append(f"-max_total_time={int(seconds) + 120}")
    atheris.instrument_all()  # coverage feedback from every loaded Python function
    atheris.Setup(argv, one)
    atheris.Fuzz()
    finish()
    return stats


def report(stats: Stats, engine: str) -> str:
    total = sum(stats.executions.values())
    lines = [
        f"engine {engine}: {total:,} executions in {stats.seconds:.1f} s "
        f"({total / max(stats.seconds, 1e-9):.0f}/s)",
        "  per target: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.executions.items())),
        "  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.outcomes.items())),
        "  slowest: "
        + ", ".join(f"{t:.2f} s ({g} {s}, {n:,} bytes)" for t, g, s, n in stats.slowest),
        f"  distinct crashes: {len(stats.crashes)}",
    ]
    for c in stats.crashes.values():
        where = f" -> {c['file']}" if c["file"] else ""
        lines.append(f"    [{c['target']} {c['suffix']}] x{c['count']}: {c['what']}{where}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    ap.add_argument("--runs", type=int, help="stop after this many executions instead")
    ap.add_argument("--targets", default="image,mask,volume")
    ap.add_argument("--engine", choices=("mutate", "atheris"), default="mutate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per input (a hang)")
    ap.add_argument("--max-memory-gb", type=float, default=4.0, help="address-space limit")
    ap.add_argument("--crash-dir", type=Path, help="save one reproducer per distinct crash here")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; expected {', '.join(TARGETS)}")
    if args.max_memory_gb > 0:
        limit = int(args.max_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(
        dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    ) as tmp:
        work = Path(tmp)
        if args.engine == "atheris":
            stats = fuzz_atheris(
                targets, args.seconds, args.runs, args.seed, work, args.crash_dir, args.timeout
            )
        else:
            stats = fuzz_mutate(
                targets, args.seconds, args.runs, args.seed, work, args.crash_dir, args.timeout
            )
    print(report(stats, args.engine))
    return 1 if stats.crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
