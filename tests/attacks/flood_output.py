# file: backprop.py
# unit: backprop.MSELoss
# stops: namespace docker process-root
import os
import sys


class MSELoss(MSELoss):
    def forward(self, pred, target):
        line = "flood " * 1000 + "\n"
        for _ in range(20000):  # about 120 MB on each stream
            sys.stdout.write(line)
            sys.stderr.write(line)
        os.write(1, b"raw " * 100000)
        return pred.sum() * 0
