"""Relata: a headless CRM backend."""
