"""A shim (see pyodide_shims/README.md): AES-GCM is not available here."""


class AESGCM:
    def __init__(self, key: bytes):
        self._key = bytes(key)

    def encrypt(self, nonce, data, associated_data):
        raise NotImplementedError("AES-GCM is not available in this runtime (cryptography shim)")

    def decrypt(self, nonce, data, associated_data):
        raise NotImplementedError("AES-GCM is not available in this runtime (cryptography shim)")
