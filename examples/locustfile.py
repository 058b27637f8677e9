"""Load-test a voice bot with Locust, calls made by pipecat-wsclient's transport.

Try it against the local tone server (answers each utterance with a tone
0.3 s after it ends):

    pipecat-wsclient serve --mode tone --port 8765
    locust -f examples/locustfile.py --host ws://127.0.0.1:8765/ws

then open http://localhost:8089. Headless, distributed over two workers:

    locust -f examples/locustfile.py --master --headless --expect-workers 2 \\
        -u 10 -r 2 -t 60s --stop-timeout 30 --csv run --host ws://127.0.0.1:8765/ws
    locust -f examples/locustfile.py --worker   # twice, on this or other machines

Request names (type WS): connect, first_answer, response (one per turn), call.
"""

from locust import constant

from pipecat_wsclient.locust import VoiceCallUser


class Caller(VoiceCallUser):
    # Used when locust is given no --host.
    uri = "ws://127.0.0.1:8765/ws"
    protocol = "pipecat"
    # The bundled clip (two questions with a pause) when empty; WAV paths otherwise.
    clips = ()
    # Each turn plays the clip, then listens for `think` seconds.
    turns = 1
    think = 1.0
    # Start the next call right after the previous one ends.
    wait_time = constant(0)
