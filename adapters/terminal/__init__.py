"""The terminal adapter: `parley chat` (`chat`), registered as a plug-in (`plugin`)."""
