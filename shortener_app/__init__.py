"""A small, production-minded URL shortener built with FastAPI."""
