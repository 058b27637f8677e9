"""``python -m pipecat_wsclient`` runs the command line."""

from pipecat_wsclient.cli.main import run

run()
