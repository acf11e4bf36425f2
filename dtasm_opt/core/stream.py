"""A stream (docs/design.md §4, ``dtasm-stream/1``): one system and T exogenous steps.

Every method is run on the same stream, so comparisons are paired. Step t of a stream, with
the servers the users are on before it, is an :class:`~dtasm_opt.core.instance.Instance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dtasm_opt.core import checks as fx
from dtasm_opt.core.instance import (
    Apps,
    Instance,
    Servers,
    Users,
    arrays_from_dict,
    arrays_to_dict,
    check_format,
    check_users,
    read_meta,
)
from dtasm_opt.core.limits import MAX_STREAM_VALUES
from dtasm_opt.errors import InputError

STREAM_FORMAT = "dtasm-stream/1"


def check_stream_size(steps: int, users: int) -> None:
    """Refuse a stream of more than MAX_STREAM_VALUES (T x U) values per array."""
    if steps * users > MAX_STREAM_VALUES:
        raise InputError(
            f"steps: {steps} steps of {users} users is too large "
            f"(at most {MAX_STREAM_VALUES:,} values per array)"
        )


EXOGENOUS = ("ran", "task_bits", "result_bits", "context_bits", "cycles_per_bit")


@dataclass(frozen=True, eq=False)
class Stream:
    """The system, the users' static data, their initial servers and T exogenous steps."""

    servers: Servers
    apps: Apps
    app: np.ndarray  # (U,) application kind of each user
    latency_limit_s: np.ndarray  # (U,) tau[u]
    initial_server: np.ndarray  # (U,) s[u] before step 0 (0..H, H = cloud)
    ran: np.ndarray  # (T, U) y[u] per step
    task_bits: np.ndarray  # (T, U) Vt
    result_bits: np.ndarray  # (T, U) Vr
    context_bits: np.ndarray  # (T, U) Vm
    cycles_per_bit: np.ndarray  # (T, U) kappa
    xi_s: float = 1.2
    name: str = "stream"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = "users."
        app = fx.as_array(self.app, w + "app", "int", [None])
        u = check_users(app.shape[0], w + "app")
        tau = fx.as_array(self.latency_limit_s, w + "latency_limit_s", "float", [u])
        fx.positive(tau, w + "latency_limit_s")
        init = fx.as_array(self.initial_server, w + "initial_server", "int", [u])
        ran = fx.as_array(self.ran, "steps.ran", "int", [None, u])
        t = ran.shape[0]
        if t < 1:
            raise InputError("steps.ran: a stream needs at least one step")
        check_stream_size(t, u)
        arrays = {"app": app, "latency_limit_s": tau, "initial_server": init, "ran": ran}
        for name in EXOGENOUS[1:]:
            arrays[name] = fx.as_array(getattr(self, name), f"steps.{name}", "float", [t, u])
            fx.nonneg(arrays[name], f"steps.{name}")
        h, f = self.servers.n_servers, self.apps.n_apps
        fx.index_range(app, w + "app", f)
        fx.index_range(init, w + "initial_server", h + 1)
        fx.index_range(ran, "steps.ran", h)
        for key, value in arrays.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "xi_s", fx.as_scalar(self.xi_s, "xi_s"))
        fx.as_name(self.name, "name")

    @property
    def n_steps(self) -> int:
        return int(self.ran.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.app.shape[0])

    @property
    def n_servers(self) -> int:
        return self.servers.n_servers

    def instance(self, t: int, server: np.ndarray | None = None) -> Instance:
        """Step ``t`` (wrapping past the end: a new episode) with the given current servers.

        Without ``server``, step 0's servers are the stream's initial servers; any other step
        needs them given, since they depend on the decisions taken before it.
        """
        k = t % self.n_steps
        if server is None:
            if k != 0:
                raise ValueError("the servers before a step t > 0 depend on the policy")
            server = self.initial_server
        users = Users(
            app=self.app,
            latency_limit_s=self.latency_limit_s,
            ran=self.ran[k],
            task_bits=self.task_bits[k],
            result_bits=self.result_bits[k],
            context_bits=self.context_bits[k],
            cycles_per_bit=self.cycles_per_bit[k],
            server=server,
        )
        meta = {**self.meta, "stream": self.name, "step": k}
        return Instance(self.servers, self.apps, users, self.xi_s, f"{self.name}-step{k}", meta)

    def head(self, steps: int) -> Stream:
        """The first ``steps`` steps (at most the stream's length)."""
        k = max(1, min(steps, self.n_steps))
        cut = {name: getattr(self, name)[:k] for name in EXOGENOUS}
        return Stream(
            self.servers,
            self.apps,
            self.app,
            self.latency_limit_s,
            self.initial_server,
            **cut,
            xi_s=self.xi_s,
            name=self.name,
            meta=self.meta,
        )

    def to_dict(self) -> dict:
        return {
            "format": STREAM_FORMAT,
            "name": self.name,
            "xi_s": self.xi_s,
            "servers": arrays_to_dict(self.servers),
            "apps": arrays_to_dict(self.apps),
            "users": {
                "app": self.app.tolist(),
                "latency_limit_s": self.latency_limit_s.tolist(),
                "initial_server": self.initial_server.tolist(),
            },
            "steps": {name: getattr(self, name).tolist() for name in EXOGENOUS},
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_dict(cls, raw: object) -> Stream:
        doc = check_format(raw, STREAM_FORMAT)
        users = fx.section(doc, "users")
        steps = fx.section(doc, "steps")
        return cls(
            servers=arrays_from_dict(Servers, fx.section(doc, "servers"), "servers."),
            apps=arrays_from_dict(Apps, fx.section(doc, "apps"), "apps."),
            app=fx.get(users, "app", "users."),
            latency_limit_s=fx.get(users, "latency_limit_s", "users."),
            initial_server=fx.get(users, "initial_server", "users."),
            **{name: fx.get(steps, name, "steps.") for name in EXOGENOUS},
            xi_s=fx.get(doc, "xi_s", ""),
            name=fx.as_name(doc.get("name", "stream"), "name"),
            meta=read_meta(doc),
        )
