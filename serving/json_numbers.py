"""JSON number text to float64 inside compiled code, correctly rounded or not at all.

:func:`decimal_to_float` turns a decimal ``mantissa * 10**exponent`` into the nearest
float64 (round half to even), as Python's ``float()`` does, with two exact methods:

- Clinger's fast path: a mantissa below 2**53 and ``|exponent| <= 22`` are both exact
  doubles, so one IEEE multiplication or division is correctly rounded;
- Eisel and Lemire's algorithm (D. Lemire, "Number Parsing at a Gigabyte per Second",
  2021; transcribed from Go's ``strconv/eisel_lemire.go``): the mantissa times a 128-bit
  truncation of the power of ten, which decides the rounding in all but rare cases
  that it detects (halfway ambiguities, subnormals, overflow).

When neither method can decide, it reports failure and the caller converts that number
some other, exact way. The table of powers is computed here with Python's integers.
"""

from __future__ import annotations

import numpy as np

from fidelite.training.forest_kernels import kernel

#: The JSON loops (this module's, :mod:`~fidelite.serving.json_scan`'s and
#: :mod:`~fidelite.serving.json_kernels`') run without numba's reference counting
#: (``_nrt=False``): they allocate nothing, and the count updates for every array handed
#: to a helper (atomic operations) took half of the scan's time.
compiled = kernel(_nrt=False)
#: For the small helpers of the scanning loop.
inlined = kernel(_nrt=False, inline="always")

#: Powers of ten in the table: 10**MIN_EXP10 .. 10**MAX_EXP10.
MIN_EXP10 = -348
MAX_EXP10 = 347
#: Exact float64 powers of ten for the fast path.
EXACT_POWERS = np.array([10.0**k for k in range(23)])


def _powers_of_ten() -> np.ndarray:
    """Row ``e - MIN_EXP10``: (low 64 bits, high 64 bits) of 10**e normalised to 128
    bits (top bit set), rounded down."""
    rows = []
    for exp10 in range(MIN_EXP10, MAX_EXP10 + 1):
        if exp10 >= 0:
            value = 10**exp10
            shift = value.bit_length() - 128
            mantissa = value >> shift if shift > 0 else value << -shift
        else:
            divisor = 10**-exp10
            mantissa = (1 << (127 + divisor.bit_length())) // divisor
            mantissa >>= max(0, mantissa.bit_length() - 128)
        rows.append((mantissa & (2**64 - 1), mantissa >> 64))
    return np.array(rows, dtype=np.uint64)


POWERS = _powers_of_ten()
_U32 = np.uint64(0xFFFFFFFF)


@compiled
def multiply_64(a, b):
    """The 128-bit product of two uint64 as (high, low)."""
    a_lo, a_hi = a & _U32, a >> np.uint64(32)
    b_lo, b_hi = b & _U32, b >> np.uint64(32)
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> np.uint64(32)) + (hi_lo & _U32) + lo_hi
    high = hi_hi + (hi_lo >> np.uint64(32)) + (cross >> np.uint64(32))
    low = (cross << np.uint64(32)) | (lo_lo & _U32)
    return high, low


@compiled
def leading_zeros(value):
    """Count of leading zero bits of a non-zero uint64."""
    count = 0
    while value & np.uint64(0x8000000000000000) == np.uint64(0):
        value = value << np.uint64(1)
        count += 1
    return count


@compiled
def eisel_lemire(mantissa, exp10, negative, powers):
    """``(value, True)`` for the nearest float64 to ``mantissa * 10**exp10`` (mantissa a
    non-zero uint64), or ``(0.0, False)`` when the algorithm cannot decide."""
    if exp10 < MIN_EXP10 or exp10 > MAX_EXP10:
        return 0.0, False
    clz = leading_zeros(mantissa)
    man = mantissa << np.uint64(clz)
    ret_exp2 = np.uint64(((217706 * exp10) >> 16) + 64 + 1023 - clz)
    row = exp10 - MIN_EXP10
    x_hi, x_lo = multiply_64(man, powers[row, 1])
    if x_hi & np.uint64(0x1FF) == np.uint64(0x1FF) and x_lo + man < man:
        y_hi, y_lo = multiply_64(man, powers[row, 0])
        merged_hi, merged_lo = x_hi, x_lo + y_hi
        if merged_lo < x_lo:
            merged_hi += np.uint64(1)
        if (
            merged_hi & np.uint64(0x1FF) == np.uint64(0x1FF)
            and merged_lo + np.uint64(1) == np.uint64(0)
            and y_lo + man < man
        ):
            return 0.0, False
        x_hi, x_lo = merged_hi, merged_lo
    msb = x_hi >> np.uint64(63)
    ret_mantissa = x_hi >> (msb + np.uint64(9))
    ret_exp2 -= np.uint64(1) ^ msb
    if (
        x_lo == np.uint64(0)
        and x_hi & np.uint64(0x1FF) == np.uint64(0)
        and ret_mantissa & np.uint64(3) == np.uint64(1)
    ):
        return 0.0, False
    ret_mantissa += ret_mantissa & np.uint64(1)
    ret_mantissa >>= np.uint64(1)
    if ret_mantissa >> np.uint64(53) > np.uint64(0):
        ret_mantissa >>= np.uint64(1)
        ret_exp2 += np.uint64(1)
    if ret_exp2 - np.uint64(1) >= np.uint64(0x7FF - 1):  # subnormal, zero or overflow
        return 0.0, False
    sign = np.uint64(0x8000000000000000) if negative else np.uint64(0)
    bits = sign | (ret_exp2 << np.uint64(52)) | (ret_mantissa & np.uint64(0x000FFFFFFFFFFFFF))
    return np.uint64(bits).view(np.float64), True


@compiled
def decimal_to_float(mantissa, exp10, negative, powers, exact):
    """``(value, True)``: the float64 nearest to ``(-1 if negative) * mantissa *
    10**exp10`` (``mantissa``: uint64, at most 19 digits), or ``(0.0, False)``."""
    if mantissa == np.uint64(0):
        return (-0.0 if negative else 0.0), True
    if mantissa <= np.uint64(1 << 53) and -22 <= exp10 <= 22:
        value = np.float64(mantissa)
        value = value * exact[exp10] if exp10 >= 0 else value / exact[-exp10]
        return (-value if negative else value), True
    return eisel_lemire(mantissa, exp10, negative, powers)
