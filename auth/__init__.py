"""Who is calling and what they may do: API keys, JWT bearer tokens and scopes (issue #7)."""
