"""Every sentence Parley says to a person, in one place."""

from __future__ import annotations

from bot.messages import Outcome

EN: dict[str, str] = {
    "run.none": "No platform is configured: set DISCORD_TOKEN and/or SLACK_BOT_TOKEN (see "
                "README), or chat in the terminal with `parley chat`.",
    "discord.placeholder": "…",
    "discord.not_allowed": "Sorry, I'm not enabled for you here.",
    "discord.intents": "Discord refused the Message Content intent: enable \"Message Content "
                       "Intent\" under Bot → Privileged Gateway Intents at "
                       "https://discord.com/developers/applications, then restart.",
    "discord.bad_token": "Discord rejected DISCORD_TOKEN: copy the bot's token again from "
                         "https://discord.com/developers/applications (Bot → Reset Token).",
    "discord.no_token": "DISCORD_TOKEN is not set: copy the bot's token from "
                        "https://discord.com/developers/applications (Bot → Reset Token).",
    "discord.content_empty": "A server message arrived without text: Discord withholds it "
                             "unless \"Message Content Intent\" is enabled for the bot (Bot → "
                             "Privileged Gateway Intents).",
    "discord.synced": "Registered {count} slash commands with Discord: {names}. New commands "
                      "can take a few minutes to appear.",
    "empty": "I got an empty message. Write something and I'll answer.",
    "empty_reply": "The model returned an empty answer. Try rephrasing your message.",
    "duplicate": "",
    "shortened": "\n[… message shortened to fit the model's context window …]",
    "unknown_command": "Unknown command `/{name}`. Try `/help`.",
    "admin_only": "Only admins can use `/{name}` here.",
    "help.header": "Commands:",
    "help.line": "`{usage}` — {summary}",
    "help.footer": "Anything else is a message for the model; I remember this conversation.",
    "reset.done": "Conversation reset: I'll start afresh from here. (Nothing was deleted.)",
    "persona.show": "Persona for this conversation:\n{persona}",
    "persona.default": "This conversation uses the default persona:\n{persona}",
    "persona.set": "Persona set. It applies from the next message.",
    "persona.cleared": "Persona cleared; back to the default.",
    "persona.usage": "Usage: `/persona` (show), `/persona set <text>`, `/persona clear`.",
    "persona.too_long": "That persona is {tokens} tokens, more than half the model's "
                        "window ({window}); please shorten it.",
    "memory.report": (
        "Stored since the last reset: {messages} messages ({tokens} tokens).\n"
        "Context window: {window} tokens ({reserve} reserved for the reply, {system} for the "
        "persona).\nThe newest {fit_messages} messages ({fit_tokens} tokens) fit in the prompt now."
    ),
    "ask.usage": "Usage: `/ask <question>`.",
    "attach.file": "[file {name}]\n{body}\n[end of file {name}]",
    "attach.image": "[image {name}]",
    "attach.image_not_shown": "[image {name}: not shown to the model]",
    "attach.not_read": "[file {name}: too large, not read]",
    "attach.other": "[file {name}: not read]",
    "attach.no_vision": "I can't see images with this model, so I skipped {names}.",
    "attach.too_large": "I skipped {names}: larger than {limit}.",
    "attach.notice": "_{notes}_",
    "search.summary": "search the web and answer from the results",
    "search.unavailable": "_(Web search was unavailable, so this answer does not use fresh "
                          "results.)_",
    "search.empty": "_(Web search found nothing for “{query}”.)_",
    "search.sources": "Sources:",
    "search.source": "[{number}] {title} — {url}",
    "command.usage": "Usage: `{usage}`.",
    "not_allowed": "Sorry, I'm not set up to answer you here.",
    "cannot_post": "I can't post in this conversation: invite me to the channel first.",
    "error.rate_limited": "The model is rate-limiting requests right now. Please try again in a "
                          "minute.",
    "error.quota": "The model provider says the API quota is used up. The bot's owner needs to "
                   "check the account's billing or limits.",
    "error.timeout": "The model took too long to answer. Please try again.",
    "error.unreachable": "I can't reach the model endpoint ({url}). The bot's owner should check "
                         "that the server is running and OPENAI_BASE_URL is right.",
    "error.auth": "The model endpoint rejected the API key. The bot's owner should check "
                  "OPENAI_API_KEY.",
    "error.model_not_found": "The model '{model}' was not found at {url}. The bot's owner "
                             "should check PARLEY_MODEL and OPENAI_BASE_URL.",
    "error.bad_request": "The model endpoint refused the request: {detail}",
    "error.server_error": "The model endpoint had an internal error. Please try again shortly.",
    "error.context": "The conversation did not fit the model's context window even after "
                     "trimming. The bot's owner should set PARLEY_CONTEXT_TOKENS to the model's "
                     "real window.",
    "error.storage": "I couldn't read or save this conversation (a database problem). The "
                     "bot's owner should check the logs and PARLEY_DATABASE_URL.",
    "error.no_room": "The persona leaves no room for messages in the model's context window. "
                     "Shorten it with `/persona set` or raise PARLEY_CONTEXT_TOKENS.",
}

_ERRORS: dict[Outcome, str] = {
    Outcome.RATE_LIMITED: "error.rate_limited",
    Outcome.QUOTA: "error.quota",
    Outcome.TIMEOUT: "error.timeout",
    Outcome.UNREACHABLE: "error.unreachable",
    Outcome.AUTH: "error.auth",
    Outcome.MODEL_NOT_FOUND: "error.model_not_found",
    Outcome.BAD_REQUEST: "error.bad_request",
    Outcome.SERVER_ERROR: "error.server_error",
}


def say(key: str, **values: object) -> str:
    return EN[key].format(**values)


def error_text(outcome: Outcome, **values: object) -> str:
    """What to tell the person about a failed model call, with the fix when there is one."""
    return say(_ERRORS[outcome], **values)
