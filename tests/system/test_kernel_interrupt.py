"""The kernel's interrupt, in a real ipykernel: in-flight requests stop, arrived images stay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.server import Fault
from tests.support.images import inline_images
from tests.support.kernels import running_kernel
from tests.support.servers import FAST_MODEL, OTHER_MODEL, TINY
from tests.support.waiting import wait_until

SLOW_MODEL = OTHER_MODEL


@pytest.fixture
def kernel(server: Any, clean_environment: Path) -> Iterator[tuple[Any, Any]]:
    with running_kernel(server, clean_environment) as (manager, client):
        yield manager, client


def test_interrupt_cancels_in_flight_keeps_arrived_and_kernel_lives(
    server: Any, kernel: tuple[Any, Any], clean_environment: Path
) -> None:
    manager, client = kernel
    server.add_fault(Fault(kind="latency", delay=30, model=SLOW_MODEL, times=-1))
    code = (
        f"%%meshimg -n 1 -s {TINY} -m {FAST_MODEL},{SLOW_MODEL}\n"
        "A red fox in the snow\n---\nA blue whale under ice"
    )
    msg_id = client.execute(code)
    sent_at = time.monotonic()

    # The fast model's two images are in the store (written before display): interrupt now.
    store = clean_environment
    assert wait_until(lambda: len(list(store.glob("images/*/*.png"))) == 2, 20)
    assert wait_until(lambda: server.in_flight == 2, 5)  # the slow ones are still running
    # Past the ~1 s mark the cell shows live progress: the interrupt must replace it too. (The call
    # reads the model list for its estimate first, so its clock starts a little after sending.)
    time.sleep(max(0.0, 2.5 - (time.monotonic() - sent_at)))
    interrupted_at = time.monotonic()
    manager.interrupt_kernel()

    outputs: list[dict[str, Any]] = []
    while True:
        message = client.get_iopub_msg(timeout=10)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
        outputs.append(message)
    finished_after = time.monotonic() - interrupted_at
    assert wait_until(lambda: server.in_flight == 0, 1.0), server.stats()
    drained_after = time.monotonic() - interrupted_at
    print(
        f"\ncell finished {finished_after:.2f} s after the interrupt; server in-flight 0 after "
        f"{drained_after:.2f} s"
    )
    assert finished_after < 2.0

    reply = client.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "ok"  # handled: no KeyboardInterrupt traceback
    assert not [m for m in outputs if m["msg_type"] == "error"]

    displays = [
        m for m in outputs if m["msg_type"] in ("display_data", "update_display_data", "execute_result")
    ]
    progress = displays[0]
    assert progress["msg_type"] == "display_data"
    assert "mesh-magic-progress" in progress["content"]["data"]["text/html"]
    assert "2/4 images" in progress["content"]["data"]["text/html"]
    display_id = progress["content"]["transient"]["display_id"]
    final = displays[-1]
    assert final["msg_type"] == "update_display_data"
    assert final["content"]["transient"]["display_id"] == display_id
    grid = final["content"]["data"]["text/html"]
    assert "mesh-magic-result" in grid
    assert len([m for m in displays if m["msg_type"] == "display_data"]) == 1
    assert "Interrupted" in grid
    images = inline_images(grid)
    assert len(images) == 2 and all(im.size == (64, 64) for im in images)
    assert grid.count("not finished (interrupted)") == 2

    # The kernel is healthy.
    result: list[str] = []
    client.execute_interactive(
        "1+1",
        timeout=10,
        output_hook=lambda m: (
            result.append(m["content"]["data"]["text/plain"]) if m["msg_type"] == "execute_result" else None
        ),
    )
    assert result == ["2"]
