"""The labelled quality corpus: real-shaped secrets of every kind, planted in every status and
location an image can hold them, and decoys of every kind that must stay silent.

- `kinds.py`: one generator per credential kind (every rule of the pack, the credential files,
  generic secrets), each making a fresh random secret in the provider's documented shape.
- `decoys.py`: what must never be reported (documentation examples, placeholders and templates,
  lockfiles and checksums, public keys and certificates, UUIDs and git SHAs, vendor files and
  known-public keys, trust stores, code that only names secrets).
- `build.py`: lays plants and decoys out in an image (a docker-archive written by imagekit) and
  keeps the labels; `score.py` matches a scan's findings against them.

`bench/quality.py` prints recall per category and the decoys reported; `tests/unit/test_quality.py`
asserts every kind is found and every decoy is silent.
"""
