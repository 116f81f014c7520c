"""Discord, on discord.py: answers mentions, DMs, replies, its threads and chosen channels, with
streamed replies and slash commands. `plugin` registers it with the core (importing it, or this
package, does not import discord.py); `client` has the bot; the other modules are its parts:
`settings`, `inbound` (Discord → Inbound with its facts), `surface` (rendering), `slash`,
`doctor`."""
