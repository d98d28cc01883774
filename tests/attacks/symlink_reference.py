# file: optimizers.py
# unit: optimizers
# stops: namespace docker process-root
# link: optimizers.py -> __REFERENCE__/optimizers.py
