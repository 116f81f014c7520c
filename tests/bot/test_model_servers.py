"""Right with the servers self-hosters run: budgets in the model's tokens, the window from the
server, every server's overflow recognised and recovered from (issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.messages import Outcome
from bot.overflow import recognise
from bot.runtime import open_parley
from bot.texts import say
from memory.tables import Calibration
from tests.conftest import SettingsFactory
from tests.fakes.model_quirks import hangul_heavy
from tests.fakes.model_server import FakeModel
from tests.helpers import ask, requests_for

LOCAL = "SmolLM2-135M-Instruct"  # a model tiktoken does not know
KOREAN = (
    "오늘 회의에서 다음 분기 출시 일정과 담당자를 정리해 주세요. 그리고 위험 요소도 알려 주세요. "
)


def _local(fake_model: FakeModel, server: str, window: int = 2048) -> None:
    fake_model.models = (LOCAL,)
    fake_model.tokenizer = hangul_heavy
    fake_model.server = server
    fake_model.context_window = window


@pytest.mark.parametrize("server", ["llama-cpp-python", "llama-server", "vllm"])
async def test_a_korean_conversation_never_overflows_an_unknown_model(
    make_settings: SettingsFactory, fake_model: FakeModel, server: str
) -> None:
    """The server counts Korean ~3.7x tiktoken; nothing tells Parley its window (2,048, the
    default for unknown models). Every message is answered, the first one included, and no
    request overflows."""
    _local(fake_model, server)
    async with open_parley(make_settings(model=LOCAL, max_reply_tokens=256)) as parley:
        for i in range(12):
            final = await ask(parley, f"{i}. {KOREAN * 3}")
            assert final.outcome is Outcome.OK, (i, final.text)
    sizes = [fake_model.prompt_size(body) for body in fake_model.requests]
    assert len(sizes) == 12  # no retries were needed
    assert max(sizes) + 64 <= 2048
    # History was kept: later prompts carry earlier messages.
    assert len(fake_model.requests[-1]["messages"]) > 3


async def test_calibration_is_learnt_from_usage_and_kept(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """English costs ~1.1x here; the default assumes more. Usage reports teach the real ratio
    (per script, in the database), and a restart keeps it."""
    _local(fake_model, "llama-cpp-python", window=4096)
    settings = make_settings(model=LOCAL)
    async with open_parley(settings) as parley:
        before = parley.fitter.calibrator.script_factor("other")
        for i in range(3):
            await ask(parley, f"note {i}: the release goes out on Friday after the review.")
        learnt = parley.fitter.calibrator.script_factor("other")
        assert learnt < before
        assert all(
            body["stream_options"] == {"include_usage": True} for body in fake_model.requests
        )
        sessions = async_sessionmaker(parley.store.engine)
        async with sessions() as session:
            rows = (await session.scalars(select(Calibration))).all()
        assert {(row.model, row.script) for row in rows} == {(LOCAL, "other")}
    async with open_parley(settings) as parley:
        # Written when it moves by 1% or more (not on every reply): kept within that step.
        assert parley.fitter.calibrator.script_factor("other") == pytest.approx(learnt, rel=0.01)
        assert parley.fitter.calibrator.script_factor("hangul") == 4.0  # nothing learnt yet


@pytest.mark.parametrize("server", ["llama-server", "vllm", "openai", "lmstudio", "ollama"])
async def test_an_overflow_in_any_servers_words_is_recovered(
    make_settings: SettingsFactory, fake_model: FakeModel, server: str
) -> None:
    """PARLEY_CONTEXT_TOKENS says 8,000; the server has 2,048. The overflow is recognised in
    its own words, the prompt re-trimmed, and the conversation goes on."""
    _local(fake_model, server)
    async with open_parley(make_settings(model=LOCAL, context_tokens=8000)) as parley:
        for i in range(8):
            final = await ask(parley, f"{i} " + "lorem ipsum dolor sit amet " * 40)
            assert final.outcome is Outcome.OK, (server, i, final.text)
    assert fake_model.prompt_size(fake_model.requests[-1]) <= 2048


async def test_an_empty_stream_for_a_large_prompt_is_taken_for_an_overflow(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """llama-cpp-python answers a streamed prompt longer than its window with an empty 200."""
    _local(fake_model, "llama-cpp-python")
    text = "lorem ipsum dolor sit amet " * 40
    async with open_parley(make_settings(model=LOCAL, context_tokens=4000)) as parley:
        for i in range(10):
            final = await ask(parley, f"{i} {text}")
            assert final.outcome is Outcome.OK, (i, final.text)
    retried = [i for i in range(10) if len(requests_for(fake_model, f"{i} {text}")) > 1]
    assert retried  # the empty stream was met, and answered by a re-trim


async def test_an_empty_stream_for_a_small_prompt_is_an_error_not_a_retry(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    _local(fake_model, "llama-cpp-python")
    fake_model.context_window = 10  # any prompt overflows, but "hi" is not large for 8,000
    async with open_parley(make_settings(model=LOCAL, context_tokens=8000)) as parley:
        final = await ask(parley, "hi")
    assert final.outcome is Outcome.SERVER_ERROR
    assert len(fake_model.requests) == 1


@pytest.mark.parametrize(
    ("server", "source"),
    [
        ("llama-server", "meta.n_ctx"),
        ("vllm", "max_model_len"),
        ("ollama", "num_ctx"),
        ("lmstudio", "loaded_context_length"),
    ],
)
async def test_the_window_comes_from_the_server(
    make_settings: SettingsFactory, fake_model: FakeModel, server: str, source: str
) -> None:
    _local(fake_model, server, window=3000)
    fake_model.report_window = True
    async with open_parley(make_settings(model=LOCAL)) as parley:
        assert parley.window.tokens == 3000 and source in parley.window.source
    async with open_parley(make_settings(model=LOCAL, context_tokens=5000)) as parley:
        assert parley.window.tokens == 5000 and parley.window.reported == 3000


async def test_an_unknown_model_gets_a_conservative_window(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.models = (LOCAL,)
    async with open_parley(make_settings(model=LOCAL)) as parley:
        assert parley.window.tokens == 2048 and parley.window.reported is None
    async with open_parley(make_settings()) as parley:
        assert parley.window.tokens == 128_000  # gpt-4o-mini: the known-models table


async def test_the_servers_tokenizer_makes_counts_exact(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """With llama-server's /tokenize the prompt is counted in the model's tokens before it is
    sent: a window filled to the brim, never past it."""
    _local(fake_model, "llama-server", window=1500)
    fake_model.tokenize_route = True
    fake_model.report_window = True
    async with open_parley(make_settings(model=LOCAL, max_reply_tokens=200)) as parley:
        assert parley.fitter.tokenizer is not None
        for i in range(10):
            assert (await ask(parley, f"{i}. {KOREAN * 2}")).outcome is Outcome.OK
    assert len(fake_model.requests) == 10 and fake_model.tokenize_requests >= 10
    sizes = [fake_model.prompt_size(body) for body in fake_model.requests]
    assert max(sizes) + 200 <= 1500
    assert max(sizes) > 900  # and it is used, not left empty out of caution


async def test_a_tokenizer_file_counts_like_the_model(
    make_settings: SettingsFactory, fake_model: FakeModel, tmp_path: object
) -> None:
    """PARLEY_TOKENIZER=tokenizer.json: here a character-level tokenizer (English costs ~4x
    tiktoken), which the calibration defaults would badly under-estimate."""
    from pathlib import Path

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    path = Path(str(tmp_path)) / "tokenizer.json"
    tokenizer.save(str(path))

    def by_character(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    _local(fake_model, "llama-server", window=3000)
    fake_model.tokenizer = by_character
    settings = make_settings(model=LOCAL, max_reply_tokens=200, tokenizer=str(path))
    async with open_parley(settings) as parley:
        for i in range(6):
            final = await ask(parley, f"{i} " + "lorem ipsum dolor sit amet " * 8)
            assert final.outcome is Outcome.OK, final.text
    assert len(fake_model.requests) == 6  # exact counts: never an overflow to recover from


def test_settings_refuse_a_tokenizer_that_is_neither_file_nor_encoding(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(ValueError, match="not a file"):
        make_settings(tokenizer="/nowhere/tokenizer.json")
    assert make_settings(tokenizer="cl100k_base").tokenizer == "cl100k_base"


@pytest.mark.parametrize(
    ("status", "code", "message", "prompt", "window"),
    [
        (
            400,
            "context_length_exceeded",
            "This model's maximum context length is 8192 tokens. "
            "However, you requested 9000 tokens (8000 in the messages, 1000 in the completion).",
            8000,
            8192,
        ),
        (
            400,
            None,
            "request (2100 tokens) exceeds the available context size (2048 tokens), "
            "try increasing it",
            2100,
            2048,
        ),
        (
            400,
            "context_length_exceeded",
            "Requested tokens (2300) exceed context window of 2048",
            2300,
            2048,
        ),
        (
            400,
            None,
            "'max_tokens' or 'max_completion_tokens' is too large: 1024. This model's "
            "maximum context length is 2048 tokens and your request has 1500 input tokens "
            "(1024 > 2048 - 1500).",
            1500,
            2048,
        ),
        (500, None, "prompt too long; exceeded max context length by 20 tokens", None, None),
        (
            400,
            None,
            "Trying to keep the first 5000 tokens when context the overflows. However, "
            "the model is loaded with context length of only 4096 tokens",
            5000,
            4096,
        ),
        (
            400,
            "context_length_exceeded",
            "Your input exceeds the context window of this model.",
            None,
            None,
        ),
    ],
)
def test_overflow_wordings_are_recognised(
    status: int, code: str | None, message: str, prompt: int | None, window: int | None
) -> None:
    found = recognise(status, code, message)
    assert found is not None
    assert (found.prompt_tokens, found.window) == (prompt, window)


def test_other_errors_are_not_overflows() -> None:
    assert recognise(400, None, "Invalid 'messages[0].role': 'robot'") is None
    assert recognise(429, "rate_limit_exceeded", "too many tokens per minute") is None


async def test_the_reply_never_asks_for_more_than_the_window_leaves(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    _local(fake_model, "vllm", window=1200)
    fake_model.report_window = True
    async with open_parley(make_settings(model=LOCAL, max_reply_tokens=1024)) as parley:
        for i in range(5):
            assert (await ask(parley, f"{i} " + "lorem ipsum " * 60)).outcome is Outcome.OK
    for body in fake_model.requests:
        assert fake_model.prompt_size(body) + body["max_tokens"] <= 1200


async def test_a_first_korean_message_longer_than_the_window_is_shortened_not_overflowed(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    _local(fake_model, "llama-cpp-python")
    async with open_parley(make_settings(model=LOCAL, max_reply_tokens=256)) as parley:
        final = await ask(parley, KOREAN * 60)
    assert final.outcome is Outcome.OK
    assert len(fake_model.requests) == 1
    sent = fake_model.requests[0]
    assert fake_model.prompt_size(sent) + sent["max_tokens"] <= 2048
    assert str(sent["messages"][-1]["content"]).endswith(say("shortened"))
