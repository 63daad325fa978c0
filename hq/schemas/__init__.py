"""Pydantic API models shared by the server and the client (no SQLAlchemy, FastAPI or httpx)."""
