"""The README's shell blocks, run as written against a real ``silospan demo``.

Every ```bash block after "Two commands" runs, in order, in one bash process (later blocks
use the variables earlier ones set), with the README's ``127.0.0.1:8000`` pointed at the
demo's port and a data directory of its own. The README cannot drift from the product:

- every command must succeed (``bash -e -o pipefail``);
- no answer may be an error the block does not announce (a problem body whose status the
  block's text does not name, e.g. its "404: not its business");
- every literal the block's example answers show (``# {"created":2,...}``: a number, a
  boolean, null, or a string without an ellipsis or placeholder) must be in the block's
  real answers, field name and value alike.

One run, on the embedded database (SQLite): the README is about a new user's machine. A
block that subscribes ``hooks.example.com`` needs a resolvable public address: it is left
out where that name does not resolve (as on an offline CI machine), and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import _free_port, _wait_until_up

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
MARK = "@@readme-block"
# "name":literal in an example answer; strings with … or <placeholders> are left out.
LITERAL = re.compile(r'"(\w+)":(-?\d+(?:\.\d+)?|true|false|null|"[^"…<>]*")(?=[,}\]])')

pytestmark = [
    pytest.mark.skipif(
        shutil.which("curl") is None or shutil.which("bash") is None, reason="needs bash and curl"
    ),
    pytest.mark.e2e,
]


PUBLIC_HOST = "hooks.example.com"


def resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def readme_blocks() -> list[str]:
    """The shell blocks after the first (which installs and starts the demo itself)."""
    blocks = BLOCK.findall(README.read_text())[1:]
    if not resolves(PUBLIC_HOST):
        blocks = [b for b in blocks if PUBLIC_HOST not in b]
    return blocks


def expected_literals(block: str) -> list[str]:
    comments = "\n".join(
        line.split("#", 1)[1] for line in block.splitlines() if line.lstrip().startswith("#")
    )
    return [f'"{name}":{value}' for name, value in LITERAL.findall(comments)]


def json_documents(text: str) -> Iterator[object]:
    """Every JSON object in ``text`` (curl prints answers one after another)."""
    decoder = json.JSONDecoder()
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            document, position = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        yield document


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    home = tmp_path_factory.mktemp("readme-home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SILOSPAN_")  # the README's user has no settings
    }
    env |= {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        # `silospan` as the README calls it: the one installed beside this interpreter
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
    port = _free_port()
    log = (home / "demo.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--port", str(port)],
        env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        if not _wait_until_up(f"http://127.0.0.1:{port}", process, seconds=120):
            pytest.fail(f"the demo did not start:\n{(home / 'demo.log').read_text()[-2000:]}")
        yield port, env
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def outputs(demo: tuple[int, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    port, env = demo
    blocks = readme_blocks()
    script = "\n".join(
        f"echo; echo '{MARK} {n}'\n{block.replace('127.0.0.1:8000', f'127.0.0.1:{port}')}"
        for n, block in enumerate(blocks)
    )
    workdir = tmp_path_factory.mktemp("readme-run")
    run = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        check=False, env=env, cwd=workdir, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    parts = re.split(rf"^{MARK} (\d+)$", run.stdout, flags=re.MULTILINE)
    found = {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}
    assert sorted(found) == list(range(len(blocks))), "every block ran"
    return [(blocks[n], found[n]) for n in range(len(blocks))]


def test_the_readme_has_the_blocks_this_test_runs():
    blocks = readme_blocks()
    assert len(blocks) >= 9
    assert any("silospan keys create" in b for b in blocks)
    assert any("/graphql" in b for b in blocks)


def test_no_block_gets_an_error_it_does_not_announce(outputs):
    for block, output in outputs:
        for document in json_documents(output):
            if not (isinstance(document, dict) and "type" in document and "status" in document):
                continue
            status = document["status"]
            assert status < 500, f"{status} from:\n{block}\n{document}"
            assert str(status) in block, f"unannounced {status} from:\n{block}\n{document}"


def shown_in(literal: str, compact: str) -> bool:
    """``"name":value`` is in the answers; a decimal within 0.5% of it will do (the demo's
    history is laid out relative to the moment it loads, so a score taken seconds later
    can move in its last digits)."""
    if literal in compact:
        return True
    name, value = literal.split(":", 1)
    if "." not in value or value.startswith('"'):
        return False
    expected = float(value)
    found = re.findall(rf"{re.escape(name)}:(-?\d+(?:\.\d+)?)", compact)
    return any(abs(float(f) - expected) <= 0.005 * max(abs(expected), 1e-9) for f in found)


def test_every_example_answer_matches_the_real_one(outputs):
    checked = 0
    for block, output in outputs:
        compact = json.dumps(list(json_documents(output)), separators=(",", ":"))
        for literal in expected_literals(block):
            assert shown_in(literal, compact), f"{literal} is not in the answers to:\n{block}\n{output}"
            checked += 1
    assert checked >= 20  # the examples do show answers


def test_the_graphql_example_answers_data(outputs):
    output = next(o for b, o in outputs if "/graphql" in b)
    answers = [d for d in json_documents(output) if isinstance(d, dict) and "data" in d]
    assert answers and all(not a.get("errors") for a in answers), output
    touchpoint = answers[0]["data"]["touchpoint"]
    assert touchpoint["name"] and touchpoint["upstream"]


def test_the_demo_database_is_the_users_own(demo):
    _, env = demo
    listing = httpx.get(f"http://127.0.0.1:{demo[0]}/healthz", timeout=10)
    assert listing.status_code == 200
    assert (Path(env["XDG_DATA_HOME"]) / "silospan").is_dir()
