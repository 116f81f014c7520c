"""The install the Dockerfile performs, for real: build the wheel from the files the image
copies, install it into a fresh virtualenv, and run `parley` from there against the fake model.

Slow-ish (a wheel build; pip may fetch setuptools for the isolated build) but runs in CI.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModel
from tests.process import REPO, Finished, finish, parley_env

# What deploy/Dockerfile copies into its build stage (test_deploy checks they agree).
SOURCES = ("pyproject.toml", "README.md", "bot", "memory", "adapters")


async def run(
    *command: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    within: float = 240,
) -> Finished:
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    done = await finish(process, within)
    assert done.code == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_wheel_installs_and_runs(tmp_path: Path, fake_model: FakeModel) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    await run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "--wheel-dir",
        tmp_path / "dist",
        source,
    )
    wheel = next((tmp_path / "dist").glob("parley_chatbot-*.whl"))

    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    await run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel
    )
    # Dependencies come from the test environment; only Parley itself was installed (after
    # the install, so pip never sees the test environment's own copy of Parley).
    site = Path(
        (
            await run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        ).stdout.strip()
    )
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = parley_env(
        OPENAI_BASE_URL=fake_model.base_url,
        OPENAI_API_KEY="sk-test",
        PARLEY_DATA_DIR=str(tmp_path / "data"),
    )
    del env["PYTHONPATH"]  # only the installed copy
    located = await run(python, "-c", "import bot; print(bot.__file__)", env=env, cwd=tmp_path)
    assert located.stdout.startswith(str(venv))

    parley = venv / "bin" / "parley"
    usage = (await run(parley, "--help", env=env, cwd=tmp_path)).stdout
    # `chat` and `discord` come from the adapters' entry points in the installed wheel.
    assert all(command in usage for command in ("doctor", "chat", "discord"))
    await run(parley, "db", "upgrade", env=env, cwd=tmp_path)
    doctor = await run(parley, "doctor", env=env, cwd=tmp_path)
    for line in (
        "[ ok ] database:",
        "[ ok ] schema: up to date",
        "[ ok ] model endpoint:",
        "[ ok ] model:",
        "[ ok ] model reply:",
    ):
        assert line in doctor.stdout, doctor.stdout
    assert fake_model.requests[-1]["stream"] is True
