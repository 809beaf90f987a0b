"""Encoders adapted for a task: deep prefix (P-tuning v2), shallow prompt, fine-tuning, or PEFT's prefix.

* ``models/prefix/injection.py``: where prefixes enter attention (one mechanism for every architecture);
* ``models/methods/``: the four methods behind one interface, registered by name with their configs;
* ``models/adapted.py``: encoder + method + head, one class for every task.

Nothing is imported here, so that ``models.methods`` (names, configs, default learning rates) stays
importable without torch.
"""
