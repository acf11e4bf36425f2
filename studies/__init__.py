"""The shipped study specs (``*.toml``), installed as package data ``dtasm_opt.study_specs`` so
that ``python -m dtasm_opt.study NAME`` finds them from any folder; the results they
produced sit beside them in ``studies/<name>/``."""
