"""The bad-input corpus: what scanners and colleagues hand over, against every reader.

Every file here is generated in ``tmp_path`` (no binaries are committed). For each input
the test states the handling: it works (variants such as 16-bit, float, RGBA, palette,
1 x 1 and elongated images), or it fails as a user error -- exit status 2, exactly one line
on stderr naming the file, no traceback -- and leaves no partial or temporary file behind.
Commands run in-process through ``octvessel.cli.main`` (capsys counts the lines); one
subprocess test checks the real stderr of a fresh interpreter. See docs/robustness.md.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from octvessel import atomic
from octvessel.cli import main
from octvessel.data import image_write as dio
from octvessel.data import load_dataset, read_image, read_mask, write_image, write_mask
from octvessel.errors import InputError, Terminated, UsageError
from octvessel.models import create_model, load_model, save_pretrained, weights_file
from octvessel.models import pretrained as pre
from octvessel.oct import read_volume
from octvessel.preprocessing import Preprocessing

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (36, 44, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (36, 44), dtype=np.uint8)
FORMATS = ("png", "tif", "bmp", "gif", "jpg", "ppm")
#: a small training recipe for `octvessel train` (seconds on one CPU core)
TINY_TRAIN = [
    "--base-channels", "4", "--iterations", "1", "--color", "gray", "--crop", "32",
    "--images-per-batch", "2", "--crops-per-image", "2", "--epochs", "1",
    "--steps-per-epoch", "2", "--val-fraction", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _leave_the_allocator_alone(monkeypatch):
    """predict would tune glibc's malloc for the whole test process; not here."""
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")


# ------------------------------------------------------------------------------ helpers


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``octvessel ARGS`` in-process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, names: Path | str | None = None, *words: str) -> str:
    """Exit 2, one stderr line, no traceback; the line names ``names`` and holds ``words``."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    if names is not None:
        assert str(names) in line, line
    for w in words:
        assert w in line, line
    return line


def assert_no_debris(folder: Path) -> None:
    """No temporary file is left, and every output file is complete (it reads back)."""
    if not folder.exists():
        return
    for p in folder.rglob("*"):
        assert ".tmp" not in p.name, f"temporary file left behind: {p}"
        if not p.is_file():
            continue
        suffix = p.suffix.lower()
        if suffix in (".png", ".tif", ".bmp"):
            read_image(p)
        elif suffix == ".json":
            json.loads(p.read_text())
        elif suffix == ".safetensors":
            pre.read_header(p)
            from safetensors.torch import load_file

            load_file(str(p))
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                [z[k] for k in z.files]


def save(path: Path, array: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array, **kw)
    else:
        Image.fromarray(array).save(path, **kw)
    return path


def good_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "tif":
        tifffile.imwrite(buf, RGB)
    else:
        Image.fromarray(RGB).save(buf, format={"jpg": "JPEG", "ppm": "PPM"}.get(fmt, fmt.upper()))
    return buf.getvalue()


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    for i in range(6, len(b), 5):
        b[i] ^= 0xA5
    return bytes(b)


#: corruptions of a valid file: every one must give InputError naming the file
CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda d: d[: len(d) // 2],
    "header-only": lambda d: d[:20],
    "bit-flipped": _flip,
    "zero-byte": lambda d: b"",
    "text": lambda d: b"this is a text file, not an image\n" * 4,
}


def corrupt_file(folder: Path, fmt: str, kind: str) -> Path:
    path = folder / f"{kind}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CORRUPTIONS[kind](good_bytes(fmt)))
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width`` x ``height`` but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def variants(folder: Path) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Files that must WORK: name -> (path, (height, width)); every file stem is unique."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = GRAY.shape
    out: dict[str, tuple[Path, tuple[int, int]]] = {}

    def pil(name: str, image: Image.Image, suffix: str, hw: tuple[int, int] = (h, w)) -> None:
        path = folder / f"{name.replace(' ', '_')}{suffix}"
        image.save(path)
        out[name] = (path, hw)

    def raw(name: str, data: bytes, suffix: str) -> None:
        path = folder / f"{name.replace(' ', '_')}{suffix}"
        path.write_bytes(data)
        out[name] = (path, (h, w))

    def tif(name: str, array: np.ndarray, **kw) -> None:
        path = folder / f"{name.replace(' ', '_')}.tif"
        tifffile.imwrite(path, array, **kw)
        out[name] = (path, array.shape[:2])

    pil("gray png", Image.fromarray(GRAY), ".png")
    pil("rgb jpeg", Image.fromarray(RGB), ".jpg")
    pil("gray jpeg", Image.fromarray(GRAY), ".jpg")
    pil("cmyk jpeg", Image.fromarray(RGB).convert("CMYK"), ".jpg")
    pil("rgba png", Image.fromarray(np.dstack([RGB, GRAY])), ".png")
    pil("gray alpha png", Image.fromarray(GRAY).convert("LA"), ".png")
    pil("palette png", Image.fromarray(RGB).convert("P"), ".png")
    pil("palette gif", Image.fromarray(RGB).convert("P"), ".gif")
    pil("palette bmp", Image.fromarray(RGB).convert("P"), ".bmp")
    pil("1-bit png", Image.fromarray(GRAY > 128), ".png")
    pil("16-bit png", Image.fromarray(GRAY.astype(np.uint16) * 257), ".png")
    raw(
        "16-bit pgm",
        f"P5\n{w} {h}\n65535\n".encode() + (GRAY.astype(">u2") * 257).tobytes(),
        ".pgm",
    )
    raw(
        "16-bit ppm", f"P6\n{w} {h}\n65535\n".encode() + (RGB.astype(">u2") * 257).tobytes(), ".ppm"
    )
    tif("16-bit rgb tiff", RGB.astype(np.uint16) * 257)
    tif("float32 tiff", (GRAY / 255.0).astype(np.float32))
    tif("float64 tiff", GRAY / 255.0)
    tif("float16 tiff", (GRAY / 255.0).astype(np.float16))
    tif("rgba tiff", np.dstack([RGB, GRAY]), photometric="rgb", extrasamples=[2])
    anim = folder / "animated.gif"
    Image.fromarray(RGB).save(anim, save_all=True, append_images=[Image.fromarray(255 - RGB)])
    out["animated gif (first frame)"] = (anim, (h, w))
    pil("1x1", Image.fromarray(RGB[:1, :1]), ".png", (1, 1))
    pil("1x3000", Image.fromarray(np.tile(GRAY[:1], (1, 70))[:, :3000]), ".png", (1, 3000))
    pil("3000x2", Image.fromarray(np.tile(GRAY[:, :2], (90, 1))[:3000]), ".png", (3000, 2))
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny IterNet weights bundle (random weights, RGB preprocessing)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny model"
    create_model("iternet", base_channels=4, iterations=1).save_pretrained(path)
    return path


def labelled(root: Path, n: int = 3, h: int = 36, w: int = 44, name: str = "s{}") -> Path:
    """A generic-layout dataset: images/, labels/."""
    rng = np.random.default_rng(1)
    for i in range(n):
        stem = name.format(i)
        write_image(root / "images" / f"{stem}.png", (rng.random((h, w, 3)) * 255).astype(np.uint8))
        write_mask(root / "labels" / f"{stem}.png", rng.random((h, w)) < 0.2)
    return root


# ------------------------------------------------------------------- image readers


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_images_are_one_line_input_errors(tmp_path, fmt, kind, capfd):
    path = corrupt_file(tmp_path, fmt, kind)
    for reader in (read_image, read_mask):
        try:
            reader(path)
        except InputError as exc:
            text = str(exc)
            assert str(path) in text and "\n" not in text, text
        else:  # only bit-flipped JPEG/BMP/PPM pixel data may still decode (lossy formats do)
            assert kind == "bit-flipped", (reader.__name__, fmt, kind)
    out, err = capfd.readouterr()
    assert err == "", f"the decoders wrote to stderr: {err[:300]}"


def test_image_variants_all_read(tmp_path):
    for name, (path, hw) in variants(tmp_path).items():
        img = read_image(path)
        assert img.dtype == np.float32 and img.shape[:2] == hw and img.shape[2] in (1, 3), name
        assert 0.0 <= img.min() and img.max() <= 1.0, name


def test_huge_headers_are_refused_before_decoding(tmp_path, monkeypatch):
    big = tmp_path / "bomb.png"
    big.write_bytes(png_header_only(100_000, 100_000))  # Pillow's own limit
    with pytest.raises(InputError, match="too large") as exc:
        read_image(big)
    assert str(big) in str(exc.value)
    mid = tmp_path / "mid.png"
    mid.write_bytes(png_header_only(12_000, 12_000))  # 144 MP: above ours, below Pillow's
    with pytest.raises(InputError, match="megapixels"):
        read_image(mid)
    monkeypatch.setenv("OCTVESSEL_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="OCTVESSEL_MAX_PIXELS"):
        read_image(save(tmp_path / "ok.png", RGB))
    monkeypatch.setenv("OCTVESSEL_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="OCTVESSEL_MAX_PIXELS"):
        read_image(tmp_path / "ok.png")


def test_short_image_data_are_not_filled_with_zeros(tmp_path):
    """Pillow and tifffile fill missing rows with black when the data end early."""
    rows = np.zeros((5, 44), np.uint8)
    rows[:, ::3] = 255
    raw = b"".join(b"\x00" + r.tobytes() for r in rows)  # filter byte 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    png = tmp_path / "short rows.png"  # the header says 36 rows, the data hold 5
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 44, 36, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    tif = save(tmp_path / "short strips.tif", GRAY)
    with tifffile.TiffFile(tif) as t:  # make the header announce 3,600 rows
        where = t.pages[0].tags["ImageLength"].valueoffset
        kind = t.pages[0].tags["ImageLength"].dtype
    data = bytearray(tif.read_bytes())
    struct.pack_into("<H" if kind == 3 else "<I", data, where, 3600)
    tif.write_bytes(bytes(data))
    for path in (png, tif):
        for reader in (read_image, read_mask):
            with pytest.raises(InputError, match="truncated or damaged") as exc:
                reader(path)
            assert str(path) in str(exc.value)
    # the same files written whole read back exactly
    write_mask(tmp_path / "whole.png", rows > 0)
    assert np.array_equal(read_mask(tmp_path / "whole.png"), rows > 0)


def test_odd_tiffs_are_input_errors(tmp_path):
    five = save(tmp_path / "five.tif", RNG.integers(0, 255, (5, 8, 9), dtype=np.uint8))
    cplx = save(tmp_path / "complex.tif", RNG.random((8, 9)).astype(np.complex64))
    stack = save(tmp_path / "stack.tif", RNG.integers(0, 255, (3, 8, 9, 2), dtype=np.uint8))
    for path in (five, cplx, stack):
        for reader in (read_image, read_mask):
            with pytest.raises(InputError) as exc:
                reader(path)
            assert str(path) in str(exc.value)
    outside = save(tmp_path / "f.tif", np.full((4, 4), 7.5, np.float32))
    with pytest.raises(InputError, match=r"expected \[0, 1\]"):
        read_image(outside)


def test_labels_with_three_values_are_refused_and_named(tmp_path):
    lab = save(tmp_path / "lab.png", (RNG.integers(0, 3, (10, 12)) * 100).astype(np.uint8))
    with pytest.raises(InputError, match=r"3 values \(0, 100, 200\)") as exc:
        read_mask(lab)
    assert str(lab) in str(exc.value)


# ---------------------------------------------------------------------- predict


def test_predict_works_on_every_variant_and_awkward_names(tmp_path, bundle, capsys):
    src = tmp_path / "in"
    expect = {Path(p).stem: hw for p, hw in variants(src).values()}
    odd = ["scan with spaces", "Netzhaut-Ä-é-漢字"]
    for name in odd:
        write_image(src / f"{name}.png", RGB)
        expect[name] = RGB.shape[:2]
    out = tmp_path / "out dir ü"
    code, stdout, err = cli(capsys, "predict", "-i", src, "-o", out, "-m", bundle, "--no-progress")
    assert code == 0, err
    assert err == ""
    for stem, hw in expect.items():
        for suffix in ("_prob.png", "_prob.tif", "_mask.png", "_overlay.png"):
            assert read_image(out / f"{stem}{suffix}").shape[:2] == hw, (stem, suffix)
    assert_no_debris(out)


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX matter")
def test_file_names_that_are_not_utf8_do_not_break_the_terminal_output(tmp_path, bundle):
    src = tmp_path / "in"
    src.mkdir()
    raw = os.path.join(os.fsencode(src), b"scan\xff\xfe.png")
    with open(raw, "wb") as fh:
        fh.write(good_bytes("png"))
    with open(os.path.join(os.fsencode(src), b"junk\xff.png"), "wb") as fh:
        fh.write(b"not an image")
    env = {**os.environ, "OCTVESSEL_MALLOC_TUNING": "0", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "octvessel", "predict", "-i", str(src), "-o", str(tmp_path / "o"),
         "-m", str(bundle), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr  # the junk one
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "junk\\udcff.png" in proc.stderr or "junk\\xff.png" in proc.stderr
    assert os.path.exists(os.path.join(os.fsencode(tmp_path / "o"), b"scan\xff\xfe_prob.png"))


@pytest.mark.parametrize("kind", ["truncated", "bit-flipped", "zero-byte", "header-only"])
def test_predict_reports_a_corrupt_image_and_predicts_the_rest(tmp_path, bundle, capsys, kind):
    src = tmp_path / "in"
    write_image(src / "good.png", RGB)
    bad = corrupt_file(src, "png", kind)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "predict", "-i", src, "-o", out, "-m", bundle, "--no-progress")
    assert_user_error(code, err, bad)
    assert (out / "good_prob.png").is_file()
    assert not any(p.name.startswith(bad.stem) for p in out.iterdir())
    assert_no_debris(out)
    # a single corrupt file given directly
    code, _, err = cli(capsys, "predict", "-i", bad, "-o", tmp_path / "o2", "-m", bundle)
    assert_user_error(code, err, bad)


def test_predict_input_problems(tmp_path, bundle, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, _, err = cli(capsys, "predict", "-i", empty, "-o", tmp_path / "o", "-m", bundle)
    assert_user_error(code, err, empty, "no image files")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, _, err = cli(capsys, "predict", "-i", text, "-o", tmp_path / "o", "-m", bundle)
    assert_user_error(code, err, text, "not an image")
    code, _, err = cli(
        capsys, "predict", "-i", tmp_path / "nope.png", "-o", tmp_path / "o", "-m", bundle
    )
    assert_user_error(code, err, tmp_path / "nope.png", "not found")


# ----------------------------------------------------------------- model loading


def _bundle_copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_config(bundle: Path, **changes) -> Path:
    path = bundle / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing config", "config.json"),
        ("malformed config", "not a valid JSON"),
        ("config is a list", "expected a JSON object"),
        ("newer schema", "schema_version"),
        ("unknown model", "unknown model"),
        ("unknown option", "unknown option"),
        ("bad option value", "base_channels"),
        ("gigantic network", "do not fit"),
        ("bad sha256 entry", "sha256"),
        ("tampered weights", "sha256"),
        ("another architecture", "do not fit"),
        ("another shape", "of another shape"),
        ("not safetensors", "not a readable safetensors"),
        ("NaN weights", "NaN or infinite"),
        ("pickled checkpoint", "convert_checkpoint"),
    ],
)
def test_bad_model_bundles_are_one_line_errors(tmp_path, bundle, capsys, case, words):
    b = _bundle_copy(bundle, tmp_path / "b")
    weights, config = b / "model.safetensors", b / "config.json"
    named = config
    model_arg: Path = b
    if case == "missing config":
        config.unlink()
    elif case == "malformed config":
        config.write_text('{"model": "iternet", ')
    elif case == "config is a list":
        config.write_text("[1, 2]")
    elif case == "newer schema":
        _edit_config(b, schema_version=99)
    elif case == "unknown model":
        _edit_config(b, model="resnet-9000")
    elif case == "unknown option":
        _edit_config(b, model_config={"base_channels": 4, "iterations": 1, "widht": 3})
    elif case == "bad option value":
        _edit_config(b, model_config={"base_channels": "four", "iterations": 1})
    elif (
        case == "gigantic network"
    ):  # 80 billion parameters: refused from the header, no allocation
        _edit_config(b, model_config={"base_channels": 100_000, "iterations": 1}, sha256={})
        named = weights
    elif case == "bad sha256 entry":
        _edit_config(b, sha256={"model.safetensors": 12345})
    elif case == "tampered weights":
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0x01
        weights.write_bytes(bytes(data))
        named = weights
    elif case == "another architecture":
        create_model("unet-small").save_pretrained(tmp_path / "u")
        weights.write_bytes((tmp_path / "u" / "model.safetensors").read_bytes())
        _edit_config(b, sha256={})
        named = weights
    elif case == "another shape":
        create_model("iternet", base_channels=8, iterations=1).save_pretrained(tmp_path / "k8")
        weights.write_bytes((tmp_path / "k8" / "model.safetensors").read_bytes())
        _edit_config(b, sha256={})
        named = weights
    elif case == "not safetensors":
        weights.write_bytes(b"\x00" * 64)
        _edit_config(b, sha256={})
        named = weights
    elif case == "NaN weights":
        model, _ = load_model(bundle)
        with torch.no_grad():
            next(model.parameters())[0].fill_(float("nan"))
        pre.save_weights(model, weights)
        _edit_config(b, sha256={})
        named = weights
    elif case == "pickled checkpoint":
        model_arg = named = tmp_path / "old.pth"
        torch.save(create_model("iternet", base_channels=4, iterations=1).state_dict(), model_arg)
    with pytest.raises(InputError, match=words):
        load_model(model_arg)
    write_image(tmp_path / "img.png", RGB)
    code, _, err = cli(
        capsys, "predict", "-i", tmp_path / "img.png", "-o", tmp_path / "o", "-m", model_arg
    )
    assert_user_error(code, err, named, words)
    assert not (tmp_path / "o" / "img_prob.png").exists()


def test_pickles_are_never_run_and_weights_only_checkpoints_convert(tmp_path):
    class Evil:
        def __reduce__(self):  # unpickling would create a file
            return (open, (str(tmp_path / "pwned"), "w"))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(InputError, match="weights-only"):
        pre.convert_checkpoint(evil, tmp_path / "never", "iternet", base_channels=4)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "never").exists()
    # a legitimate old-style checkpoint: {"state_dict": ...} saved by torch.save, DataParallel prefix
    torch.manual_seed(3)
    net = create_model("iternet", base_channels=4, iterations=1)
    ckpt = tmp_path / "old.pth"
    torch.save(
        {"epoch": 7, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, ckpt
    )
    out = pre.convert_checkpoint(
        ckpt, tmp_path / "converted", "iternet", base_channels=4, iterations=1
    )
    model, config = load_model(out)
    assert config.sha256["model.safetensors"] == pre.sha256_of(out / "model.safetensors")
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), net.state_dict().values(), strict=True)
    )
    with pytest.raises(InputError, match="do not fit"):
        pre.convert_checkpoint(ckpt, tmp_path / "wrong", "iternet", base_channels=8, iterations=1)


def test_shipped_weights_are_verified_by_sha256(tmp_path, monkeypatch, bundle):
    shipped = tmp_path / "weights"
    good = _bundle_copy(bundle, shipped / "tiny-shipped")
    monkeypatch.setattr(pre, "SHIPPED_DIR", shipped)
    model, config = load_model("tiny-shipped")
    assert config.sha256["model.safetensors"] == pre.sha256_of(good / "model.safetensors")
    data = bytearray((good / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit of one weight
    (good / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match") as exc:
        load_model("tiny-shipped")
    assert "model.safetensors" in str(exc.value)
    _edit_config(good, sha256={})
    with pytest.raises(InputError, match="shipped weights must have their sha256"):
        load_model("tiny-shipped")


# ------------------------------------------------------------------ evaluate, train


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("three-valued label", "3 values"),
        ("label of another size", "same size"),
        ("mask of another size", "same size"),
        ("corrupt label", "cannot read label"),
        ("corrupt image", "cannot read image"),
        ("unknown layout", "unknown dataset layout"),
        ("malformed dataset.json", "not valid JSON"),
        ("image too small to train on", "too small"),
    ],
)
def test_bad_datasets_for_evaluate_and_train(tmp_path, capsys, case, words):
    root = labelled(tmp_path / "data set")
    named: Path = root
    if case == "three-valued label":
        named = save(
            root / "labels" / "s1.png", (RNG.integers(0, 3, (36, 44)) * 120).astype(np.uint8)
        )
    elif case == "label of another size":
        named = write_mask(root / "labels" / "s1.png", np.zeros((30, 44), bool))
    elif case == "mask of another size":
        named = write_mask(root / "masks" / "s1.png", np.ones((36, 40), bool))
    elif case == "corrupt label":
        named = root / "labels" / "s2.png"
        named.write_bytes(named.read_bytes()[:40])
    elif case == "corrupt image":
        named = root / "images" / "s0.png"
        named.write_bytes(_flip(named.read_bytes()))
    elif case == "unknown layout":
        (root / "images").rename(root / "pictures")
    elif case == "malformed dataset.json":
        named = root / "dataset.json"
        named.write_text('{"splits": ')
    elif case == "image too small to train on":
        write_image(root / "images" / "s1.png", RGB[:2, :2])
        named = write_mask(root / "labels" / "s1.png", np.zeros((2, 2), bool))
        named = root / "images" / "s1.png"
    if case != "image too small to train on":
        preds = tmp_path / "preds"
        for i in range(3):
            write_image(preds / f"s{i}_prob.png", np.zeros((36, 44), np.float32))
        code, _, err = cli(
            capsys, "evaluate", "-d", root, "-p", preds, "-o", tmp_path / "ev", "--no-progress"
        )
        assert_user_error(code, err, named, words)
        assert not (tmp_path / "ev" / "metrics.json").exists()
    code, _, err = cli(capsys, "train", "-d", root, "-o", tmp_path / "run", *TINY_TRAIN)
    assert_user_error(code, err, named, words)
    assert not (tmp_path / "run" / "last.safetensors").exists()
    assert_no_debris(tmp_path / "run")
    assert_no_debris(tmp_path / "ev")


def test_awkward_names_and_sizes_train_and_evaluate(tmp_path, bundle, capsys):
    root = labelled(tmp_path / "dåta sét", name="Bild {} ü")
    write_image(root / "images" / "long one.png", np.tile(RGB[:8], (1, 40, 1)))  # 8 x 1760
    write_mask(root / "labels" / "long one.png", np.tile(GRAY[:8] > 200, (1, 40)))
    code, _, err = cli(capsys, "train", "-d", root, "-o", tmp_path / "rün", *TINY_TRAIN)
    assert code == 0, err
    assert_no_debris(tmp_path / "rün")
    preds = tmp_path / "prédictions"
    code, _, err = cli(
        capsys, "predict", "-i", root, "-o", preds, "-m", tmp_path / "rün", "--no-progress"
    )
    assert code == 0, err
    code, out, err = cli(
        capsys, "evaluate", "-d", root, "-p", preds, "-o", tmp_path / "év", "--no-progress"
    )
    assert code == 0, err
    result = json.loads((tmp_path / "év" / "metrics.json").read_text())
    assert result["n_images"] == 4
    assert {r["name"] for r in result["per_image"]} >= {"Bild 0 ü", "long one"}


def test_train_config_problems(tmp_path, capsys):
    root = labelled(tmp_path / "d")
    toml = tmp_path / "recipe.toml"
    for text, words in [
        ("epochs = [\n", "not a valid TOML"),
        ("epochz = 3\n", "epochz"),
        ("lr = -1.0\n", "lr"),
    ]:
        toml.write_text(text)
        code, _, err = cli(
            capsys, "train", "-d", root, "-o", tmp_path / "r", "--config", toml, *TINY_TRAIN
        )
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    code, _, err = cli(capsys, "train", "-d", root, "-o", tmp_path / "r2", "--resume", *TINY_TRAIN)
    assert_user_error(code, err, tmp_path / "r2", "resume")


# ------------------------------------------------------------------- reconstruct


def _volumes(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad volume files: name -> (path, words of the error)."""
    folder.mkdir(parents=True, exist_ok=True)
    v = RNG.random((4, 40, 24)).astype(np.float32)
    out = {}

    def add(name: str, words: str, write: Callable[[Path], object]) -> None:
        path = folder / name
        write(path)
        out[name] = (path, words)

    add("nan.npy", "NaN", lambda p: np.save(p, np.where(v > 0.95, np.nan, v)))
    add("inf.npy", "infinite", lambda p: np.save(p, np.where(v > 0.95, np.inf, v)))
    add("huge values.npy", "magnitudes", lambda p: np.save(p, v * np.float32(3e38)))
    add(
        "objects.npy",
        "never loaded",
        lambda p: np.save(p, np.array([{}], object), allow_pickle=True),
    )
    add(
        "truncated.npy", "truncated", lambda p: (np.save(p, v), p.write_bytes(p.read_bytes()[:500]))
    )
    add("bomb.npy", "OCTVESSEL_MAX_VOXELS", lambda p: p.write_bytes(
        b"\x93NUMPY\x01\x00v\x00"
        + b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999, 99999, 99999), }".ljust(117)
        + b"\n"))  # fmt: skip
    add("zero.npy", "cannot read .npy", lambda p: p.write_bytes(b""))
    add("text.npz", "cannot read .npz", lambda p: p.write_text("not a zip"))
    add("strings.npz", "spacing", lambda p: np.savez(p, data=v, spacing=np.array(["a", "b", "c"])))
    add("2d-spacing.npz", "spacing", lambda p: np.savez(p, data=v, spacing=np.array([1.0, 2.0])))
    add(
        "bad boundary.npz",
        "boundary ILM",
        lambda p: np.savez(p, data=v, boundary_ILM=np.zeros((2, 2))),
    )
    add(
        "nan.tif",
        "NaN",
        lambda p: tifffile.imwrite(p, np.where(v > 0.95, np.nan, v), photometric="minisblack"),
    )
    add(
        "truncated.tif",
        "truncated",
        lambda p: (
            tifffile.imwrite(p, v, photometric="minisblack"),
            p.write_bytes(p.read_bytes()[:300]),
        ),
    )
    add("odd size.OCT", "multiple of 4", lambda p: p.write_bytes(b"\0" * 4001))
    add("impossible size.OCT", "do not fit", lambda p: p.write_bytes(b"\0" * 4 * 1237))
    add("nan.OCT", "NaN", lambda p: np.full((1, 385, 640), np.nan, "<f4").tofile(p))
    add("junk.vol", "Heidelberg .vol", lambda p: p.write_bytes(b"HSF-OCT-103 " + b"\0" * 2000))
    add("tiny.npy", "too small", lambda p: np.save(p, v[:1]))
    return out


def test_reconstruct_refuses_bad_volumes_with_one_line(tmp_path, capsys):
    for name, (path, words) in _volumes(tmp_path / "vols").items():
        out = tmp_path / "out" / name
        code, _, err = cli(capsys, "reconstruct", "-i", path, "-o", out, "--variant", "P1")
        assert_user_error(code, err, path, words)
        assert not out.exists() or not any(out.glob("*.bmp")), name
        assert_no_debris(out)
        if name != "tiny.npy":  # readable; too small only for an en-face image
            with pytest.raises(InputError, match=words.split()[0]) as exc:
                read_volume(path)
            assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_reconstruct_awkward_names_work(tmp_path, capsys):
    src = tmp_path / "Volumes ü"
    src.mkdir()
    np.save(src / "Auge links 1.npy", RNG.random((4, 40, 24)).astype(np.float32))
    code, out, err = cli(
        capsys, "reconstruct", "-i", src, "-o", tmp_path / "out ü", "--variant", "P1"
    )
    assert code == 0, err
    assert read_image(tmp_path / "out ü" / "Auge links 1_fundus_P1.bmp").shape == (4, 24, 1)
    bscans = tmp_path / "B-scans é"
    for i in range(3):
        write_image(bscans / f"b {i}.png", GRAY[:, :24])
    code, out, err = cli(
        capsys, "reconstruct", "-i", bscans, "-o", tmp_path / "out ü", "--variant", "P1"
    )
    assert code == 0, err
    assert read_image(tmp_path / "out ü" / "B-scans é_fundus_P1.bmp").shape == (3, 24, 1)


# --------------------------------------------------------------------- outputs


@pytest.mark.parametrize("verb", ["predict", "evaluate", "reconstruct", "train"])
def test_output_path_that_is_a_file_is_refused_before_work(tmp_path, bundle, capsys, verb):
    root = labelled(tmp_path / "d")
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should go")
    vol = tmp_path / "v.npy"
    np.save(vol, RNG.random((4, 40, 24)).astype(np.float32))
    preds = tmp_path / "p"
    for i in range(3):
        write_image(preds / f"s{i}_prob.png", np.zeros((36, 44), np.float32))
    args = {
        "predict": ["-i", root, "-m", bundle],
        "evaluate": ["-d", root, "-p", preds],
        "reconstruct": ["-i", vol],
        "train": ["-d", root, *TINY_TRAIN],
    }[verb]
    for out in (blocker, blocker / "sub"):
        code, _, err = cli(capsys, verb, *args, "-o", out)
        assert_user_error(code, err, blocker, "not a folder")
    assert blocker.read_text().startswith("a file")


def test_unwritable_output_folder(tmp_path, bundle, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:  # root (or a file system without permissions): chmod does not block writes
            probe.unlink()
            pytest.skip("permissions do not stop this user from writing (running as root?)")
        write_image(tmp_path / "img.png", RGB)
        code, _, err = cli(
            capsys, "predict", "-i", tmp_path / "img.png", "-o", locked / "o", "-m", bundle
        )
        assert_user_error(code, err, locked, "Permission denied")
    finally:
        locked.chmod(0o700)


def _full_disk_after(monkeypatch, n_ok: int) -> None:
    """Let ``n_ok`` files be flushed to disk, then fail the next flush as a full disk does."""
    real = atomic._fsync
    calls = [0]

    def flaky(path: Path) -> None:
        if not Path(path).is_dir():
            calls[0] += 1
            if calls[0] > n_ok:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    monkeypatch.setattr(atomic, "_fsync", flaky)


def _half_then_enospc(monkeypatch, n_ok: int) -> None:
    """Image writes: ``n_ok`` succeed; the next writes half its bytes, then the disk is full."""
    real = dio._write_array
    calls = [0]

    def flaky(tmp, out, suffix):
        calls[0] += 1
        if calls[0] <= n_ok:
            return real(tmp, out, suffix)
        real(tmp, out, suffix)
        data = Path(tmp).read_bytes()
        Path(tmp).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(dio, "_write_array", flaky)


@pytest.mark.parametrize("n_ok", [0, 1, 5])
def test_full_disk_half_way_through_predict_leaves_no_partial_file(
    tmp_path, bundle, capsys, monkeypatch, n_ok
):
    src = tmp_path / "in"
    for i in range(2):
        write_image(src / f"im{i}.png", RGB)
    out = tmp_path / "out"
    _half_then_enospc(monkeypatch, n_ok)
    code, _, err = cli(capsys, "predict", "-i", src, "-o", out, "-m", bundle, "--no-progress")
    assert_user_error(code, err, out, "No space left on device")
    assert_no_debris(out)
    monkeypatch.undo()
    monkeypatch.setenv("OCTVESSEL_MALLOC_TUNING", "0")
    code, stdout, err = cli(capsys, "predict", "-i", src, "-o", out, "-m", bundle, "--no-progress")
    assert code == 0, err  # the rerun completes what is missing
    assert len(list(out.glob("*.png"))) == 6 and len(list(out.glob("*.tif"))) == 2


@pytest.mark.parametrize("verb", ["evaluate", "reconstruct"])
def test_full_disk_in_json_and_image_writers(tmp_path, capsys, monkeypatch, verb):
    root = labelled(tmp_path / "d")
    preds = tmp_path / "p"
    for i in range(3):
        write_image(preds / f"s{i}_prob.png", np.zeros((36, 44), np.float32))
    vol = tmp_path / "v.npy"
    np.save(vol, RNG.random((4, 40, 24)).astype(np.float32))
    out = tmp_path / "out"
    args = ["-d", root, "-p", preds, "--no-progress"] if verb == "evaluate" else ["-i", vol]
    _full_disk_after(monkeypatch, 1)
    code, _, err = cli(capsys, verb, *args, "-o", out)
    assert_user_error(code, err, out, "No space left on device")
    assert_no_debris(out)


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    root = labelled(tmp_path / "d")
    run = tmp_path / "run"
    args = ["train", "-d", root, "-o", run, *TINY_TRAIN]
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    before = pre.sha256_of(run / "last.safetensors")
    real_save = weights_file.save_file

    def half_then_full(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(weights_file, "save_file", half_then_full)
    code, _, err = cli(capsys, "train", "-d", root, "-o", run, "--overwrite", *TINY_TRAIN)
    assert_user_error(code, err, run, "No space left on device")
    assert pre.sha256_of(run / "last.safetensors") == before  # the old checkpoint is intact
    assert_no_debris(run)


def test_sigterm_while_writing_removes_the_temporary_file(tmp_path, bundle, capsys, monkeypatch):
    write_image(tmp_path / "img.png", RGB)

    def killed(tmp, out, suffix):
        Path(tmp).write_bytes(b"half an image")
        raise Terminated(15)

    monkeypatch.setattr(dio, "_write_array", killed)
    code, _, err = cli(
        capsys, "predict", "-i", tmp_path / "img.png", "-o", tmp_path / "o", "-m", bundle
    )
    assert code == 143 and err.strip() == "octvessel predict: terminated"
    assert_no_debris(tmp_path / "o")
    assert not list((tmp_path / "o").glob("*.png"))


# -------------------------------------------------------------------- memory


def test_max_memory_is_validated_and_whole_refuses_over_budget(tmp_path, bundle, capsys):
    write_image(tmp_path / "img.png", np.zeros((150, 200, 3), np.uint8))
    base = ["predict", "-i", tmp_path / "img.png", "-m", bundle, "--no-progress"]
    for bad in ("lots", "-1GB", "0", "4XB"):
        code, _, err = cli(capsys, *base, "-o", tmp_path / "o", f"--max-memory={bad}")
        assert_user_error(code, err, None, "memory size")
    code, _, err = cli(
        capsys, *base, "-o", tmp_path / "o", "--max-memory", "1MB", "--method", "whole"
    )
    line = assert_user_error(code, err, None, "--method tiles")
    assert "200x150 grid" in line and "1 MB" in line
    assert not (tmp_path / "o" / "img_prob.png").exists()
    # auto tiles what whole would not fit; the result has the image's size
    code, out, err = cli(
        capsys, *base, "-o", tmp_path / "o2", "--max-memory", "1MB", "--tile", "64"
    )
    assert code == 0, err
    assert "tiles x1" in out
    assert read_image(tmp_path / "o2" / "img_prob.png").shape[:2] == (150, 200)
    # the same folder may be resumed under another budget (a resource, not a result, setting)
    code, out, err = cli(
        capsys, *base, "-o", tmp_path / "o2", "--max-memory", "2GB", "--tile", "64"
    )
    assert code == 0 and "1 skipped" in out, err
    code, _, err = cli(capsys, *base, "-o", tmp_path / "o3", "--input-size", "100000", "100000")
    assert_user_error(code, err, None, "megapixels")


# ---------------------------------------------------------- a real process, real stderr


def test_fresh_process_prints_one_line_and_debug_prints_the_traceback(tmp_path, capsys):
    bad = corrupt_file(tmp_path, "png", "truncated")
    ds = labelled(tmp_path / "d")
    (ds / "labels" / "s0.png").write_bytes(bad.read_bytes())
    env = {**os.environ, "OCTVESSEL_MALLOC_TUNING": "0"}
    args = ["evaluate", "-d", str(ds), "-p", str(tmp_path), "-o", str(tmp_path / "e")]
    proc = subprocess.run(
        [sys.executable, "-m", "octvessel", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"octvessel evaluate: error: {ds / 'labels' / 's0.png'}: ")
    assert "truncated" in lines[0]
    code, _, err = cli(capsys, "--debug", *args)
    assert code == 2 and "Traceback" in err and err.strip().endswith(lines[0])


def test_loading_a_dataset_with_every_variant_works(tmp_path):
    root = tmp_path / "mixed"
    for name, (path, hw) in variants(tmp_path / "v").items():
        stem = name.replace(" ", "_").replace("(", "").replace(")", "")
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "images" / f"{stem}{path.suffix}").write_bytes(path.read_bytes())
        write_mask(root / "labels" / f"{stem}.png", np.zeros(hw, bool))
    samples = load_dataset(root, require_labels=True)
    assert len(samples) == len(variants(tmp_path / "v2"))
    for s in samples:
        assert s.image.shape[:2] == s.label.shape == s.fov.shape


def test_gray_model_predicts_every_variant(tmp_path, capsys):
    """Channels follow the model: a gray model takes colour, palette and 16-bit inputs alike."""
    gray = tmp_path / "gray model"
    model = create_model("iternet", in_channels=1, base_channels=4, iterations=1)
    save_pretrained(model, gray, preprocessing=Preprocessing(color="gray"))
    src = tmp_path / "in"
    n = len(variants(src))
    out = tmp_path / "o"
    code, stdout, err = cli(capsys, "predict", "-i", src, "-o", out, "-m", gray, "--no-progress")
    assert code == 0, err
    assert f"{n} predicted" in stdout and len(list(out.glob("*_prob.tif"))) == n
