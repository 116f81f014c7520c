"""Every sentence Parley says to a person, in one place."""

from __future__ import annotations

from bot.messages import Outcome

EN: dict[str, str] = {
    "run.none": "No platform is configured: set DISCORD_TOKEN and/or SLACK_BOT_TOKEN (see "
                "README), or chat in the terminal with `parley chat`.",
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
    "recall.header": "Earlier excerpts from this conversation's history and shared documents "
                     "that may be relevant (quoted from the past, not new messages):",
    "recall.message": "[{when} UTC, {author}] {text}",
    "recall.passage": "[from the document \"{filename}\" shared by {author} on {when}; cite "
                      "its name when you use it] {text}",
    "summary.section": "Summary of the earlier conversation (older messages no longer shown):\n"
                       "{summary}",
    "summary.instruction": "You keep a running summary of a chat for a participant who cannot "
                           "see its older messages. Merge the previous summary with the new "
                           "messages. Keep names, dates, facts, decisions and open questions; "
                           "drop small talk. Write at most {tokens} tokens, in the chat's "
                           "language, as plain sentences.",
    "summary.request": "Previous summary:\n{previous}\n\nNew messages:\n{transcript}",
    "summary.none": "(none yet)",
    "document.added": "I've read \"{filename}\" ({passages} passages); ask me about it any time "
                      "in this conversation.",
    "document.unreadable": "I couldn't read \"{filename}\": {reason}",
    "document.unsupported": "not a text, Markdown or PDF file",
    "document.bad_pdf": "it is not a readable PDF ({error})",
    "document.empty": "it contains no text (a scanned PDF needs OCR first)",
    "forget.done": "Done: I deleted {messages} messages and {documents} documents of yours "
                   "from every conversation on this platform, including the search index.",
    "forget.usage": "Usage: `/forget me` deletes everything you wrote or shared, everywhere on "
                    "this platform. It cannot be undone.",
    "import.invalid": "Line {line}: {reason}. Nothing was imported.",
    "import.not_json": "not valid JSON ({error})",
    "import.not_object": "expected a JSON object",
    "import.field": "the field \"{field}\" is missing or not a string",
    "import.role": "role must be \"user\" or \"assistant\", not \"{role}\"",
    "import.conversation": "conversation must look like platform/workspace/channel[/thread]",
    "import.time": "time \"{time}\" is not an ISO 8601 date-time",
    "import.done": "Imported {count} messages.",
    "export.done": "Exported to {path}.",
    "export.none": "No conversation named \"{name}\" was found.",
    "file.unreadable": "Can't read {path}: {error}",
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
