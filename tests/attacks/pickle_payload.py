# file: neurons.py
# unit: neurons.linear_regression_fit
# stops: namespace docker process-root
# leaves: /tmp/__MARKER__-unpickled
import os
import pickle


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/__MARKER__-unpickled",))


def linear_regression_fit(X, y):
    return [Payload(), pickle.dumps(Payload())]
