"""Slack: mentions, threads, DMs and slash commands through slack-bolt (`SlackAdapter`).

`plugin` registers it with the core; importing it, or this package, does not import
slack-bolt; `adapters.slack.app` does.
"""
