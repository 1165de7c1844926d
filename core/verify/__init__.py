"""Citation verification: does the passage a sentence cites support it, contradict it, or neither?

Two methods, chosen by ``LITRAG_ANSWER__VERIFIER``:

- ``nli`` (default): ``minilm-nli-crossencoder/v2``, a 3-way cross-encoder trained on labelled
  claim-evidence pairs (``eval/verify_train.py``), shipped as an int8 ONNX file in
  ``core/verify/model``;
- ``v1``: ``minilm-cosine+lexical+key-terms/v1``, kept for comparison.
"""

from core.verify.base import Support, Verdict, Verifier
from core.verify.factory import make_verifier

__all__ = ["Support", "Verdict", "Verifier", "make_verifier"]
