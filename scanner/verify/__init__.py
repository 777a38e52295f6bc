"""`--verify`: one read-only call per found credential to its provider's documented API.

interface.py: what a verifier is; spec.py: verifiers from `signatures/verifiers/*.yaml`;
aws.py: the SigV4-signed STS call; transport.py: the only way a credential leaves the machine
(checked addresses, pinned, verified TLS, no redirects); engine.py: pairing, canaries, cache,
rate limits and retries; store.py: the verification cache (hashes only).
"""
