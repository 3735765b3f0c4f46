"""Tutela's own watermark engine: a tiled spread-spectrum mark in the luma, with its own sync.

Why our own engine (measured, see docs/provenance.md): `invisible-watermark`'s dwtDctSvd
survives JPEG but not a resize or a crop, and its rivaGan takes seconds per image on a CPU,
fails JPEG 50 and resizes, and needs torch. The engine here is plain numpy/OpenCV:

- **Embedding.** A pseudo-random tile of T×T cells (a secret seed chooses it) is repeated over
  the whole picture. Some cells form a fixed *template*, the others carry the 64 payload bits
  (each bit spread over many cells, each cell with its own ±1 chip). Each cell covers k×k
  pixels (k grows with the picture so the pattern sits in frequencies JPEG keeps) and is
  added to the luma with an amplitude that follows local texture (stronger where the eye
  does not see it, weaker on flat areas).
- **Synchronisation.** Because the tile repeats, the picture's spectrum carries a lattice of
  lines at the tile's period. The decoder whitens the power spectrum, reads the period off
  its autocorrelation (this undoes any resize, including a screenshot-like rescale), folds
  the picture into one tile (summing every repetition, which is what makes the mark strong
  enough to survive JPEG 50), and finds the crop offset by a circular correlation with the
  template. A crop only shifts the tile; cutting off a side only removes repetitions.
- **Decoding.** Each bit is the sign of its chips' correlation with the folded tile; the
  payload's CRC tells a real mark from noise (:mod:`tutela.provenance.payload`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np

from tutela.provenance.payload import PAYLOAD_BITS, decode_bits, encode_key

TILE_CELLS = 32
"""Cells per tile side. 1024 cells: 384 for the template, 640 for the 64 bits (10 each)."""
TEMPLATE_CELLS = 384
SAMPLES_PER_CELL = 2
"""The decoder resamples so that a cell spans 2 samples: enough to find half-cell offsets."""
DEFAULT_SEED = b"tutela-watermark-v1"


@dataclass(frozen=True, slots=True)
class TiledLayout:
    """The secret tile: which cells are template, which bit each data cell carries, chips."""

    template: np.ndarray  # T×T float32: ±1 on template cells, 0 elsewhere
    bit_of_cell: np.ndarray  # T×T int16: payload bit index of a data cell, -1 on template
    chips: np.ndarray  # T×T float32: ±1 chip of each data cell, 0 on template cells

    @classmethod
    def from_seed(cls, seed: bytes) -> TiledLayout:
        digest = hashlib.sha256(b"tutela-tiled-layout\x00" + seed).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "big"))
        n = TILE_CELLS * TILE_CELLS
        order = rng.permutation(n)
        template = np.zeros(n, np.float32)
        template[order[:TEMPLATE_CELLS]] = rng.choice((-1.0, 1.0), TEMPLATE_CELLS)
        data_cells = order[TEMPLATE_CELLS:]
        bit_of_cell = np.full(n, -1, np.int16)
        bit_of_cell[data_cells] = np.arange(len(data_cells)) % PAYLOAD_BITS
        chips = np.zeros(n, np.float32)
        chips[data_cells] = rng.choice((-1.0, 1.0), len(data_cells))
        shape = (TILE_CELLS, TILE_CELLS)
        return cls(template.reshape(shape), bit_of_cell.reshape(shape), chips.reshape(shape))

    def cells_for(self, bits: np.ndarray) -> np.ndarray:
        """The T×T cell values (±1) carrying ``bits`` (0/1) beside the template."""
        signs = np.where(np.asarray(bits) > 0, 1.0, -1.0).astype(np.float32)
        data = np.where(self.bit_of_cell >= 0, signs[np.maximum(self.bit_of_cell, 0)], 0.0)
        return self.template + self.chips * data.astype(np.float32)


@dataclass(frozen=True, slots=True)
class TiledReading:
    """What the decoder found: the key (if the CRC held) and how sure the sync was."""

    key: int | None
    sync_score: float  # z-score of the template correlation peak
    period: tuple[float, float]  # tile period in pixels (x, y) as measured
    bit_margin: float  # mean |soft bit| / its spread: how clean the bits were


class TiledEngine:
    """Embed and read the tiled mark. ``strength`` scales the amplitude (1.0 = default)."""

    name = "tiled"

    def __init__(self, seed: bytes = DEFAULT_SEED, strength: float = 1.0) -> None:
        self.layout = TiledLayout.from_seed(seed)
        self.strength = strength
        self._ref = np.kron(self.layout.template,
                            np.ones((SAMPLES_PER_CELL, SAMPLES_PER_CELL), np.float32))
        self._ref_fft = np.conj(np.fft.rfft2(self._ref))

    # -- embedding -------------------------------------------------------------------------

    @staticmethod
    def cell_size(height: int, width: int) -> int:
        """Pixels per cell: about 4 tiles across the shorter side, never under 2 px."""
        return max(2, round(min(height, width) / (TILE_CELLS * 4)))

    def embed(self, rgb: np.ndarray, key: int) -> np.ndarray:
        """``rgb`` (H×W×3 uint8) with the mark carrying ``key``; same shape and dtype.

        Informed embedding: the decoder's own statistic is run on the picture first, and the
        bits the picture's content pushes the wrong way (or too close to zero) are given
        more amplitude, up to a cap, so every bit leaves with a margin.
        """
        h, w = rgb.shape[:2]
        if min(h, w) < TILE_CELLS * 2 * 2:
            raise ValueError(f"image of {w}x{h} is too small to watermark")
        k = self.cell_size(h, w)
        bits = encode_key(key)
        signs = np.where(bits > 0, 1.0, -1.0)
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        amp = self._amplitude(luma)
        # Tones follow the texture too: on busy pictures (grass, gravel) the picture's own
        # spectrum near the tones is strong, and fixed-strength tones drown in it.
        base = (self._pattern(self.layout.template, h, w, k) + self._tones(h, w, k)) * amp
        unit = self._pattern(self._data_cells(signs), h, w, k) * amp
        period = TILE_CELLS * k
        # The picture's interference depends on where the sampling grid falls, and a crop
        # moves it; so the margin is secured for the grid as marked and for one shifted by
        # half a cell (the worst case a crop can bring), bit by bit, the smaller of the two.
        host_push = np.full(PAYLOAD_BITS, np.inf)
        gain = np.full(PAYLOAD_BITS, np.inf)
        marked = luma + base + unit
        for off in (0, k // 2):
            weights, host = self._weights_and_fold(marked[off:, off:], period, period)
            _, resp = self._weights_and_fold(unit[off:, off:], period, period, weights)
            shift = -off * SAMPLES_PER_CELL / k
            g = self._soft_bits(_shift_tile(resp, shift, shift)) * signs
            got = self._soft_bits(_shift_tile(host, shift, shift)) * signs
            host_push = np.minimum(host_push, got - g)
            gain = np.minimum(gain, g)
        target = 2.0 * float(np.median(gain))
        boost = np.clip((target - host_push) / np.maximum(gain, 1e-6), 1.0, 4.0)
        data = self._pattern(self._data_cells(signs * boost), h, w, k) * amp
        delta = (base + data)[..., None]
        return np.clip(rgb.astype(np.float32) + delta + 0.5, 0, 255).astype(np.uint8)

    def _data_cells(self, values: np.ndarray) -> np.ndarray:
        """T×T cells: each data cell's chip times its bit's value (0 on template cells)."""
        lay = self.layout
        per_cell = np.where(lay.bit_of_cell >= 0, values[np.maximum(lay.bit_of_cell, 0)], 0.0)
        return (lay.chips * per_cell).astype(np.float32)

    @staticmethod
    def _pattern(cells: np.ndarray, h: int, w: int, k: int) -> np.ndarray:
        """The tile of cells repeated over h×w pixels, each cell smoothly k×k (periodic)."""
        reps_y = -(-h // (TILE_CELLS * k)) + 1
        reps_x = -(-w // (TILE_CELLS * k)) + 1
        grid = np.tile(cells, (reps_y, reps_x)).astype(np.float32)
        # One cell of wrap-around padding on each side so the interpolation is periodic.
        grid = np.pad(grid, 1, mode="wrap")
        up = cv2.resize(grid, (grid.shape[1] * k, grid.shape[0] * k),
                        interpolation=cv2.INTER_LINEAR)
        return up[k:k + h, k:k + w]

    @staticmethod
    def _tones(h: int, w: int, k: int) -> np.ndarray:
        """The synchronisation tones: sinusoids at known cycles per tile.

        cos(ax + by) = cos(ax)cos(by) - sin(ax)sin(by), so all tones together are one
        (h×8)·(8×w) matrix product instead of millions of cosines.
        """
        period = TILE_CELLS * k
        x = np.arange(w, dtype=np.float64) * (2 * np.pi / period)
        y = np.arange(h, dtype=np.float64) * (2 * np.pi / period)
        rows, cols = [], []
        for a, b in TONES:
            rows += [np.cos(b * y), -np.sin(b * y)]
            cols += [np.cos(a * x), np.sin(a * x)]
        left = np.stack(rows, axis=1).astype(np.float32) * TONE_AMPLITUDE
        return left @ np.stack(cols, axis=0).astype(np.float32)

    def _amplitude(self, luma: np.ndarray) -> np.ndarray:
        """Per-pixel amplitude in grey levels: a floor on flat areas, more where textured."""
        mean = cv2.blur(luma, (9, 9))
        var = cv2.blur(luma * luma, (9, 9)) - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        amp = np.clip(1.2 + 0.2 * std, 1.2, 6.0)
        # Very dark and very bright areas clip; keep the mark inside the range it can use.
        headroom = np.minimum(luma, 255.0 - luma)
        amp = np.minimum(amp, np.maximum(headroom, 0.5))
        return amp * self.strength

    # -- the decoder's statistic (shared by embedding and reading) ------------------------

    @staticmethod
    def _weights_and_fold(
        luma: np.ndarray, px: float, py: float, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Resample so a tile is 2T×2T samples, high-pass, weight, fold into one tile.

        The weights (1/local residual energy) quieten strong edges, the host content that
        most disturbs the correlation; they are returned so the same linear map can be
        applied to a pattern alone.
        """
        side = TILE_CELLS * SAMPLES_PER_CELL
        h, w = luma.shape
        fx, fy = side / px, side / py
        nw, nh = max(1, round(w * fx)), max(1, round(h * fy))
        interp = cv2.INTER_AREA if fx < 1 and fy < 1 else cv2.INTER_LINEAR
        small = cv2.resize(luma, (nw, nh), interpolation=interp)
        resid = small - cv2.GaussianBlur(small, (0, 0), 2.0)
        if weights is None:
            energy = cv2.GaussianBlur(resid * resid, (0, 0), 4.0)
            weights = 1.0 / np.sqrt(energy + 4.0)
        resid = resid * weights
        ty, tx = nh // side, nw // side
        folded = resid[:ty * side, :tx * side].reshape(ty, side, tx, side).sum(axis=(0, 2))
        return weights, folded

    def _soft_bits(self, aligned: np.ndarray) -> np.ndarray:
        """Soft value of each payload bit from a folded tile aligned to the template."""
        cells = aligned.reshape(TILE_CELLS, SAMPLES_PER_CELL, TILE_CELLS,
                                SAMPLES_PER_CELL).sum(axis=(1, 3))
        lay = self.layout
        mask = lay.bit_of_cell >= 0
        return np.bincount(lay.bit_of_cell[mask], weights=(cells * lay.chips)[mask],
                           minlength=PAYLOAD_BITS)

    # -- reading ---------------------------------------------------------------------------

    def read(self, rgb: np.ndarray) -> TiledReading:
        """Look for the mark in ``rgb`` (H×W×3 uint8). Never raises on a plain picture."""
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        while max(luma.shape) > READ_MAX_SIDE:  # the search is scale-free: halve big scans
            luma = cv2.resize(luma, (luma.shape[1] // 2, luma.shape[0] // 2),
                              interpolation=cv2.INTER_AREA)
        best = TiledReading(None, 0.0, (0.0, 0.0), 0.0)
        for period in self._period_candidates(luma):
            for step in _REFINE_STEPS:
                p = period * (1.0 + step)
                reading = self._read_exact(luma, p, p)
                if reading is None:
                    continue
                if reading.key is not None:
                    return reading
                if reading.sync_score > best.sync_score:
                    best = reading
        return best

    def _period_candidates(self, luma: np.ndarray) -> list[float]:
        """Tile periods in pixels, most likely first, from the sync tones in the spectrum."""
        h, w = luma.shape
        lo = TILE_CELLS * 1.2
        hi = min(h, w) / 1.2
        if hi <= lo:
            return []
        win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
        mag = np.abs(np.fft.fft2((luma - luma.mean()) * win)).astype(np.float32)
        # Whitened spectrum, capped so one strong line of the picture's own cannot outvote
        # the four tones together.
        white = np.minimum(mag / (cv2.blur(mag, (15, 15)) + 1e-3), 6.0)
        periods = lo * np.exp(np.arange(0, np.log(hi / lo), 0.001))
        score = np.zeros_like(periods)
        for a, b in TONES:
            score += _bilinear(white, b * h / periods, a * w / periods)
        order = np.argsort(score)[::-1]
        out: list[float] = []
        for i in order:
            if all(abs(periods[i] / p - 1) > 0.02 for p in out):
                out.append(float(periods[i]))
            if len(out) == PERIOD_CANDIDATES:
                break
        return out

    def _read_exact(self, luma: np.ndarray, px: float, py: float) -> TiledReading | None:
        side = TILE_CELLS * SAMPLES_PER_CELL
        h, w = luma.shape
        if w * side / px < side or h * side / py < side:
            return None
        _, folded = self._weights_and_fold(luma, px, py)
        spectrum = np.fft.rfft2(folded)
        corr = np.fft.irfft2(spectrum * self._ref_fft, s=folded.shape)
        z = float((corr.max() - corr.mean()) / (corr.std() + 1e-9))
        # Strongly patterned pictures (brick walls) can lift a wrong offset above the right
        # one, so the few highest correlation peaks are each tried; the CRC picks.
        key, soft = None, np.zeros(PAYLOAD_BITS)
        for oy, ox in _top_peaks(corr, OFFSET_CANDIDATES):
            # A crop rarely falls on a whole sample: the offset refined to a fraction of a
            # sample from the peak's neighbours is the second guess (the parabola's vertex is
            # biased by the blocky template); the folded tile is shifted in the Fourier domain.
            dy = _vertex(corr[(oy - 1) % side, ox], corr[oy, ox], corr[(oy + 1) % side, ox])
            dx = _vertex(corr[oy, (ox - 1) % side], corr[oy, ox], corr[oy, (ox + 1) % side])
            for ay, ax in ((oy, ox), (oy + dy, ox + dx)):
                candidate = self._soft_bits(_shift_tile(folded, ay, ax, spectrum))
                if not soft.any():
                    soft = candidate
                key = _decode_soft(candidate)
                if key is not None:
                    soft = candidate
                    break
            if key is not None:
                break
        mag = np.abs(soft)
        margin = float(mag.mean() / (mag.std() + 1e-9))
        return TiledReading(key, z, (px, py), margin)


TONES: tuple[tuple[float, float], ...] = ((16.5, 6.5), (-6.5, 16.5), (17.5, -5.5), (5.5, 17.5))
"""Sync tones in whole cycles per tile (x, y); four directions so one axis never dominates."""
TONE_AMPLITUDE = 0.4
PERIOD_CANDIDATES = 5
READ_MAX_SIDE = 2048
SOFT_FLIP_POOL = 6
OFFSET_CANDIDATES = 3
SOFT_FLIP_MAX = 3
_REFINE_STEPS = (0.0, -0.002, 0.002, -0.004, 0.004, -0.006, 0.006)


def _shift_tile(
    tile: np.ndarray, dy: float, dx: float, spectrum: np.ndarray | None = None
) -> np.ndarray:
    """``out[y, x] = tile[y + dy, x + dx]`` (circular, fractional: a Fourier-domain shift)."""
    if spectrum is None:
        spectrum = np.fft.rfft2(tile)
    fy = np.fft.fftfreq(tile.shape[0])[:, None]
    fx = np.fft.rfftfreq(tile.shape[1])[None, :]
    phase = np.exp(2j * np.pi * (fy * dy + fx * dx))
    return np.fft.irfft2(spectrum * phase, s=tile.shape)


def _top_peaks(corr: np.ndarray, count: int) -> list[tuple[int, int]]:
    """The ``count`` highest local maxima of a circular correlation, at least 2 apart."""
    side = corr.shape[0]
    out: list[tuple[int, int]] = []
    for flat in np.argsort(corr, axis=None)[::-1][: 16 * count]:
        y, x = divmod(int(flat), side)
        near = any(min(abs(y - py), side - abs(y - py)) <= 1
                   and min(abs(x - px), side - abs(x - px)) <= 1 for py, px in out)
        if not near:
            out.append((y, x))
            if len(out) == count:
                break
    return out


def _vertex(left: float, centre: float, right: float) -> float:
    """Offset (-0.5..0.5) of the top of the parabola through three neighbouring samples."""
    denom = left - 2 * centre + right
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5)) if denom else 0.0


def _decode_soft(soft: np.ndarray) -> int | None:
    """Hard bits, then up to three of the six least certain bits flipped (41 retries).

    A little soft decoding: the bits a transform breaks are nearly always among the weakest.
    Each retry is one more chance for noise to pass the CRC (2^-24 each, so ~2.5e-6 per
    reading); a trace also requires the key to exist in the registry (a random 40-bit key
    among those issued), so the retries cost no false attributions.
    """
    bits = (soft > 0).astype(np.uint8)
    key = decode_bits(bits)
    if key is not None:
        return key
    weakest = [int(i) for i in np.argsort(np.abs(soft))[:SOFT_FLIP_POOL]]
    for size in range(1, SOFT_FLIP_MAX + 1):
        for flip in combinations(weakest, size):
            trial = bits.copy()
            trial[list(flip)] ^= 1
            key = decode_bits(trial)
            if key is not None:
                return key
    return None


def _bilinear(img: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """``img`` at fractional (row, col) positions, wrapping around (an FFT is periodic)."""
    h, w = img.shape
    y0 = np.floor(fy).astype(int)
    x0 = np.floor(fx).astype(int)
    dy, dx = fy - y0, fx - x0
    y0 %= h
    x0 %= w
    y1, x1 = (y0 + 1) % h, (x0 + 1) % w
    return (img[y0, x0] * (1 - dy) * (1 - dx) + img[y1, x0] * dy * (1 - dx)
            + img[y0, x1] * (1 - dy) * dx + img[y1, x1] * dy * dx)
