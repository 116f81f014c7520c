"""The `parley` command line. Heavy modules are imported inside commands, so `--help` and
configuration errors answer at once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.logs import Redactor, configure_logging, settings_secrets
from bot.settings import ConfigError, Settings, load_settings
from bot.texts import explain, say
from memory.transfer import Format

app = typer.Typer(
    help="Parley: a self-hosted chatbot that remembers.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
memory_app = typer.Typer(
    help="Long-term memory: documents, export and import.", no_args_is_help=True
)
app.add_typer(memory_app, name="memory")
ConversationOption = Annotated[
    str | None,
    typer.Option("--conversation", "-c", help="Terminal conversation name (as in `parley chat`)."),
]


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(say("config.error", error=exc), err=True)
        raise typer.Exit(2) from exc


def _run(job: Callable[[Settings], Coroutine[Any, Any, None]], quiet: bool = False) -> None:
    settings = _settings()
    configure_logging(settings, quiet=quiet)
    try:
        asyncio.run(job(settings))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ConfigError as exc:  # found at start-up, e.g. a platform refusing the token
        typer.echo(say("config.error", error=exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def run() -> None:
    """Run the bot on every configured platform (Discord, Slack)."""
    from bot.lifecycle import serve
    from bot.plugins import configured_adapters
    from bot.runtime import metrics_server, open_parley

    async def job(settings: Settings) -> None:
        adapters = configured_adapters(settings)
        if not adapters:
            typer.echo(say("run.none"), err=True)
            raise typer.Exit(2)
        async with open_parley(settings) as parley, metrics_server(parley):
            await serve(
                [adapter.run(parley) for adapter in adapters],
                parley.gate,
                settings.shutdown_timeout,
            )

    _run(job)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Parley also does this at start-up)."""
    from memory.db import migrated_engine

    async def job(settings: Settings) -> None:
        async with migrated_engine(settings.resolved_database_url) as engine:
            where = engine.url.render_as_string(hide_password=True)
        typer.echo(say("db.upgraded", url=where))

    _run(job)


async def _read_file(path: Path) -> bytes:
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        typer.echo(say("file.unreadable", path=path, error=exc.strerror or exc), err=True)
        raise typer.Exit(1) from exc


@memory_app.command("add-file")
def memory_add_file(
    path: Path,
    conversation: ConversationOption = None,
) -> None:
    """Share a text, Markdown or PDF file with a terminal conversation (recallable there)."""
    from bot.local import terminal_author, terminal_key
    from bot.runtime import open_parley

    async def job(settings: Settings) -> None:
        data = await _read_file(path)
        async with open_parley(settings, mcp_servers=False) as parley:
            typer.echo(
                await parley.add_document(
                    terminal_key(conversation or "default"), terminal_author(), path.name, data
                )
            )

    _run(job)


@app.command()
def doctor() -> None:
    """Check configuration, database, model endpoint and platforms; show how to fix failures."""
    from bot.doctor import configuration_error, diagnose, report

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(report([configuration_error(str(exc))]))
        raise typer.Exit(1) from exc
    configure_logging(settings, quiet=True)
    checks = asyncio.run(diagnose(settings))
    # The report quotes URLs and library errors: shown without credentials.
    typer.echo(Redactor(settings_secrets(settings))(report(checks)))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command()
def init(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write parley.toml and .env.")
    ] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
    ask: Annotated[
        bool | None,
        typer.Option(
            "--ask/--no-ask",
            help="Ask for the essentials (default: when run in a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a commented parley.toml and .env to start from."""
    from bot.init_files import Answers, ask_answers, write_files

    answers = (
        ask_answers(typer.prompt) if (sys.stdin.isatty() if ask is None else ask) else Answers()
    )
    for path, written in write_files(directory, answers, force):
        typer.echo(say("init.wrote" if written else "init.exists", path=path))
    typer.echo(say("init.next"))


@app.command()
def healthcheck() -> None:
    """Exit 0 when the running Parley's /healthz says it is healthy (for container checks)."""
    from bot.metrics import probe_healthz

    settings = _settings()
    if settings.metrics_port is None:
        typer.echo(say("healthcheck.off"))
        return
    problem = asyncio.run(probe_healthz(settings.metrics_host, settings.metrics_port))
    if problem is not None:
        typer.echo(say("healthcheck.failed", detail=problem), err=True)
        raise typer.Exit(1)


@memory_app.command("export")
def memory_export(
    conversation: ConversationOption = None,
    all_conversations: Annotated[
        bool, typer.Option("--all", help="Export every conversation on every platform.")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", help="jsonl or markdown.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default: standard output.")
    ] = None,
) -> None:
    """Write a conversation's history (default: terminal conversation "default")."""
    from bot.local import terminal_key
    from memory.db import migrated_engine
    from memory.files import write_private
    from memory.transfer import export

    async def job(settings: Settings) -> None:
        key = None if all_conversations else terminal_key(conversation or "default")
        async with migrated_engine(settings.resolved_database_url) as engine:
            chunks = [chunk async for chunk in export(engine, key, fmt)]
        if key is not None and not chunks:
            typer.echo(say("export.none", name=key.channel), err=True)
            raise typer.Exit(1)
        if output is None:
            typer.echo("".join(chunks), nl=False)
            return
        try:
            # The history of private conversations: readable by its owner only.
            await asyncio.to_thread(write_private, output, "".join(chunks))
        except OSError as exc:
            typer.echo(say("file.unwritable", path=output, error=exc.strerror or exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(say("export.done", path=output), err=True)

    _run(job)


@memory_app.command("import")
def memory_import(
    path: Path,
    conversation: ConversationOption = None,
) -> None:
    """Read history in the export's JSON Lines format (all lines or none)."""
    from bot.local import terminal_key
    from memory.db import migrated_engine
    from memory.tokens import TokenCounter
    from memory.transfer import InvalidImport, import_file

    async def job(settings: Settings) -> None:
        target = terminal_key(conversation) if conversation else None
        counter = await asyncio.to_thread(TokenCounter, settings.model)
        async with migrated_engine(settings.resolved_database_url) as engine:
            try:
                count = await import_file(engine, path, target, counter)
            except InvalidImport as exc:
                typer.echo(say("import.invalid", line=exc.line, reason=explain(exc)), err=True)
                raise typer.Exit(1) from exc
            except OSError as exc:
                typer.echo(say("file.unreadable", path=path, error=exc.strerror or exc), err=True)
                raise typer.Exit(1) from exc
        typer.echo(say("import.done", count=count))

    _run(job)


def _add_adapter_commands() -> None:
    """Adapters bring their own commands (`parley chat`, `parley discord sync`…)."""
    from bot.plugins import discover

    for plugin in discover():
        if plugin.commands is not None:
            plugin.commands(app, _run)


_add_adapter_commands()


def main() -> None:
    app()
