from caboose.server.cli import app

app()
