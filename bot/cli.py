"""The `parley` command line. Heavy modules are imported inside commands, so `--help` and
configuration errors answer at once."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from bot import installed_version
from bot.logs import Redactor, configure_logging, settings_secrets
from bot.settings import ConfigError, Settings, load_settings, locale_from_environment
from bot.texts import counted, explain, say
from memory.export import Format

# Help texts follow PARLEY_LOCALE (the settings are not loaded before --help).
locale_from_environment()
# Plain help (no rich panels): no "<bool>" type column next to every flag.
_PLAIN: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(
    help=say("cli.app"),
    no_args_is_help=True,
    add_completion=False,
    **_PLAIN,
)
db_app = typer.Typer(help=say("cli.db"), no_args_is_help=True, **_PLAIN)
app.add_typer(db_app, name="db")
memory_app = typer.Typer(help=say("cli.memory"), no_args_is_help=True, **_PLAIN)
app.add_typer(memory_app, name="memory")
ConversationOption = Annotated[
    str | None,
    typer.Option("--conversation", "-c", help=say("cli.opt.conversation")),
]


def _show_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"parley {installed_version()}")
        raise typer.Exit()


@app.callback(help=say("cli.app"))
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help=say("cli.opt.version")
        ),
    ] = False,
) -> None:
    pass  # only the --version option lives here


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(say("config.error", error=exc), err=True)
        raise typer.Exit(2) from exc


def _run(job: Callable[[Settings], Coroutine[Any, Any, None]], quiet: bool = True) -> None:
    """Run a command's job; one-off commands (`quiet`) log only warnings unless asked."""
    settings = _settings()
    configure_logging(settings, quiet=quiet)
    try:
        asyncio.run(job(settings))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ConfigError as exc:  # found at start-up, e.g. a platform refusing the token
        typer.echo(say("config.error", error=exc), err=True)
        raise typer.Exit(2) from exc


@app.command(help=say("cli.run"))
def run() -> None:
    from bot.lifecycle import serve
    from bot.plugins import configured_adapters
    from bot.runtime import metrics_server, open_parley

    async def job(settings: Settings) -> None:
        adapters = configured_adapters(settings)
        if not adapters:
            typer.echo(say("run.none"), err=True)
            raise typer.Exit(2)
        async with open_parley(settings, serving=True) as parley, metrics_server(parley):
            await serve(
                [adapter.run(parley) for adapter in adapters],
                parley.gate,
                settings.shutdown_timeout,
            )

    _run(job, quiet=False)


@db_app.command("upgrade", help=say("cli.db_upgrade"))
def db_upgrade() -> None:
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


@memory_app.command("add-file", help=say("cli.memory_add_file"))
def memory_add_file(
    path: Path,
    conversation: ConversationOption = None,
) -> None:
    from bot.local import terminal_author, terminal_key
    from bot.runtime import open_parley
    from memory.documents import UnreadableDocument

    async def job(settings: Settings) -> None:
        data = await _read_file(path)
        async with open_parley(settings, mcp_servers=False) as parley:
            key = terminal_key(conversation or "default")
            try:
                told = await parley.add_document(key, terminal_author(), path.name, data)
            except UnreadableDocument as exc:
                typer.echo(say("document.unreadable", filename=path, reason=explain(exc)), err=True)
                raise typer.Exit(1) from exc
        typer.echo(told)

    _run(job)


@app.command(help=say("cli.usage"))
def usage(
    days: Annotated[int, typer.Option(min=1, help=say("cli.opt.days"))] = 30,
    by: Annotated[
        Literal["user", "conversation", "model"], typer.Option(help=say("cli.opt.by"))
    ] = "user",
    fmt: Annotated[
        Literal["table", "json"], typer.Option("--format", help=say("cli.opt.usage_format"))
    ] = "table",
) -> None:
    from bot.usage_report import usage_report

    async def job(settings: Settings) -> None:
        typer.echo(await usage_report(settings, days, by, fmt))

    _run(job, quiet=True)


@app.command(help=say("cli.doctor"))
def doctor() -> None:
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


@app.command(help=say("cli.init"))
def init(
    directory: Annotated[Path, typer.Option("--dir", help=say("cli.opt.dir"))] = Path("."),
    force: Annotated[bool, typer.Option(help=say("cli.opt.force"))] = False,
    ask: Annotated[
        bool | None,
        typer.Option(
            "--ask/--no-ask",
            help=say("cli.opt.ask"),
            show_default=False,
        ),
    ] = None,
) -> None:
    from bot.init_files import Answers, ask_answers, where_found, write_files

    locale_from_environment()
    answers = (
        ask_answers(typer.prompt) if (sys.stdin.isatty() if ask is None else ask) else Answers()
    )
    try:
        for path, written in write_files(directory, answers, force):
            typer.echo(say("init.wrote" if written else "init.exists", path=path))
    except OSError as exc:
        typer.echo(
            say("init.failed", path=directory.resolve(), error=exc.strerror or exc), err=True
        )
        raise typer.Exit(1) from exc
    typer.echo(where_found(directory))
    typer.echo(say("init.next"))


@app.command(help=say("cli.healthcheck"))
def healthcheck() -> None:
    from bot.metrics import probe_healthz

    settings = _settings()
    if settings.metrics_port is None:
        typer.echo(say("healthcheck.off"))
        return
    problem = asyncio.run(probe_healthz(settings.metrics_host, settings.metrics_port))
    if problem is not None:
        typer.echo(say("healthcheck.failed", detail=problem), err=True)
        raise typer.Exit(1)


@memory_app.command("export", help=say("cli.memory_export"))
def memory_export(
    conversation: ConversationOption = None,
    all_conversations: Annotated[bool, typer.Option("--all", help=say("cli.opt.all"))] = False,
    fmt: Annotated[Format, typer.Option("--format", help=say("cli.opt.format"))] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=say("cli.opt.output"))
    ] = None,
) -> None:
    from bot.local import terminal_key
    from memory.db import migrated_engine
    from memory.export import export
    from memory.files import write_private

    if all_conversations and conversation:
        typer.echo(say("export.all_and_one"), err=True)
        raise typer.Exit(2)

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


@memory_app.command("import", help=say("cli.memory_import"))
def memory_import(
    path: Path,
    conversation: ConversationOption = None,
) -> None:
    from bot.local import terminal_key
    from memory.db import migrated_engine
    from memory.tokens import TokenCounter
    from memory.transfer import InvalidImport, import_file

    async def job(settings: Settings) -> None:
        target = terminal_key(conversation) if conversation else None
        counter = await asyncio.to_thread(TokenCounter, settings.model)
        async with migrated_engine(settings.resolved_database_url) as engine:
            try:
                imported = await import_file(engine, path, target, counter)
            except InvalidImport as exc:
                typer.echo(say("import.invalid", line=exc.line, reason=explain(exc)), err=True)
                raise typer.Exit(1) from exc
            except OSError as exc:
                typer.echo(say("file.unreadable", path=path, error=exc.strerror or exc), err=True)
                raise typer.Exit(1) from exc
        count = counted("message", imported.stored)
        if imported.skipped:
            skipped = counted("message", imported.skipped)
            typer.echo(say("import.done_skipped", count=count, skipped=skipped))
        else:
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
