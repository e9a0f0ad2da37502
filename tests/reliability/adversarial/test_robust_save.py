"""Classes 6 and 7: a failed --save loses nothing, and saves never overwrite.

Class 6: saving onto a file, under a file, to a name too long, to a read-only folder
or a full disk fails after the images were paid for; the result is still returned,
shown and bound (`-o`), then a `MeshImageWarning` gives the reason and the store path.
Class 7: two processes (and several threads) saving into one folder at once keep
every image: names are claimed atomically (O_CREAT | O_EXCL).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core import files
from mesh_magic.core.results import GeneratedImage, ImageResult
from mesh_magic.server import MeshServer
from tests.support.images import html_images, make_png
from tests.support.paths import REPO
from tests.support.published import Publications
from tests.support.servers import FAST_MODEL, OTHER_MODEL, TINY
from tests.support.shell import run
from tests.support.store_files import stored_images

pytestmark = pytest.mark.usefixtures("cheap_images")


def _onto_a_file(tmp: Path, patch: pytest.MonkeyPatch) -> Path:
    target = tmp / "notes.txt"
    target.write_text("mine")
    return target


def _under_a_file(tmp: Path, patch: pytest.MonkeyPatch) -> Path:
    return _onto_a_file(tmp, patch) / "images"


def _name_too_long(tmp: Path, patch: pytest.MonkeyPatch) -> Path:
    return tmp / ("x" * 300)


def _simulated(code: int) -> Callable[[Path, pytest.MonkeyPatch], Path]:
    """A folder whose writes fail with `code` (root ignores permissions, so a real 0o500 folder
    would not fail here: the claim of a name raises what the kernel would)."""

    def make(tmp: Path, patch: pytest.MonkeyPatch) -> Path:
        folder = tmp / f"fails-{errno.errorcode[code]}"
        folder.mkdir()
        if os.geteuid() != 0 and code == errno.EACCES:
            folder.chmod(0o500)
            return folder

        def refuse(path: Path) -> bool:
            if Path(path).parent == folder:
                raise OSError(code, os.strerror(code), str(path))
            return real(path)

        real = files.claim
        patch.setattr(files, "claim", refuse)
        return folder

    return make


TARGETS: dict[str, tuple[Callable[[Path, pytest.MonkeyPatch], Path], str]] = {
    "onto-a-file": (_onto_a_file, "exists"),
    "under-a-file": (_under_a_file, "Not a directory"),
    "name-too-long": (_name_too_long, "too long"),
    "read-only": (_simulated(errno.EACCES), "Permission denied"),
    "read-only-fs": (_simulated(errno.EROFS), "Read-only file system"),
    "disk-full": (_simulated(errno.ENOSPC), "No space left"),
}


def _mesh_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, mesh_magic.MeshImageWarning)]


@pytest.mark.adversarial("6")
@pytest.mark.parametrize("where", sorted(TARGETS))
def test_api_save_failure_returns_the_result_and_warns(
    server: MeshServer, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, tally: Any
) -> None:
    make, reason = TARGETS[where]
    target = make(tmp_path, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = mesh_magic.generate("a fox", model=FAST_MODEL, n=2, size=TINY, save=target)
        except BaseException:
            tally.bad("raw_escapes")
            raise
    if len(result) != 2:
        tally.bad("arrived_lost", 2 - len(result))
    assert len(result) == 2 and len(stored_images(store)) == 2
    (said,) = _mesh_warnings(caught)
    assert reason in said and str(target) in said and str(store) in said
    assert result.save_error == said and said in result.notes  # shown with the result too


@pytest.mark.adversarial("6")
@pytest.mark.parametrize("where", sorted(TARGETS))
def test_magic_save_failure_shows_binds_then_warns(
    shell: Any,
    published: Publications,
    server: MeshServer,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    make, reason = TARGETS[where]
    target = make(tmp_path, monkeypatch)
    order: list[tuple[str, int]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(
            warnings, "showwarning", lambda message, *a, **k: order.append((str(message), len(published)))
        )
        run(shell, f"%%meshimg -m {FAST_MODEL},{OTHER_MODEL} -s {TINY} --save '{target}' -o r\na fox")
    result = shell.user_ns["r"]
    assert isinstance(result, ImageResult) and len(result) == 2
    said = [(text, shown) for text, shown in order if "Could not save" in text]
    assert len(said) == 1
    text, shown_before = said[0]
    assert reason in text and str(store) in text
    assert any(p.is_grid for p in published[:shown_before]), "the warning came before the images"
    assert len(html_images(published.grids[-1].html)) == 2


@pytest.mark.adversarial("6")
def test_generate_many_save_failure_returns_every_result(
    server: MeshServer, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _onto_a_file(tmp_path, monkeypatch)
    with pytest.warns(mesh_magic.MeshImageWarning, match="Could not save"):
        results = mesh_magic.generate_many(["one", "two", "three"], model=FAST_MODEL, size=TINY, save=target)
    assert [len(r) for r in results] == [1, 1, 1]
    assert target.read_text() == "mine"  # and the file in the way is untouched


@pytest.mark.adversarial("6")
def test_a_save_that_works_warns_nothing(server: MeshServer, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mesh_magic.generate("a fox", model=FAST_MODEL, size=TINY, save=tmp_path / "out")
    assert _mesh_warnings(caught) == [] and result.save_error is None
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


# -- class 7: concurrent saves ------------------------------------------------------------

SAVER = r"""
import sys, time
from pathlib import Path
from mesh_magic.core.results import GeneratedImage, ImageResult
from tests.support.images import make_png

folder, go, how = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[5]
tag, count = int(sys.argv[3]), int(sys.argv[4])
images = [
    GeneratedImage(data=make_png(8, 8, (tag, i, 7)), mime_type="image/png", width=8, height=8,
                   prompt="the same prompt", model="m/same")
    for i in range(count)
]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
if how == "result":
    for image in images:  # one save per image: the most chances to collide
        ImageResult([image]).save(folder)
else:
    for image in images:
        image.save(folder)
print("done", flush=True)
"""


def _race(tmp_path: Path, how: str, processes: int = 2, count: int = 40) -> Path:
    folder, go = tmp_path / "shared", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(folder), str(go), str(10 + tag), str(count), how],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0 and out.strip() == "done"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return folder


def _expected(processes: int, count: int) -> set[bytes]:
    return {make_png(8, 8, (10 + tag, i, 7)) for tag in range(processes) for i in range(count)}


@pytest.mark.adversarial("7")
def test_two_processes_saving_results_keep_all_80(tmp_path: Path) -> None:
    folder = _race(tmp_path, "result")
    pngs = sorted(folder.glob("*.png"))
    sidecars = sorted(folder.glob("*.json"))
    assert len(pngs) == 80 and len(sidecars) == 80
    assert {p.read_bytes() for p in pngs} == _expected(2, 40)
    for png in pngs:  # every image has its own sidecar, describing it
        meta = json.loads(png.with_suffix(".json").read_text())
        assert meta["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert not list(folder.glob(".*"))  # no temp files left behind


@pytest.mark.adversarial("7")
def test_two_processes_saving_single_images_keep_all_80(tmp_path: Path) -> None:
    folder = _race(tmp_path, "image")
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 80 and {p.read_bytes() for p in pngs} == _expected(2, 40)


@pytest.mark.adversarial("7")
@pytest.mark.parametrize("threads", [2, 4, 8])
def test_threads_saving_into_one_folder_keep_every_image(tmp_path: Path, threads: int) -> None:
    folder = tmp_path / "shared"
    start = threading.Barrier(threads)
    per = 10

    def save(tag: int) -> None:
        images = [
            GeneratedImage(
                data=make_png(8, 8, (tag, i, 9)),
                mime_type="image/png",
                width=8,
                height=8,
                prompt="same",
                model="m/same",
            )
            for i in range(per)
        ]
        start.wait()
        for image in images:
            files.write_with_sidecar(folder, image)

    workers = [threading.Thread(target=save, args=(tag,)) for tag in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    pngs = list(folder.glob("*.png"))
    assert len(pngs) == threads * per and len(list(folder.glob("*.json"))) == threads * per
    assert len({p.read_bytes() for p in pngs}) == threads * per


@pytest.mark.adversarial("7")
def test_saving_the_same_result_twice_reuses_its_files(tmp_path: Path) -> None:
    images = [
        GeneratedImage(
            data=make_png(8, 8, (1, i, 1)),
            mime_type="image/png",
            width=8,
            height=8,
            prompt="same",
            model="m/same",
            index=i,
        )
        for i in range(3)
    ]
    result = ImageResult(images)
    first = result.save(tmp_path / "out")
    assert result.save(tmp_path / "out") == first and len(list((tmp_path / "out").glob("*.png"))) == 3


@pytest.mark.adversarial("7")
def test_a_foreign_file_with_our_name_is_never_replaced(tmp_path: Path) -> None:
    image = GeneratedImage(
        data=make_png(8, 8), mime_type="image/png", width=8, height=8, prompt="p", model="m"
    )
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / f"{image.slug()}.png").write_bytes(b"someone else's")
    (folder / f"{image.slug()}-2.json").write_text("{}")  # a stray sidecar also holds its name
    saved = files.write_with_sidecar(folder, image)
    assert saved.name == f"{image.slug()}-3.png"
    assert (folder / f"{image.slug()}.png").read_bytes() == b"someone else's"
    assert (folder / f"{image.slug()}-2.json").read_text() == "{}"
    assert not (folder / f"{image.slug()}-2.png").exists()  # its claim was given back


@pytest.mark.adversarial("6")
@pytest.mark.parametrize("blocker", ["file", "images-file", "day-file"])
def test_an_unwritable_store_still_returns_and_shows_the_images(
    server: MeshServer, store: Path, blocker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if blocker == "file":
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text("not a folder")
    else:
        (store / "images").parent.mkdir(parents=True, exist_ok=True)
        if blocker == "images-file":
            (store / "images").write_text("in the way")
        else:
            day = time.strftime("%Y-%m-%d", time.gmtime())
            (store / "images").mkdir()
            (store / "images" / day).write_text("in the way")
    result = mesh_magic.generate("a fox", model=f"{FAST_MODEL},{OTHER_MODEL}", size=TINY)
    assert len(result) == 2 and all(image.path is None for image in result)
    assert any("Could not write to the store" in note for note in result.notes)
    data, _ = result._repr_mimebundle_()
    assert len(html_images(data["text/html"])) == 2
