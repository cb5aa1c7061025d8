"""The ADB wire protocol: 24-byte message headers and the constants both
ends use (see AOSP ``packages/modules/adb/protocol.txt``)."""

from __future__ import annotations

import struct

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

A_VERSION = 0x01000001          # >= this: peers may skip the data checksum
MAX_PAYLOAD = 256 * 1024

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_AUTH: "AUTH", A_OPEN: "OPEN", A_OKAY: "OKAY",
         A_CLSE: "CLSE", A_WRTE: "WRTE", A_STLS: "STLS"}
_HEADER = struct.Struct("<6I")


def pack(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    checksum = sum(data) & 0xFFFFFFFF
    return _HEADER.pack(command, arg0, arg1, len(data), checksum,
                        command ^ 0xFFFFFFFF) + data


def unpack_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(command, arg0, arg1, length, checksum); ValueError on a bad magic."""
    command, arg0, arg1, length, checksum, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ValueError(f"bad ADB message magic {magic:#x} for command {command:#x}")
    return command, arg0, arg1, length, checksum


HEADER_SIZE = _HEADER.size


def decode_android_pubkey(text: bytes) -> tuple[int, int]:
    """(n, e) from Android's base64 RSAPublicKey struct (as in ~/.android/adbkey.pub):
    u32 words, u32 n0inv, n (little-endian words), rr, u32 exponent."""
    import base64

    blob = base64.b64decode(text.split(b" ")[0].strip(b"\0 \n"))
    words = struct.unpack_from("<I", blob, 0)[0]
    nbytes = words * 4
    n = int.from_bytes(blob[8:8 + nbytes], "little")
    e = struct.unpack_from("<I", blob, 8 + 2 * nbytes)[0]
    return n, e
