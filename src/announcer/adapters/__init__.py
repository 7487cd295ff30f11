"""Output adapters: each turns the model into files (and, for email, messages)."""
