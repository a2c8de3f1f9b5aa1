"""Third-party clients that cannot share our virtualenv, each in its own (var/clients/<name>-venv).

`make test` creates them (`make client-venvs`); their scripts here run with that venv's python.
"""
