"""Multi-task prefix training (the paper's MPT-2): one shared prefix, one head per dataset (``python -m tasks.multitask``)."""
