"""Slack: mentions, threads, DMs and slash commands through slack-bolt (`SlackAdapter`).

Importing this package does not import slack-bolt; `adapters.slack.app` does.
"""
