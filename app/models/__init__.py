"""The model manager: catalog, trusted downloads, local import, and what is installed.

This package is the only code in Daybook that opens a network connection, and only when the user
asks for a download.
"""
