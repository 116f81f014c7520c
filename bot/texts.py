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
    "attach.refused": "I wasn't allowed to download {names}: the bot's owner needs to give me "
                      "access to files.",
    "attach.notice": "_{notes}_",
    "search.summary": "search the web and answer from the results",
    "search.unavailable": "_(Web search was unavailable, so this answer does not use fresh "
                          "results.)_",
    "search.empty": "_(Web search found nothing for “{query}”.)_",
    "search.sources": "Sources:",
    "search.source": "[{number}] {title} — {url}",
    "command.usage": "Usage: `{usage}`.",
    "not_allowed": "Sorry, I'm not set up to answer you here.",
    "slack.placeholder": "_Thinking…_",
    "cannot_post": "I can't post in this conversation: invite me to the channel first.",
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
    "error.storage": "I couldn't read or save this conversation (a database problem). The "
                     "bot's owner should check the logs and PARLEY_DATABASE_URL.",
    "error.no_room": "The persona leaves no room for messages in the model's context window. "
                     "Shorten it with `/persona set` or raise PARLEY_CONTEXT_TOKENS.",
    # Operations (#7): shutdown, `parley doctor`, `parley init`.
    "shutting_down": "I'm restarting right now and can't answer this. Please send it again in "
                     "a minute.",
    "doctor.pass": "[ ok ] {name}: {detail}",
    "doctor.fail": "[FAIL] {name}: {detail}",
    "doctor.fix": "       fix: {fix}",
    "doctor.summary": "{passed} passed, {failed} failed.",
    "doctor.config": "loaded ({sources})",
    "doctor.config.none": "environment variables only",
    "doctor.config.invalid": "invalid: {error}",
    "doctor.config.fix": "Set it in the environment, .env or parley.toml (`parley init` writes "
                         "commented templates).",
    "doctor.db.ok": "{url} is reachable",
    "doctor.db.failed": "cannot open {url}: {error}",
    "doctor.db.fix": "Check PARLEY_DATABASE_URL (and that the server is running and the "
                     "user/password are right), or unset it to use SQLite in PARLEY_DATA_DIR.",
    "doctor.db.driver_fix": "Install the database driver: pip install 'parley[postgres]'.",
    "doctor.schema.current": "up to date (revision {revision})",
    "doctor.schema.pending": "at {current}, {count} migration(s) to apply; Parley applies them "
                             "at start-up, or run `parley db upgrade` now",
    "doctor.schema.empty": "new database: the schema is created at start-up (or run "
                           "`parley db upgrade` now)",
    "doctor.schema.unknown": "at revision {revision}, which this version of Parley does not "
                             "know (written by a newer Parley?)",
    "doctor.schema.unknown_fix": "Upgrade Parley to the version that last used this database, "
                                 "or point PARLEY_DATABASE_URL at another database.",
    "doctor.endpoint.ok": "{url} reachable, API key accepted ({count} models listed)",
    "doctor.endpoint.no_list": "{url} reachable; it has no model list (/models), so the model "
                               "is checked by the test reply below",
    "doctor.endpoint.failed": "{url}: {detail}",
    "doctor.model.ok": "'{model}' is offered by the endpoint",
    "doctor.model.missing": "'{model}' is not offered by the endpoint (it has: {available})",
    "doctor.reply.ok": "a short streamed reply arrived in {seconds:.1f} s",
    "doctor.reply.failed": "a short streamed reply failed ({outcome}): {detail}",
    "doctor.fix.auth": "Check OPENAI_API_KEY: the endpoint rejected it.",
    "doctor.fix.unreachable": "Check OPENAI_BASE_URL and that the server is running and "
                              "reachable from here.",
    "doctor.fix.timeout": "The endpoint is too slow: check the server, or raise "
                          "PARLEY_REQUEST_TIMEOUT.",
    "doctor.fix.model_not_found": "Set PARLEY_MODEL to a model the endpoint offers (for Ollama: "
                                  "`ollama pull <model>` first).",
    "doctor.fix.rate_limited": "The endpoint is rate-limiting: wait, or check the account's "
                               "limits.",
    "doctor.fix.quota": "The API quota is used up: check the account's billing.",
    "doctor.fix.bad_request": "The endpoint refused the request: check PARLEY_MODEL and that "
                              "the server is OpenAI-compatible.",
    "doctor.fix.server_error": "The endpoint had an internal error: check the server's logs.",
    "doctor.platforms.none": "none configured: `parley chat` works; `parley run` needs "
                             "DISCORD_TOKEN and/or SLACK_BOT_TOKEN",
    "doctor.http_failed": "request to {url} failed: {error}",
    "doctor.http_fix": "Check the network, and {setting} if you changed it.",
    "doctor.discord.ok": "token valid: logged in as {name} (id {id})",
    "doctor.discord.bad_token": "the token was rejected (HTTP {status})",
    "doctor.discord.token_fix": "Discord Developer Portal → your app → Bot → Reset Token; set "
                                "DISCORD_TOKEN to the new token.",
    "doctor.discord.intent_ok": "message content intent enabled",
    "doctor.discord.intent_off": "the Message Content intent is off: Parley would see empty "
                                 "messages outside DMs and mentions",
    "doctor.discord.intent_fix": "Developer Portal → your app → Bot → Privileged Gateway "
                                 "Intents → enable MESSAGE CONTENT INTENT, then save.",
    "doctor.slack.ok": "token valid: @{user} in {team}",
    "doctor.slack.bad_token": "auth.test failed: {error}",
    "doctor.slack.token_fix": "Set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from "
                              "the app's OAuth & Permissions page.",
    "doctor.slack.no_bot_token": "SLACK_APP_TOKEN or SLACK_SIGNING_SECRET is set but "
                                 "SLACK_BOT_TOKEN is not",
    "doctor.slack.scopes_ok": "bot scopes include {scopes}",
    "doctor.slack.scopes_missing": "bot token lacks scopes: {missing}",
    "doctor.slack.scopes_fix": "Add them under OAuth & Permissions → Bot Token Scopes (or create "
                               "the app from deploy/slack-manifest-*.yml), then reinstall the "
                               "app to the workspace.",
    "doctor.slack.socket": "Socket Mode (SLACK_APP_TOKEN)",
    "doctor.slack.http": "HTTP mode (SLACK_SIGNING_SECRET)",
    "doctor.slack.bad_app_token": "SLACK_APP_TOKEN must be an app-level token starting with "
                                  "xapp-",
    "doctor.slack.app_token_fix": "Basic Information → App-Level Tokens → generate one with "
                                  "connections:write.",
    "doctor.slack.no_mode": "neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET "
                            "(HTTP mode) is set",
    "doctor.slack.mode_fix": "For Socket Mode set SLACK_APP_TOKEN (xapp-…); for HTTP mode set "
                             "SLACK_SIGNING_SECRET (Basic Information → App Credentials).",
    "init.endpoint": "Chat API base URL (OpenAI-compatible)",
    "init.api_key": "API key (leave empty for local servers such as Ollama)",
    "init.model": "Model",
    "init.platforms": "Platforms (comma-separated: discord, slack; empty for terminal only)",
    "init.discord_token": "Discord bot token (empty to fill in later)",
    "init.slack_bot_token": "Slack bot token xoxb-… (empty to fill in later)",
    "init.slack_app_token": "Slack app token xapp-… for Socket Mode (empty to fill in later)",
    "init.slack_signing_secret": "Slack signing secret for HTTP mode (empty with Socket Mode)",
    "init.unknown_platform": "Unknown platform(s): {names}. Choose from: discord, slack.",
    "init.exists": "{path} exists; not overwritten (use --force to replace it).",
    "init.wrote": "Wrote {path}",
    "init.next": "Next: review the files, then run `parley doctor`.",
    "healthcheck.off": "Metrics are off (PARLEY_METRICS_PORT unset): nothing to check.",
    "healthcheck.failed": "Unhealthy: {detail}",
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
