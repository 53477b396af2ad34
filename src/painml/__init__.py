"""painml: classify chronic pain as neuropathic, nociceptive or mixed."""

__version__ = "0.1.0"
