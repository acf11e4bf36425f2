"""The system and instance model (docs/design.md §1, §5): frozen dataclasses of numpy arrays.

An :class:`Instance` is one decision step: the system, the users' static data, their
exogenous state at that step and the server each user's service instance (SI) runs on before
the decision. A :class:`~dtasm_opt.core.stream.Stream` holds the same system and T exogenous steps.
Field names mirror the ``dtasm-instance/1`` JSON format one to one; units live in the names.
Arrays are validated once in ``__post_init__`` and made read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from dtasm_opt.core import checks as fx
from dtasm_opt.core.limits import MAX_APPS, MAX_SERVERS, MAX_USERS, check_at_most
from dtasm_opt.errors import InputError

INSTANCE_FORMAT = "dtasm-instance/1"


@dataclass(frozen=True, eq=False)
class Servers:
    """The H edge servers (ES) and their links; index H elsewhere means the cloud."""

    capacity_hz: np.ndarray  # (H,) computing capacity P[h]
    bandwidth_bps: np.ndarray  # (H, H) B[i, j], diagonal ignored (same RAN: free)
    delay_s: np.ndarray  # (H, H) propagation delay delta[i, j], diagonal ignored
    cloud_bandwidth_bps: np.ndarray  # (H,) Bc[i] between RAN/ES i and the cloud
    cloud_delay_s: np.ndarray  # (H,) deltac[i]

    def __post_init__(self) -> None:
        w = "servers."
        cap = fx.as_array(self.capacity_hz, w + "capacity_hz", "float", [None])
        h = check_at_most(cap.shape[0], MAX_SERVERS, w + "capacity_hz: edge servers")
        if h < 1:
            raise InputError(f"{w}capacity_hz: at least one edge server is required")
        bw = fx.as_array(self.bandwidth_bps, w + "bandwidth_bps", "float", [h, h])
        dl = fx.as_array(self.delay_s, w + "delay_s", "float", [h, h])
        cbw = fx.as_array(self.cloud_bandwidth_bps, w + "cloud_bandwidth_bps", "float", [h])
        cdl = fx.as_array(self.cloud_delay_s, w + "cloud_delay_s", "float", [h])
        fx.nonneg(cap, w + "capacity_hz")
        off = ~np.eye(h, dtype=bool)
        fx.check(bw, w + "bandwidth_bps", (bw > 0) | ~off, "> 0 off the diagonal")
        fx.nonneg(bw, w + "bandwidth_bps")
        fx.nonneg(dl, w + "delay_s")
        fx.positive(cbw, w + "cloud_bandwidth_bps")
        fx.nonneg(cdl, w + "cloud_delay_s")
        _set(
            self,
            capacity_hz=cap,
            bandwidth_bps=bw,
            delay_s=dl,
            cloud_bandwidth_bps=cbw,
            cloud_delay_s=cdl,
        )

    @property
    def n_servers(self) -> int:
        return int(self.capacity_hz.shape[0])


@dataclass(frozen=True, eq=False)
class Apps:
    """Per application kind f: the service function (SF) that runs its SIs."""

    sf_capacity_hz: np.ndarray  # (F,) Psf[f]
    checkpoint_share: np.ndarray  # (F,) beta[f] in (0, 1]
    suspend_cycles_per_bit: np.ndarray  # (F,) rho_s[f]
    resume_cycles_per_bit: np.ndarray  # (F,) rho_r[f]
    sf_prepare_s: np.ndarray  # (F,) dsf[f]

    def __post_init__(self) -> None:
        w = "apps."
        psf = fx.as_array(self.sf_capacity_hz, w + "sf_capacity_hz", "float", [None])
        f = check_at_most(psf.shape[0], MAX_APPS, w + "sf_capacity_hz: application kinds")
        if f < 1:
            raise InputError(f"{w}sf_capacity_hz: at least one application kind is required")
        beta = fx.as_array(self.checkpoint_share, w + "checkpoint_share", "float", [f])
        rs = fx.as_array(self.suspend_cycles_per_bit, w + "suspend_cycles_per_bit", "float", [f])
        rr = fx.as_array(self.resume_cycles_per_bit, w + "resume_cycles_per_bit", "float", [f])
        dsf = fx.as_array(self.sf_prepare_s, w + "sf_prepare_s", "float", [f])
        fx.positive(psf, w + "sf_capacity_hz")
        fx.check(beta, w + "checkpoint_share", (beta > 0) & (beta <= 1), "in (0, 1]")
        fx.nonneg(rs, w + "suspend_cycles_per_bit")
        fx.nonneg(rr, w + "resume_cycles_per_bit")
        fx.nonneg(dsf, w + "sf_prepare_s")
        _set(
            self,
            sf_capacity_hz=psf,
            checkpoint_share=beta,
            suspend_cycles_per_bit=rs,
            resume_cycles_per_bit=rr,
            sf_prepare_s=dsf,
        )

    @property
    def n_apps(self) -> int:
        return int(self.sf_capacity_hz.shape[0])


@dataclass(frozen=True, eq=False)
class Users:
    """The U users at one step: static data, exogenous state and current server."""

    app: np.ndarray  # (U,) application kind, static
    latency_limit_s: np.ndarray  # (U,) tau[u], static
    ran: np.ndarray  # (U,) y[u]: RAN the user is attached to at this step
    task_bits: np.ndarray  # (U,) Vt[u]
    result_bits: np.ndarray  # (U,) Vr[u]
    context_bits: np.ndarray  # (U,) Vm[u]: state context of the SI
    cycles_per_bit: np.ndarray  # (U,) kappa[u]
    server: np.ndarray  # (U,) s[u] in 0..H, H = cloud: where the SI runs before the decision

    def __post_init__(self) -> None:
        w = "users."
        app = fx.as_array(self.app, w + "app", "int", [None])
        u = check_users(app.shape[0], w + "app")
        arrays = {"app": app}
        for name in (
            "latency_limit_s",
            "task_bits",
            "result_bits",
            "context_bits",
            "cycles_per_bit",
        ):
            arrays[name] = fx.as_array(getattr(self, name), w + name, "float", [u])
            fx.nonneg(arrays[name], w + name)
        fx.positive(arrays["latency_limit_s"], w + "latency_limit_s")
        arrays["ran"] = fx.as_array(self.ran, w + "ran", "int", [u])
        arrays["server"] = fx.as_array(self.server, w + "server", "int", [u])
        _set(self, **arrays)

    @property
    def n_users(self) -> int:
        return int(self.app.shape[0])


@dataclass(frozen=True, eq=False)
class Instance:
    """One decision step of the DTASM problem (``dtasm-instance/1``)."""

    servers: Servers
    apps: Apps
    users: Users
    xi_s: float = 1.2  # seamless-migration bound
    name: str = "instance"
    meta: dict = field(default_factory=dict)  # provenance (generator settings); not validated

    def __post_init__(self) -> None:
        object.__setattr__(self, "xi_s", fx.as_scalar(self.xi_s, "xi_s"))
        fx.as_name(self.name, "name")
        h, f = self.servers.n_servers, self.apps.n_apps
        fx.index_range(self.users.app, "users.app", f)
        fx.index_range(self.users.ran, "users.ran", h)
        fx.index_range(self.users.server, "users.server", h + 1)

    @property
    def n_servers(self) -> int:
        return self.servers.n_servers

    @property
    def n_users(self) -> int:
        return self.users.n_users

    @property
    def cloud(self) -> int:
        """The index that means the cloud server in actions and server vectors."""
        return self.servers.n_servers

    def with_server(self, server: np.ndarray) -> Instance:
        """The same step with other current servers (the endogenous state)."""
        return replace(self, users=replace(self.users, server=np.asarray(server)))

    def to_dict(self) -> dict:
        return {
            "format": INSTANCE_FORMAT,
            "name": self.name,
            "xi_s": self.xi_s,
            "servers": arrays_to_dict(self.servers),
            "apps": arrays_to_dict(self.apps),
            "users": arrays_to_dict(self.users),
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_dict(cls, raw: object) -> Instance:
        doc = check_format(raw, INSTANCE_FORMAT)
        return cls(
            servers=arrays_from_dict(Servers, fx.section(doc, "servers"), "servers."),
            apps=arrays_from_dict(Apps, fx.section(doc, "apps"), "apps."),
            users=arrays_from_dict(Users, fx.section(doc, "users"), "users."),
            xi_s=fx.get(doc, "xi_s", ""),
            name=fx.as_name(doc.get("name", "instance"), "name"),
            meta=read_meta(doc),
        )


def check_users(n: int, field: str) -> int:
    """At least one user, and at most MAX_USERS."""
    if n < 1:
        raise InputError(f"{field}: at least one user is required")
    return check_at_most(n, MAX_USERS, f"{field}: users")


def check_format(doc: object, expected: str) -> dict[str, Any]:
    """``doc`` as a JSON object with the format tag ``expected``; refuses anything else."""
    if not isinstance(doc, dict):
        raise InputError(f"document: expected a JSON object, got {type(doc).__name__}")
    tag = doc.get("format")
    if tag is None:
        raise InputError(f"format: missing (expected {expected!r})")
    if tag != expected:
        raise InputError(f"format: unknown format tag {tag!r} (expected {expected!r})")
    return doc


def arrays_from_dict(cls: type, doc: dict, where: str):
    """Build a dataclass of arrays from a JSON object, naming any missing field."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in doc:
            raise InputError(f"{where}{f.name}: missing")
        kwargs[f.name] = doc[f.name]
    return cls(**kwargs)


def arrays_to_dict(obj) -> dict:
    return {f.name: getattr(obj, f.name).tolist() for f in fields(obj)}


def read_meta(doc: dict) -> dict:
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError("meta: expected a JSON object")
    return meta


def _set(obj, **values) -> None:
    for key, value in values.items():
        object.__setattr__(obj, key, value)
