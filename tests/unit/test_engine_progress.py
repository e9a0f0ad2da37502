"""Per-call progress: what arrived, failed or runs, and the result of an interrupt (core.engine.progress)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mesh_magic.core.engine.limit import AdaptiveLimit
from mesh_magic.core.engine.progress import STATUSES, CallProgress, ItemProgress, add_usage, partial_image
from mesh_magic.core.errors import RateLimitError, ResponseError, ServerError
from mesh_magic.core.http.client import Generation
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.results import GeneratedImage
from tests.support.images import make_image


def requests() -> list[ImageRequest]:
    return [
        ImageRequest("a fox", "m/a", n=2, row=0),
        ImageRequest("a fox", "m/b", n=1, row=1, params={"seed": 3}),
        ImageRequest("a cat", "m/a", n=1, row=2),
    ]


def image(request: ImageRequest, index: int = 0, width: int = 40) -> GeneratedImage:
    return GeneratedImage(
        data=make_image(width, 20),
        mime_type="image/png",
        width=width,
        height=20,
        prompt=request.prompt,
        model=request.model,
        request_id=f"req_{request.row}",
        row=request.row,
        index=index,
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, int]] = []

    def __call__(self, progress: CallProgress) -> None:
        self.calls.append(progress.counts())


def test_initial_state() -> None:
    progress = CallProgress(requests(), display_max_px=300)
    assert [(i.prompt, i.model, i.n, i.status) for i in progress.items] == [
        ("a fox", "m/a", 2, "queued"),
        ("a fox", "m/b", 1, "queued"),
        ("a cat", "m/a", 1, "queued"),
    ]
    assert progress.counts() == {"done": 0, "failed": 0, "running": 0, "images": 0}
    assert progress.notes == []
    assert progress.rate_note() == ""
    assert progress.elapsed >= 0
    result = progress.result()
    assert len(result) == 0 and result.errors == [] and result.ok
    assert result.rows == [("a fox", "m/a"), ("a fox", "m/b"), ("a cat", "m/a")]
    assert result.display_max_px == 300


def test_add_collects_images_errors_and_usage() -> None:
    reqs = requests()
    progress = CallProgress(reqs)
    progress.add(
        Generation(
            images=[image(reqs[0], 0), image(reqs[0], 1)],
            request_id="req_0",
            usage={"total_tokens": 10, "input_tokens": 4, "model": "m/a"},
        ),
        reqs[0],
    )
    progress.add(
        Generation(
            images=[image(reqs[2])],
            errors=[ResponseError("image 2 was not an image")],
            usage={"total_tokens": 5},
        ),
        reqs[2],
    )
    assert [i.images for i in progress.items] == [2, 0, 1]
    assert progress.counts()["images"] == 3
    result = progress.result()
    assert [(im.row, im.index) for im in result] == [(0, 0), (0, 1), (2, 0)]
    assert result.usage == {"total_tokens": 15, "input_tokens": 4}
    (error,) = result.errors
    assert (error.prompt, error.model, error.row) == ("a cat", "m/a", 2)
    assert "not an image" in str(error.error)
    assert not result.ok


def test_fail_marks_the_row_and_keeps_the_error() -> None:
    reqs = requests()
    progress = CallProgress(reqs)
    error = ServerError("upstream broke", status=500)
    progress.fail(reqs[1], error)
    assert progress.items[1].status == "failed"
    assert progress.items[1].message == "upstream broke (HTTP 500)"
    assert progress.items[1].finished
    (item_error,) = progress.result().errors
    assert item_error.error is error and item_error.row == 1 and item_error.model == "m/b"
    assert progress.counts() == {"done": 0, "failed": 1, "running": 0, "images": 0}


def test_set_status_and_counts() -> None:
    progress = CallProgress(requests())
    progress.set_status(0, "running")
    progress.set_status(1, "running", "sending")
    progress.set_status(2, "cancelled")
    assert progress.counts() == {"done": 0, "failed": 0, "running": 2, "images": 0}
    assert progress.items[1].message == "sending"
    progress.set_status(1, "done")
    assert progress.items[1].message == "sending"  # an empty message keeps the last one
    progress.set_status(0, "queued", "rate limited: waiting its turn")
    assert progress.counts() == {"done": 1, "failed": 0, "running": 0, "images": 0}
    assert progress.items[0].message == "rate limited: waiting its turn"


def test_statuses_and_finished() -> None:
    assert STATUSES == ("queued", "running", "done", "failed", "cancelled")
    finished = {s for s in STATUSES if ItemProgress("p", "m", 1, status=s).finished}
    assert finished == {"done", "failed"}


def test_show_partial_and_message() -> None:
    progress = CallProgress(requests())
    data = make_image(10, 10)
    progress.show_partial(0, data, 1)
    item = progress.items[0]
    assert (item.partial, item.partial_index, item.message) == (data, 1, "partial image 2")
    progress.show_message(0, "processing")
    assert item.message == "processing"
    assert item.partial == data


def test_on_change_is_told_of_every_change() -> None:
    reqs = requests()
    seen = Recorder()
    progress = CallProgress(reqs, on_change=seen)
    progress.set_status(0, "running")
    progress.show_partial(0, make_image(), 0)
    progress.show_message(0, "processing")
    progress.add(Generation(images=[image(reqs[0])]), reqs[0])
    progress.set_status(0, "done")
    progress.fail(reqs[1], ServerError("x"))
    progress.note("a note")  # notes are not a change of any row
    assert len(seen.calls) == 6
    assert seen.calls[0]["running"] == 1
    assert seen.calls[3]["images"] == 1
    assert seen.calls[-1] == {"done": 1, "failed": 1, "running": 0, "images": 1}


def test_notes_are_kept_once_in_order() -> None:
    progress = CallProgress(requests())
    progress.note("second")
    progress.note("first")
    progress.note("second")
    assert progress.notes == ["second", "first"]
    progress.notes.append("not kept")  # a copy
    assert progress.result().notes == ["second", "first"]


def test_rate_note_follows_the_gate() -> None:
    progress = CallProgress(requests())
    gate = AdaptiveLimit(8)
    progress.limit = gate
    assert progress.rate_note() == ""
    gate.throttle()
    assert progress.rate_note() == " · rate limited: 4/8 parallel"


# -- interrupts ------------------------------------------------------------------------------


def test_an_interrupt_keeps_the_unfinished_streamed_partial() -> None:
    reqs = requests()
    progress = CallProgress(reqs)
    partial_data = make_image(30, 30)
    progress.add(Generation(images=[image(reqs[0]), image(reqs[0], 1)]), reqs[0])
    progress.set_status(0, "done")
    progress.show_partial(0, make_image(12, 12), 0)  # a finished row: its partial is old news
    progress.set_status(1, "running")
    progress.show_partial(1, partial_data, 2)
    progress.set_status(2, "running")  # running, no partial yet

    plain = progress.result()
    assert len(plain) == 2 and not plain.interrupted

    result = progress.result(interrupted=True)
    assert result.interrupted and not result.ok
    assert len(result) == 3
    kept = [im for im in result if im.partial]
    assert len(kept) == 1
    (partial,) = kept
    assert partial.data == partial_data
    assert (partial.row, partial.prompt, partial.model) == (1, "a fox", "m/b")
    assert (partial.width, partial.height, partial.mime_type) == (30, 30, "image/png")
    assert partial.source == "stream"
    assert partial.params == {"model": "m/b", "n": 1, "seed": 3}


def test_an_interrupt_skips_failed_rows_and_unreadable_partials() -> None:
    reqs = requests()
    progress = CallProgress(reqs)
    progress.show_partial(0, make_image(), 0)
    progress.fail(reqs[0], ServerError("the stream failed"))
    progress.show_partial(1, b"\x89PNG\r\n\x1a\n garbage", 0)
    progress.set_status(1, "cancelled")
    progress.show_partial(2, make_image(), 0)
    progress.set_status(2, "cancelled")
    result = progress.result(interrupted=True)
    assert [im.row for im in result] == [2]
    assert [e.row for e in result.errors] == [0]


def test_result_copies_its_state() -> None:
    reqs = requests()
    progress = CallProgress(reqs)
    first = progress.result()
    progress.add(Generation(images=[image(reqs[0])], usage={"total_tokens": 1}), reqs[0])
    progress.note("later")
    assert len(first) == 0 and first.usage == {} and first.notes == []
    assert len(progress.result()) == 1


# -- add_usage and partial_image -------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "usage", "expected"),
    [
        ({}, {"total_tokens": 3}, {"total_tokens": 3}),
        ({"total_tokens": 3}, {"total_tokens": 4, "cost": 0.5}, {"total_tokens": 7, "cost": 0.5}),
        ({}, {"flag": True, "model": "m/a", "nested": {"x": 1}, "none": None}, {}),
        ({"cost": 0.25}, {"cost": 0.5}, {"cost": 0.75}),
    ],
)
def test_add_usage(total: dict[str, Any], usage: dict[str, Any], expected: dict[str, Any]) -> None:
    add_usage(total, usage)
    assert total == expected


def test_partial_image() -> None:
    request = ImageRequest("a fox", "m/a", n=2, row=4, fields={"size": "256x256"})
    data = make_image(16, 24, fmt="JPEG")
    found = partial_image(request, data, request_id="req_p")
    assert found is not None
    assert found.partial and found.source == "stream"
    assert (found.mime_type, found.width, found.height) == ("image/jpeg", 16, 24)
    assert (found.row, found.request_id, found.prompt) == (4, "req_p", "a fox")
    assert found.params == {"model": "m/a", "n": 2, "size": "256x256"}
    assert partial_image(request, b"not an image") is None
    assert partial_image(request, b"") is None


def test_concurrent_adds_lose_nothing() -> None:
    reqs = [ImageRequest(f"p{i}", "m/a", row=i) for i in range(8)]
    progress = CallProgress(reqs)

    def work(request: ImageRequest) -> None:
        for _ in range(25):
            progress.add(
                Generation(images=[image(request)], usage={"total_tokens": 1}, errors=[RateLimitError("x")]),
                request,
            )

    threads = [threading.Thread(target=work, args=(r,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = progress.result()
    assert len(result) == 200 and len(result.errors) == 200
    assert result.usage == {"total_tokens": 200}
    assert progress.counts()["images"] == 200
