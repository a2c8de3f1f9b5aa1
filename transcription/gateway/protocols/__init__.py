"""Wire protocols over the one session core: each parses its frames into commands and renders events."""
