"""Service and shared variables: names, ``.env`` parsing, references, encrypted storage.

``names`` holds the rules (what a key may be, which names the platform reserves, how large a set
may grow), ``dotenv`` parses pasted ``.env`` text, ``resolve`` expands ``${{…}}`` references
without touching a database, and ``store`` is the only module that reads or writes the encrypted
rows. The API (``api/variables.py``) and the deploy pipeline both go through ``store``.
"""
