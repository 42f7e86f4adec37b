"""Formats at the edge: pydantic models for what arrives, JSON shapes for what leaves."""
