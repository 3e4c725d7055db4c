"""The command groups of ``caboose``, one module each; ``main.py`` registers them."""
