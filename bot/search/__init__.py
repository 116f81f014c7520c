"""Web search: providers chosen by configuration, result pages read safely, and the
`web_search` tool the core runs for the model (or on every message, or for `/search`)."""
