"""The sensor function (see main.py)."""
