# file: activations.py
# unit: activations.GELU
# stops: namespace docker process-root
# leaves: /tmp/__MARKER__-tmp
# leaves: /root/__MARKER__-home
# leaves: /var/tmp/__MARKER__-vartmp
import os


class GELU(GELU):
    def forward(self, x):
        written = 0
        for path in ("/tmp/__MARKER__-tmp", os.path.expanduser("~/__MARKER__-home"), "/root/__MARKER__-home",
                     "/var/tmp/__MARKER__-vartmp", "/submission/__MARKER__-submission"):
            try:
                with open(path, "w") as planted:
                    planted.write("planted")
                written += 1
            except OSError:
                pass
        return x * 0 + written
