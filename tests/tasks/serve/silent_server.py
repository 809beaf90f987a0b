"""``python -m silent_server --port N``: accepts connections on N and never answers (a server stuck loading),
for ``start_server``'s read-timeout path."""
import argparse
import socket
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
listener = socket.create_server(("127.0.0.1", p.parse_args().port))
connections = []
while True:
    connection, _ = listener.accept()
    connections.append(connection)  # kept open, never read, never answered
    time.sleep(0.01)
