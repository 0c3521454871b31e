"""Command-line interface (Typer + Rich), one module per command group.

The CLI is a thin layer: it parses options, calls domain code and renders results.
Domain packages never import from here.
"""
