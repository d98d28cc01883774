# file: optimizers.py
# unit: optimizers
# link: optimizers.py -> __REFERENCE__/optimizers.py
