"""Reed-Solomon RS(255, 223) over GF(2^8), in numba.

Field: primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), primitive element alpha = x.
Generator: g(x) = prod_{i=1..32} (x - alpha^i) (first consecutive root 1). Systematic: the 32
parity bytes follow the message. Shortened codes (messages under 223 bytes) are the same code with
implicit leading zeros. These are galois' ``ReedSolomon(255, 223)`` defaults; the tests check our
codewords against galois-made vectors.

Decoding corrects up to t = 16 byte errors per codeword (Berlekamp-Massey, Chien search, Forney);
beyond that it usually detects the failure and returns the received message bytes unchanged.

Why not galois at run time: building ``galois.ReedSolomon(255, 223)`` takes ~10 s and its first
decode another ~7 s of JIT on the CI CPU, in every process; these kernels are cached by numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np

N = 255
K = 223
NPAR = N - K
T = NPAR // 2
_PRIM = 0x11D


def _tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(512, np.int64)
    log = np.zeros(256, np.int64)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= _PRIM
    exp[255:510] = exp[:255]
    return exp, log


_EXP, _LOG = _tables()


def _generator() -> np.ndarray:
    g = np.array([1], np.int64)  # highest degree first
    for i in range(1, NPAR + 1):
        root = _EXP[i]
        out = np.zeros(g.size + 1, np.int64)
        for j, c in enumerate(g):
            out[j] ^= c
            if c:
                out[j + 1] ^= _EXP[(_LOG[c] + _LOG[root]) % 255]
        g = out
    return g


_GEN = _generator()


@nb.njit(cache=True, inline="always")
def _mul(a, b, exp, log):  # pragma: no cover - numba
    if a == 0 or b == 0:
        return 0
    return exp[log[a] + log[b]]


@nb.njit(cache=True, nogil=True)
def _encode(msgs, lengths, gen, exp, log, out):  # pragma: no cover - numba
    """msgs: uint8[C, K] (row i uses its first lengths[i] bytes); out: uint8[C, NPAR] parity."""
    npar = gen.shape[0] - 1
    lg = np.empty(npar + 1, np.int64)
    for j in range(npar + 1):
        lg[j] = log[gen[j]]
    par = np.zeros(npar, np.int64)
    for c in range(msgs.shape[0]):
        par[:] = 0
        for i in range(lengths[c]):
            fb = np.int64(msgs[c, i]) ^ par[0]
            for j in range(npar - 1):
                par[j] = par[j + 1]
            par[npar - 1] = 0
            if fb != 0:
                lf = log[fb]
                for j in range(npar):
                    par[j] ^= exp[lf + lg[j + 1]]
        for j in range(npar):
            out[c, j] = par[j]


@nb.njit(cache=True)
def _decode_one(r, nn, exp, log, npar):  # pragma: no cover - numba
    """Correct r[:nn] in place. Returns the number of corrected bytes, or -1 on failure."""
    synd = np.zeros(npar, np.int64)
    for i in range(nn):  # S_j = sum_i r_i alpha^(j * deg_i), j = 1..npar, deg_i = nn - 1 - i
        ri = np.int64(r[i])
        if ri:
            step = (nn - 1 - i) % 255
            idx = log[ri]
            for j in range(npar):
                idx += step
                if idx >= 255:
                    idx -= 255
                synd[j] ^= exp[idx]
    nonzero = False
    for j in range(npar):
        if synd[j]:
            nonzero = True
    if not nonzero:
        return 0
    # Berlekamp-Massey
    lam = np.zeros(npar + 1, np.int64)
    prev = np.zeros(npar + 1, np.int64)
    lam[0] = 1
    prev[0] = 1
    ll = 0
    m = 1
    b = 1
    for n in range(npar):
        d = synd[n]
        for i in range(1, ll + 1):
            d ^= _mul(lam[i], synd[n - i], exp, log)
        if d == 0:
            m += 1
        else:
            coef = exp[(log[d] - log[b]) % 255]
            if 2 * ll <= n:
                tmp = lam.copy()
                for i in range(npar + 1 - m):
                    lam[i + m] ^= _mul(coef, prev[i], exp, log)
                ll = n + 1 - ll
                prev = tmp
                b = d
                m = 1
            else:
                for i in range(npar + 1 - m):
                    lam[i + m] ^= _mul(coef, prev[i], exp, log)
                m += 1
    if ll > npar // 2:
        return -1
    # Omega = S(x) Lambda(x) mod x^npar (S(x) = sum S_{j+1} x^j)
    omega = np.zeros(npar, np.int64)
    for i in range(npar):
        acc = 0
        for j in range(0, min(i, ll) + 1):
            acc ^= _mul(lam[j], synd[i - j], exp, log)
        omega[i] = acc
    # Chien search over the nn real positions; position i has degree nn - 1 - i
    found = 0
    for i in range(nn):
        deg = nn - 1 - i
        xinv = (255 - deg) % 255  # log of X^-1
        val = 0
        for j in range(ll + 1):
            if lam[j]:
                val ^= exp[(log[lam[j]] + xinv * j) % 255]
        if val == 0:
            # Forney (first root 1): e = Omega(X^-1) / Lambda'(X^-1)
            num = 0
            for j in range(npar):
                if omega[j]:
                    num ^= exp[(log[omega[j]] + xinv * j) % 255]
            den = 0
            for j in range(1, ll + 1, 2):  # formal derivative keeps odd powers
                if lam[j]:
                    den ^= exp[(log[lam[j]] + xinv * (j - 1)) % 255]
            if den == 0:
                return -1
            e = exp[(log[num] - log[den]) % 255] if num else 0
            r[i] = np.uint8(np.int64(r[i]) ^ e)
            found += 1
    if found != ll:
        return -1
    return found


@nb.njit(cache=True, nogil=True)
def _decode(words, lengths, exp, log, npar, status):  # pragma: no cover - numba
    for c in range(words.shape[0]):
        nn = lengths[c] + npar
        row = words[c, :nn].copy()
        res = _decode_one(row, nn, exp, log, npar)
        status[c] = res
        if res > 0:
            words[c, :nn] = row


class ReedSolomon:
    """RS(255, 223) byte code, shortened as needed.

    ``encode(uint8[L]) -> uint8[L + 32 * ceil(L / 223)]``: consecutive codewords (message then
    parity), the last shortened. ``decode(uint8[...], L) -> (uint8[L], status int64[C])``; status
    per codeword: corrected byte count, or -1 when decoding failed.
    """

    n = N
    k = K

    def n_codewords(self, length: int) -> int:
        return -(-length // K)

    def encoded_length(self, length: int) -> int:
        return length + NPAR * self.n_codewords(length)

    def _layout(self, length: int) -> np.ndarray:
        c = self.n_codewords(length)
        lens = np.full(c, K, np.int64)
        if c:
            lens[-1] = length - K * (c - 1)
        return lens

    def encode(self, data: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(data, np.uint8)
        lens = self._layout(data.size)
        c = lens.size
        if c == 0:
            return np.zeros(0, np.uint8)
        msgs = np.zeros((c, K), np.uint8)
        msgs.ravel()[: data.size] = data  # the short last message sits at the start of its row
        par = np.empty((c, NPAR), np.uint8)
        _encode(msgs, lens, _GEN, _EXP, _LOG, par)
        words = np.concatenate([msgs, par], axis=1)  # [C, 255]
        return words.ravel()[self._word_mask(lens)]

    @staticmethod
    def _word_mask(lens: np.ndarray) -> np.ndarray:
        """Positions of the sent bytes in a ``[C, 255]`` array (the short word drops its tail
        message bytes: [msg_L, pad..., parity] -> [msg_L, parity])."""
        mask = np.ones((lens.size, N), bool)
        mask[-1, lens[-1] : K] = False
        return mask.ravel()

    def decode(self, coded: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        coded = np.ascontiguousarray(coded, np.uint8)
        lens = self._layout(length)
        if coded.size != self.encoded_length(length):
            raise ValueError(f"{coded.size} coded bytes do not match a {length}-byte message")
        c = lens.size
        if c == 0:
            return np.zeros(0, np.uint8), np.zeros(0, np.int64)
        words = np.zeros((c, N), np.uint8)
        words.ravel()[self._word_mask(lens)] = coded
        last = words[-1].copy()  # the decoder wants the short word contiguous: [msg_L, parity]
        words[-1] = 0
        words[-1, : lens[-1] + NPAR] = np.concatenate([last[: lens[-1]], last[K:]])
        status = np.zeros(c, np.int64)
        _decode(words, lens, _EXP, _LOG, NPAR, status)
        msg = (
            words[:, :K].ravel()[:length]
            if lens[-1] == K
            else np.concatenate([words[:-1, :K].ravel(), words[-1, : lens[-1]]])
        )
        return msg, status
