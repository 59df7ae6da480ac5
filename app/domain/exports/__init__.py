"""Streamed exports of contacts, companies, deals, tasks and activities (CSV, JSON Lines)."""
