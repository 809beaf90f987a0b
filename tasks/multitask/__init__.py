"""Multi-task prefix training (the paper's MPT-2): a shared prefix, one head per dataset.

``python -m tasks.multitask FAMILY --tasks A B ...``
"""
