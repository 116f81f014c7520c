"""`parley doctor` on the model server's abilities: window and its source, token counting,
tool calling, embeddings (issue 13)."""

from __future__ import annotations

from bot.checks import Check
from bot.doctor import diagnose
from tests.conftest import SettingsFactory
from tests.fakes.model_quirks import hangul_heavy
from tests.fakes.model_server import Fail, FakeModel, Reply, tool_call
from tests.fakes.search_server import FakeSearch


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def test_the_window_and_its_source_are_shown(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    checks = by_name(await diagnose(make_settings()))
    assert checks["context window"].ok
    assert "128,000" in checks["context window"].detail
    assert "known-models" in checks["context window"].detail
    assert "tiktoken" in checks["token counts"].detail


async def test_a_setting_above_the_servers_window_is_warned_about(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.models = ("local",)
    fake_model.server, fake_model.context_window, fake_model.report_window = "vllm", 4096, True
    checks = by_name(await diagnose(make_settings(model="local", context_tokens=8192)))
    assert "8,192" in checks["context window"].detail
    warning = checks["context window setting"]
    assert not warning.ok and "4,096" in warning.detail and "4096" in warning.fix
    fine = by_name(await diagnose(make_settings(model="local")))
    assert (
        "4,096" in fine["context window"].detail
        and "max_model_len" in fine["context window"].detail
    )
    assert "context window setting" not in fine


async def test_the_servers_tokenizer_is_named(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.models = ("local",)
    fake_model.tokenizer, fake_model.tokenize_route = hangul_heavy, True
    checks = by_name(await diagnose(make_settings(model="local")))
    assert "/tokenize" in checks["token counts"].detail
    fake_model.tokenize_route = False
    checks = by_name(await diagnose(make_settings(model="local")))
    assert "PARLEY_TOKENIZER" in checks["token counts"].detail


async def test_tool_calling_is_probed_when_search_runs_in_tool_mode(
    make_settings: SettingsFactory, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    settings = make_settings(search_provider="searxng", search_url=fake_search.base_url)
    fake_model.script(Reply("OK"), Reply("", tool_calls=[tool_call("get_time", {"city": "Seoul"})]))
    assert by_name(await diagnose(settings))["tool calling"].ok
    fake_model.script(Reply("OK"), Reply("It is noon."))  # a model that ignores tools
    ignored = by_name(await diagnose(settings))["tool calling"]
    assert not ignored.ok and "PARLEY_SEARCH_MODE=always" in ignored.fix
    always = by_name(
        await diagnose(
            make_settings(
                search_provider="searxng", search_url=fake_search.base_url, search_mode="always"
            )
        )
    )
    assert "tool calling" not in always


async def test_embeddings_are_probed(make_settings: SettingsFactory, fake_model: FakeModel) -> None:
    settings = make_settings(embedding_model="embed-small")
    assert "512" in by_name(await diagnose(settings))["embeddings"].detail
    fake_model.per_token_embeddings = True
    assert "per token" in by_name(await diagnose(settings))["embeddings"].detail
    fake_model.embedding_failure = Fail(500, "llama_cpp: embeddings are disabled")
    failed = by_name(await diagnose(settings))["embeddings"]
    assert not failed.ok and "PARLEY_EMBEDDING_MODEL" in failed.fix
