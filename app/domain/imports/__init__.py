"""Imports of CSV and XLSX files: detection, mapping, batched writes, reports and undo."""
