"""The LLM gateway's HTTP side: streaming routes to the model providers, and a fake upstream for tests and the demo."""
