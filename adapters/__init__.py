"""Platform adapters, each a plug-in the core finds through the `parley.adapters` entry points
(see `bot.plugins`): they turn platform events into `bot.messages.Inbound`s with neutral facts
and render the core's replies back. No policy and no storage here."""
