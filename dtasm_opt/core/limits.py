"""Size bounds on every input, checked before any work starts (docs/design.md §5).

They keep a mistyped flag or a hostile file from ending in a MemoryError after minutes of
work: a value past its bound is refused at once with one line naming it. Each bound is far
above the paper's sizes (U = 200, H = 8, F = 10, T = 500) and above every size the project
measures ((5000, 32) in the solver scaling study); the README states them.
"""

from __future__ import annotations

from dtasm_opt.errors import InputError

MAX_USERS = 100_000  # U
MAX_SERVERS = 1_024  # H
MAX_APPS = 10_000  # F
MAX_STREAM_VALUES = 20_000_000  # T x U of one stream (five such arrays are held in memory)
MAX_STEPS = 10_000_000  # steps of one rollout, training run, bound or study cell
MAX_CELLS = 100_000  # cells of one study
MAX_COUNT = 100_000  # instances of one benchmark set
MAX_FILE_BYTES = 512 * 2**20  # a JSON file as read, after gzip decompression
MAX_THREADS = 1_024
MAX_NODE_LIMIT = 2**31 - 1  # HiGHS stores mip_max_nodes as a 32-bit integer
MAX_TREE_ROUNDS = 10**8  # the engine's tree search: at 45 ms a round, years; only a sanity cap
MAX_COLUMN_ROUNDS = 10**8  # the engine's column generation: the same sanity cap
MAX_COLUMN_REACH = MAX_USERS  # migrations short: no tie-break's bound is further below
MAX_TREE_REACH = MAX_USERS  # the same for the tree search's reach
MAX_TREE_NODES = 10**8  # its node cap: a node keeps 600-950 bytes of certificate
MAX_NEIGHBOURHOOD_TRIES = 10**8  # the engine's neighbourhood search: the same sanity cap

# The engine's default work limits, where the settings name none. They live here, not in the
# engine, so that the command lines' help states them without importing the solvers; the
# engine's modules say why each has its value (solvers/exact/engine.py, tie_break.py,
# server_neighbourhoods.py).
DEFAULT_NODE_LIMIT = 2_000  # HiGHS nodes per stage
DEFAULT_TREE_ROUNDS = 400_000  # knapsack rounds of the tie-break's tree search
DEFAULT_OPEN_LOAD_TREE_ROUNDS = 40_000  # the same where the step's load stage is not proven
DEFAULT_COLUMN_ROUNDS = 300  # knapsack rounds of its column generation
DEFAULT_COLUMN_REACH = 8  # migrations its bound may be short for column generation to run
DEFAULT_TREE_REACH = 3  # ... and for its tree search to start
# Its node cap: one node per this many of the tree's rounds, at least DEFAULT_TREE_NODES_LEAST
# (50,000 nodes at 400,000 rounds; 5,000 at 40,000)
DEFAULT_ROUNDS_PER_TREE_NODE = 8
DEFAULT_TREE_NODES_LEAST = 5_000
DEFAULT_TREE_NODES = max(
    DEFAULT_TREE_NODES_LEAST, DEFAULT_TREE_ROUNDS // DEFAULT_ROUNDS_PER_TREE_NODE
)
DEFAULT_NEIGHBOURHOOD_TRIES = 56  # neighbourhoods of its large-neighbourhood search
DEFAULT_FIXED_NODES = 10_000  # HiGHS nodes on what reduced-cost fixing leaves, one short
# An overloaded load stage's cloud sets (lighter clouds than the plan's) refuted one by one:
# off by default, as it proved none of the studies' overloaded (200, 8) steps (docs/exact.md)
DEFAULT_CLOUD_SETS = 0
MAX_CLOUD_SETS = 100_000


def check_at_most(value: int, bound: int, what: str) -> int:
    """``value`` if it is <= ``bound``; else one clear refusal naming ``what``."""
    if value > bound:
        raise InputError(f"{what}: {value} is too large (at most {bound:,})")
    return value
