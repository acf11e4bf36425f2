"""Unit conversions used across the project (docs/design.md §1).

Inside the code every quantity is SI float64: bits, seconds, Hz, cycles. Loads are reported in
bytes; "MB" in reports, plots and the RL reward is 2^20 bytes.
"""

BITS_PER_BYTE = 8
BYTES_PER_MB = 2**20
KBYTE_BITS = 1024 * 8  # Table II's KByte
MBYTE_BITS = 1024 * 1024 * 8  # Table II's MByte
